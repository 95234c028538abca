/**
 * User-scoped derived session IDs. A derived ID is SHA-256 of the first user
 * message, so without a scope anyone who opens with the same message ("hi")
 * lands in the same session and can pin its model or spend its budget. When
 * the request body names its end user, the ID is derived from the user and
 * the message together.
 *
 * Derivation (docs/http-api.md "User-scoped session IDs" gives the same, for other gateways):
 *
 *   preimage = 0xFF || "edge-session/user-scoped-session-id/v1"
 *              || for each present field, in the order of USER_FIELDS: LP(field name) || LP(value)
 *              || LP(first user message)
 *   LP(s)    = 4-byte big-endian length of UTF-8(s) || UTF-8(s)
 *   id       = lowercase hex SHA-256(preimage)
 *
 * The 0xFF lead byte never occurs in UTF-8, so no first message hashed by the
 * unscoped derivation can equal a scoped preimage; the length prefixes make
 * every (fields, message) tuple encode differently.
 */
import { invalidRequest } from "../session/errors";
import { isObject } from "./messages";

/** Anthropic caps `metadata.user_id` at 256 characters; OpenAI's `safety_identifier` at 64. */
export const MAX_USER_ID_LENGTH = 256;

const DOMAIN_TAG = "edge-session/user-scoped-session-id/v1";
/** A byte that no UTF-8 text contains: separates scoped preimages from every unscoped one. */
const NOT_UTF8 = 0xff;

/** The fields that name an end user, with where they live in the body. */
export const USER_FIELDS = [
  { name: "user", read: (body: Record<string, unknown>) => body.user },
  { name: "safety_identifier", read: (body: Record<string, unknown>) => body.safety_identifier },
  { name: "metadata.user_id", read: (body: Record<string, unknown>) => (isObject(body.metadata) ? body.metadata.user_id : undefined) },
] as const;

export type UserScope = [name: string, value: string][];

/**
 * The user fields the body names, validated. `null` and `""` name no one (some
 * clients send them for "unset"); any other non-string, or a string longer than
 * MAX_USER_ID_LENGTH, is rejected rather than silently ignored, since ignoring
 * it would put that user in the unscoped session.
 */
export function userScope(body: Record<string, unknown>): UserScope {
  const scope: UserScope = [];
  for (const field of USER_FIELDS) {
    const value = field.read(body);
    if (value === undefined || value === null || value === "") continue;
    if (typeof value !== "string") throw invalidRequest(`body.${field.name}`, "must be a string (the end user's identifier)");
    if (value.length > MAX_USER_ID_LENGTH) throw invalidRequest(`body.${field.name}`, `must be at most ${MAX_USER_ID_LENGTH} characters`);
    scope.push([field.name, value]);
  }
  return scope;
}

const encoder = new TextEncoder();

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/**
 * Lowercase hex SHA-256 of 0xFF || tag || LP(item)…, with LP(s) the 4-byte
 * big-endian length of UTF-8(s), then UTF-8(s): every list of items under a tag
 * encodes differently, and none equals a preimage of UTF-8 text alone.
 */
export async function scopedHash(tag: string, items: readonly string[]): Promise<string> {
  const encoded = items.map((s) => encoder.encode(s));
  const tagBytes = encoder.encode(tag);
  const preimage = new Uint8Array(1 + tagBytes.length + encoded.reduce((n, b) => n + 4 + b.length, 0));
  const view = new DataView(preimage.buffer);
  preimage[0] = NOT_UTF8;
  preimage.set(tagBytes, 1);
  let offset = 1 + tagBytes.length;
  for (const item of encoded) {
    view.setUint32(offset, item.length);
    preimage.set(item, offset + 4);
    offset += 4 + item.length;
  }
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", preimage)));
}

/** The derived ID of `firstUserMessage` for the users in a non-empty `scope`. */
export function deriveUserScopedSessionId(scope: UserScope, firstUserMessage: string): Promise<string> {
  return scopedHash(DOMAIN_TAG, [...scope.flat(), firstUserMessage]);
}
