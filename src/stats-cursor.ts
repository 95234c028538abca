/**
 * Opaque stats cursors. A cursor marks the last session ID of a page and when
 * it expires, sealed with AES-GCM so that full session IDs never leave the
 * service through stats and a forged or altered cursor is refused.
 *
 * The key is dedicated: STATS_CURSOR_KEY when configured, otherwise one
 * generated once and kept in registry shard 0. It is never derived from a
 * token, so a cursor cannot be opened with a public string or used to test
 * admin-token guesses offline.
 */
import { SessionError } from "./session/errors";

/**
 * How long a cursor pages on. A 10,000-row page answers within REGISTRY_READ_TIMEOUT_MS (15 s),
 * so an hour walks hundreds of pages; a leaked cursor stops working after it.
 */
export const STATS_CURSOR_TTL_MS = 60 * 60 * 1000;
/** AES-GCM's recommended nonce length (NIST SP 800-38D). */
const IV_BYTES = 12;
/** The expiry, as milliseconds since the epoch in a big-endian 64-bit float, ahead of the ID. */
const EXPIRY_BYTES = 8;
/** Bound into every seal, so a ciphertext made for another purpose under the same key is refused. */
const PURPOSE = new TextEncoder().encode("edge-session stats cursor v1");
const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF: the ID comes back exactly as sealed.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function importKey(raw: BufferSource): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** STATS_CURSOR_KEY is a high-entropy secret (validated for length), so one SHA-256 suffices to size it. */
export async function fromConfigured(secret: string): Promise<CryptoKey> {
  return importKey(await crypto.subtle.digest("SHA-256", encoder.encode(secret)));
}

function toBase64Url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw new Error("not base64url");
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function invalidCursor(problem: string): SessionError {
  return new SessionError("invalid_cursor", `cursor ${problem}; start again without a cursor`);
}

export async function encodeCursor(lastId: string, key: CryptoKey, now: number): Promise<string> {
  const id = encoder.encode(lastId);
  const plain = new Uint8Array(EXPIRY_BYTES + id.length);
  new DataView(plain.buffer).setFloat64(0, now + STATS_CURSOR_TTL_MS);
  plain.set(id, EXPIRY_BYTES);
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: PURPOSE }, key, plain));
  const out = new Uint8Array(IV_BYTES + sealed.length);
  out.set(iv);
  out.set(sealed, IV_BYTES);
  return toBase64Url(out);
}

/** The last ID of the previous page, or 400 `invalid_cursor` for a forged, altered or expired cursor. */
export async function decodeCursor(cursor: string, key: CryptoKey, now: number): Promise<string> {
  let expiresAt: number;
  let lastId: string;
  try {
    const bytes = fromBase64Url(cursor);
    const plain = new Uint8Array(
      await crypto.subtle.decrypt({ name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES), additionalData: PURPOSE }, key, bytes.subarray(IV_BYTES)),
    );
    expiresAt = new DataView(plain.buffer, plain.byteOffset, plain.byteLength).getFloat64(0);
    lastId = decoder.decode(plain.subarray(EXPIRY_BYTES));
  } catch {
    throw invalidCursor("is not one this service issued");
  }
  if (!(now <= expiresAt)) throw invalidCursor("has expired");
  return lastId;
}
