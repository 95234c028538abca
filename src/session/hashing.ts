/**
 * Session ID derivation and loop-detection hashing, byte-compatible with the
 * reference Go package so gateways in either language agree on every hash.
 * Uses only Web Crypto, which both Node and workerd provide.
 */

/** Reference `HashRequestContent` keeps the first 500 bytes of normalised content. */
export const HASH_CONTENT_MAX_BYTES = 500;
/** Reference hashes are the first 16 bytes of the SHA-256 digest. */
const REQUEST_HASH_BYTES = 16;
export const DEFAULT_SESSION_HEADER = "x-session-id";

const encoder = new TextEncoder();
/** ignoreBOM: a default decoder drops a leading U+FEFF, which Go keeps in a tool name. */
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * `s` with each lone surrogate replaced by U+FFFD, the string Go's JSON decoding
 * yields. Tool names are sorted after this: a lone surrogate sorts among the
 * surrogates by code unit, but Go sorts its U+FFFD bytes (EF BF BD), so names
 * such as "\ud800" and "\ufffe" would otherwise be joined in the other order.
 */
function wellFormed(s: string): string {
  return decoder.decode(encoder.encode(s));
}

/**
 * Go's `unicode.IsSpace`, which `strings.TrimSpace` uses. JS `trim()` differs
 * (it strips U+FEFF and keeps U+0085), so a Go gateway would disagree on edges.
 * Every such character is one UTF-16 code unit, so checking code units is exact.
 */
function isGoSpace(c: number): boolean {
  if (c <= 0xff) return (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0x85 || c === 0xa0;
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

/**
 * RE2's `\s` is `[\t\n\f\r ]` (not `\v`). The reference meant `\s+` (it wrote
 * `s+`, which matches the letter s); we implement that intent with RE2's class.
 */
function isRe2Space(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

/** UTF-8 length of the code point starting at `i`; a lone surrogate encodes as U+FFFD (3 bytes), as TextEncoder does. */
function utf8Width(s: string, i: number): { bytes: number; units: number } {
  const c = s.charCodeAt(i);
  if (c < 0x80) return { bytes: 1, units: 1 };
  if (c < 0x800) return { bytes: 2, units: 1 };
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
    const next = s.charCodeAt(i + 1);
    if (next >= 0xdc00 && next <= 0xdfff) return { bytes: 4, units: 2 };
  }
  return { bytes: 3, units: 1 };
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/**
 * Compares by Unicode code point, which is UTF-8 byte order: Go's `sort.Strings`
 * and SQLite's BINARY collation. UTF-16 code-unit order differs only where a
 * surrogate meets a code unit at or above U+E000, so those are remapped.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/** The named header's value, matched case-insensitively, or `""`. */
export function getSessionId(headers: Headers | Record<string, string | undefined> | undefined, name: string = DEFAULT_SESSION_HEADER): string {
  if (!headers) return "";
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? "";
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted && typeof value === "string") return value;
  }
  return "";
}

/** Lowercase hex SHA-256 of the message's UTF-8 bytes (64 chars). */
export async function deriveSessionId(firstUserMessage: string): Promise<string> {
  return hex(await sha256(encoder.encode(firstUserMessage)));
}

/**
 * Go's `regexp.MustCompile(\`\s+\`).ReplaceAllString(strings.TrimSpace(content), " ")`,
 * up to the first code point at which the output reaches `maxBytes` UTF-8
 * bytes, computed in one pass that stops there. Regexes would be quadratic: a
 * trailing-whitespace pattern retries every position of an inner whitespace
 * run, so a 500,000-space run would hold the isolate for minutes. The
 * trailing trim is a scan from the end, which reads only the trailing whitespace.
 */
function normalizedText(content: string, maxBytes: number): string {
  let start = 0;
  let end = content.length;
  while (start < end && isGoSpace(content.charCodeAt(start))) start++;
  while (end > start && isGoSpace(content.charCodeAt(end - 1))) end--;
  let out = "";
  let bytes = 0;
  let segment = start;
  let i = start;
  while (i < end && bytes < maxBytes) {
    if (isRe2Space(content.charCodeAt(i))) {
      out += content.slice(segment, i) + " ";
      bytes += 1;
      i++;
      // A run past the cut cannot change the output, so it is not read.
      if (bytes < maxBytes) while (i < end && isRe2Space(content.charCodeAt(i))) i++;
      segment = i;
    } else {
      const width = utf8Width(content, i);
      bytes += width.bytes;
      i += width.units;
    }
  }
  // `i` is always on a code point boundary, so no surrogate pair is split here.
  return out + content.slice(segment, i);
}

/** Whitespace-normalised content, as `hashRequestContent` hashes it before truncation. */
export function normalizeContent(content: string): string {
  return normalizedText(content, Infinity);
}

/**
 * Short hash of a request for loop detection: normalise whitespace, keep the
 * first 500 UTF-8 bytes (a cut may split a character), append the sorted tool
 * names, SHA-256, first 16 bytes as hex.
 */
export async function hashRequestContent(content: string, toolNames: readonly string[] = []): Promise<string> {
  let bytes = encoder.encode(normalizedText(content, HASH_CONTENT_MAX_BYTES));
  if (bytes.length > HASH_CONTENT_MAX_BYTES) bytes = bytes.subarray(0, HASH_CONTENT_MAX_BYTES);
  if (toolNames.length > 0) {
    const suffix = encoder.encode("|tools:" + toolNames.map(wellFormed).sort(compareCodePoints).join(","));
    const joined = new Uint8Array(bytes.length + suffix.length);
    joined.set(bytes);
    joined.set(suffix, bytes.length);
    bytes = joined;
  }
  return hex((await sha256(bytes)).subarray(0, REQUEST_HASH_BYTES));
}
