/**
 * The loop-detection hash, written from docs/design.md (differences from the
 * reference Go package) and the Go generator in tools/hash-vectors: first 16
 * bytes of SHA-256, as hex, of the
 * trimmed content with whitespace runs collapsed to one space, cut at 500
 * bytes, followed by "|tools:" and the tool names sorted and comma-joined when
 * there are any.
 *
 * Only printable ASCII content and tool names are accepted: for them Go's
 * TrimSpace, RE2's `\s`, byte cuts and byte sorting coincide with the simple
 * string operations below. The histories use a few fixed ASCII strings, so the
 * model needs nothing more, and a non-ASCII input fails loudly instead of being
 * hashed by rules this file does not implement. `test/model/model.test.ts`
 * checks it against the Go-computed vectors.
 */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** docs/design.md, differences from the reference: content is cut at 500 UTF-8 bytes (one byte per character in ASCII). */
const CONTENT_MAX_BYTES = 500;
/** Go generator: `hex.EncodeToString(sum[:16])`. */
const HASH_BYTES = 16;

export async function modelHash(content: string, toolNames: readonly string[] = []): Promise<string> {
  for (const s of [content, ...toolNames]) {
    if (!PRINTABLE_ASCII.test(s)) throw new Error(`the model hashes printable ASCII only, got ${JSON.stringify(s)}`);
  }
  let input = content.trim().replace(/ +/g, " ").slice(0, CONTENT_MAX_BYTES);
  if (toolNames.length > 0) input += "|tools:" + [...toolNames].sort().join(",");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(input)));
  return Array.from(digest.slice(0, HASH_BYTES), (b) => b.toString(16).padStart(2, "0")).join("");
}
