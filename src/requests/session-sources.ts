/**
 * Session IDs that coding agents already send (docs/http-api.md "Session IDs
 * coding agents send" cites each format's source). resolve reads them, in the
 * order of SESSION_ID_SOURCES, when neither `sessionId` nor SESSION_HEADER
 * names a session:
 *
 * - `claude-code`: the `X-Claude-Code-Session-Id` header, else the session part
 *   of an Anthropic body's `metadata.user_id`, in either form Claude Code sends:
 *   `user_<64 hex>_account_<uuid or empty>_session_<uuid>`, or a JSON string
 *   holding `device_id`, `account_uuid`, `session_id` and possibly more keys;
 * - `codex`: the `thread-id`, `session-id`, `session_id` or `conversation_id`
 *   header (Codex has sent each, in that order of preference), a UUID;
 * - `prompt-cache-key`: an OpenAI body's `prompt_cache_key`, 1 to 64 characters.
 *
 * A value that does not have its source's format is no error: the next source
 * is tried, then derivation. Every value is length-checked before any pattern
 * or JSON.parse touches it.
 *
 * The ID is scoped by the end user the body names, as a derived ID is
 * (src/requests/user-scope.ts), since it comes from that user's client:
 *
 *   preimage = 0xFF || "edge-session/user-scoped-source-id/v1"
 *              || for each user field: LP(field name) || LP(value)
 *              || LP(source name) || LP(found ID)
 *   LP(s)    = 4-byte big-endian length of UTF-8(s) || UTF-8(s)
 *   id       = lowercase hex SHA-256(preimage)
 *
 * The user fields are those of userScope, except that a `metadata.user_id` in a
 * Claude Code form is replaced by its two per-install parts,
 * `metadata.user_id.device_id` and `metadata.user_id.account_uuid` (lowercase):
 * the raw string also holds the session ID and, in the JSON form, keys that may
 * change between requests of one conversation. With no user named, the ID is
 * the found ID itself.
 */
import type { SessionIdSourceName } from "../session/config";
import { sessionIdProblem } from "../session/validate";
import { isObject } from "./messages";
import { MAX_USER_ID_LENGTH, scopedHash, type UserScope } from "./user-scope";

/** Where a found ID was: the answer's `source`. */
export type FoundIn = "body" | "header";

export interface FoundSessionId {
  source: SessionIdSourceName;
  foundIn: FoundIn;
  /** The ID as found, lowercased where its format is case-insensitive hex. */
  id: string;
}

/** The parts of a Claude Code `metadata.user_id`, lowercased. */
export interface ClaudeCodeUserId {
  deviceId: string;
  /** "" when the user has no OAuth account (an API key). */
  accountUuid: string;
  sessionId: string;
}

export const CLAUDE_CODE_SESSION_HEADER = "x-claude-code-session-id";
/** Codex's conversation headers, most specific first: sub-agents share their parent's `session-id` but have their own `thread-id`. */
export const CODEX_SESSION_HEADERS = ["thread-id", "session-id", "session_id", "conversation_id"] as const;
/** Every request header a source reads; a gateway forwards these (and SESSION_HEADER), nothing else. */
export const SOURCE_HEADERS: readonly string[] = [CLAUDE_CODE_SESSION_HEADER, ...CODEX_SESSION_HEADERS];
/** OpenAI rejects a longer `prompt_cache_key` ("string_above_max_length", maximum 64). */
export const MAX_PROMPT_CACHE_KEY_LENGTH = 64;

const UUID_LENGTH = 36;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEVICE_ID = /^[0-9a-f]{64}$/i;
const LEGACY_CLAUDE_CODE_USER_ID =
  /^user_([0-9a-f]{64})_account_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?_session_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

function uuid(value: unknown): string | undefined {
  if (typeof value !== "string" || value.length > UUID_LENGTH + 8) return undefined;
  const trimmed = value.trim();
  return UUID.test(trimmed) ? trimmed.toLowerCase() : undefined;
}

/** A Claude Code `metadata.user_id`, either form, or undefined for any other value (a plain user ID, a number, junk). */
export function parseClaudeCodeUserId(value: unknown): ClaudeCodeUserId | undefined {
  if (typeof value !== "string" || value.length > MAX_USER_ID_LENGTH) return undefined;
  if (value.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      return undefined;
    }
    if (!isObject(parsed)) return undefined;
    const { device_id, account_uuid, session_id } = parsed;
    if (typeof device_id !== "string" || !DEVICE_ID.test(device_id)) return undefined;
    if (account_uuid !== undefined && account_uuid !== "" && (typeof account_uuid !== "string" || !UUID.test(account_uuid))) return undefined;
    if (typeof session_id !== "string" || !UUID.test(session_id)) return undefined;
    return { deviceId: device_id.toLowerCase(), accountUuid: (account_uuid ?? "").toLowerCase(), sessionId: session_id.toLowerCase() };
  }
  const legacy = LEGACY_CLAUDE_CODE_USER_ID.exec(value);
  if (!legacy) return undefined;
  return { deviceId: legacy[1]!.toLowerCase(), accountUuid: (legacy[2] ?? "").toLowerCase(), sessionId: legacy[3]!.toLowerCase() };
}

/** A header's value, its name matched case-insensitively; undefined when absent. */
function header(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name && typeof value === "string") return value;
  }
  return undefined;
}

function metadataUserId(body: Record<string, unknown>): unknown {
  return isObject(body.metadata) ? body.metadata.user_id : undefined;
}

function fromSource(source: SessionIdSourceName, headers: Record<string, string> | undefined, body: Record<string, unknown>): FoundSessionId | undefined {
  switch (source) {
    case "claude-code": {
      const fromHeader = uuid(header(headers, CLAUDE_CODE_SESSION_HEADER));
      if (fromHeader !== undefined) return { source, foundIn: "header", id: fromHeader };
      const parsed = parseClaudeCodeUserId(metadataUserId(body));
      return parsed && { source, foundIn: "body", id: parsed.sessionId };
    }
    case "codex":
      for (const name of CODEX_SESSION_HEADERS) {
        const id = uuid(header(headers, name));
        if (id !== undefined) return { source, foundIn: "header", id };
      }
      return undefined;
    case "prompt-cache-key": {
      const key = body.prompt_cache_key;
      if (typeof key !== "string" || key.length > MAX_PROMPT_CACHE_KEY_LENGTH || sessionIdProblem(key) !== undefined) return undefined;
      return { source, foundIn: "body", id: key };
    }
  }
}

/** The first session ID the sources give, tried in order; undefined when none has one. */
export function findSourceSessionId(
  sources: readonly SessionIdSourceName[],
  headers: Record<string, string> | undefined,
  body: Record<string, unknown>,
): FoundSessionId | undefined {
  for (const source of sources) {
    const found = fromSource(source, headers, body);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The user fields that scope a found ID: `users`, with a Claude Code `metadata.user_id` replaced by its per-install parts. */
export function sourceScope(users: UserScope): UserScope {
  return users.flatMap(([name, value]): UserScope => {
    const claudeCode = name === "metadata.user_id" ? parseClaudeCodeUserId(value) : undefined;
    if (claudeCode === undefined) return [[name, value]];
    return [
      ["metadata.user_id.device_id", claudeCode.deviceId],
      ["metadata.user_id.account_uuid", claudeCode.accountUuid],
    ];
  });
}

const DOMAIN_TAG = "edge-session/user-scoped-source-id/v1";

/** The session ID for a found ID: the ID itself when no user is named, else the user-scoped hash above. */
export async function sourceSessionId(found: FoundSessionId, users: UserScope): Promise<string> {
  const scope = sourceScope(users);
  if (scope.length === 0) return found.id;
  return scopedHash(DOMAIN_TAG, [...scope.flat(), found.source, found.id]);
}
