/**
 * Gateway keys: who may spend the upstream key through this gateway.
 *
 * GATEWAY_KEYS is a secret holding a JSON object of key ID → key, e.g.
 * {"acme":"<64 hex characters>"}. A caller sends its key as
 * `Authorization: Bearer <key>` (what OpenAI SDKs send as their apiKey); the
 * key ID never leaves the gateway except as the caller's session namespace.
 */

/** The session service's namespace syntax (SECURITY.md, "Tenant scope"): a key ID becomes its caller's namespace. */
const KEY_ID = /^[A-Za-z0-9._~-]{1,64}$/;
/** 32 characters: 128 random bits written in hex (`openssl rand -hex 16`); a shorter key is too easy to guess. */
const MIN_KEY_LENGTH = 32;
/** A key travels as one bearer token, so it cannot contain whitespace or control characters. */
const KEY_CHARS = /^[\x21-\x7e]+$/;
/** `Authorization: Bearer <token>`, the scheme case-insensitive (RFC 9110 §11.1). */
const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** GATEWAY_KEYS is missing or malformed. The message names the problem and key IDs, never a key. */
export class GatewayKeysError extends Error {
  override readonly name = "GatewayKeysError";
}

export interface GatewayKey {
  id: string;
  digest: Uint8Array;
}

const encoder = new TextEncoder();

async function digest(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(value)));
}

async function parse(raw: unknown): Promise<GatewayKey[]> {
  if (raw === undefined || raw === null || raw === "") throw new GatewayKeysError("GATEWAY_KEYS is not set; refusing every request");
  if (typeof raw !== "string") throw new GatewayKeysError("GATEWAY_KEYS must be a secret holding a JSON object of key ID → key");
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new GatewayKeysError("GATEWAY_KEYS is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new GatewayKeysError("GATEWAY_KEYS must be a JSON object of key ID → key");
  }
  const entries = Object.entries(parsed);
  if (entries.length === 0) throw new GatewayKeysError("GATEWAY_KEYS holds no keys");
  // Entries are named by position: a key pasted where its ID belongs must not reach the log.
  const seen = new Map<string, number>();
  for (const [i, [id, key]] of entries.entries()) {
    const entry = `entry ${i + 1}`;
    if (!KEY_ID.test(id)) throw new GatewayKeysError(`GATEWAY_KEYS ${entry}: the key ID must be 1-64 characters of A-Z a-z 0-9 . _ ~ -`);
    if (typeof key !== "string" || key.length < MIN_KEY_LENGTH || !KEY_CHARS.test(key)) {
      throw new GatewayKeysError(`GATEWAY_KEYS ${entry}: the key must be a string of at least ${MIN_KEY_LENGTH} visible ASCII characters`);
    }
    const twin = seen.get(key);
    if (twin !== undefined) throw new GatewayKeysError(`GATEWAY_KEYS entries ${twin + 1} and ${i + 1} have the same key`);
    seen.set(key, i);
  }
  return Promise.all(entries.map(async ([id, key]) => ({ id, digest: await digest(key as string) })));
}

/** The last parsed value and its keys: one parse and one digest per key per isolate, not per request. */
let cached: { raw: unknown; keys: Promise<GatewayKey[]> } | undefined;

/** The configured keys; rejects with GatewayKeysError when GATEWAY_KEYS is missing or malformed. */
export function gatewayKeys(raw: unknown): Promise<GatewayKey[]> {
  if (cached === undefined || cached.raw !== raw) cached = { raw, keys: parse(raw) };
  return cached.keys;
}

/**
 * The ID of the key the request's bearer token matches, or undefined. SHA-256
 * digests are compared byte by byte against every key with no early exit, so
 * timing reveals neither how much of a key matched nor which key it was.
 */
export async function authenticate(authorization: string | null, keys: GatewayKey[]): Promise<string | undefined> {
  const token = authorization === null ? undefined : BEARER.exec(authorization)?.[1];
  if (token === undefined) return undefined;
  const presented = await digest(token);
  let match: string | undefined;
  for (const key of keys) {
    let diff = 0;
    for (let i = 0; i < presented.length; i++) diff |= presented[i]! ^ key.digest[i]!;
    if (diff === 0) match = key.id;
  }
  return match;
}
