/**
 * Session IDs that coding agents send (issue 15). The values below are in the formats the
 * tools' public source produces (docs/http-api.md "Session IDs coding agents send" cites it):
 * Claude Code's `metadata.user_id` (legacy `user_<64 hex>_account_<uuid or empty>_session_<uuid>`,
 * and since 2.1.78 a JSON string), its `X-Claude-Code-Session-Id` header, Codex's session
 * headers and OpenAI's `prompt_cache_key`. Expected IDs are SHA-256 vectors computed with
 * Python's hashlib over the documented preimage, not by this code base.
 */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/session/config";
import { planResolve } from "../src/requests/resolve-input";
import { findSourceSessionId, parseClaudeCodeUserId, sourceSessionId } from "../src/requests/session-sources";
import { userScope } from "../src/requests/user-scope";
import { deriveSessionId } from "../src/session/hashing";

const DEVICE = "5d2c8a0e7f1b4c3a9e6d0f2b8a7c1e4d3f6a9b0c2d5e8f1a4b7c0d3e6f9a2b5c";
const ACCOUNT = "0f8e4c2a-6b1d-4e3f-9a7c-5d2b8e1f4a6c";
const SESSION = "7c1e9b3a-4d2f-4a8e-b6c0-1f5d8a2e9b4c";
const CODEX = "0199a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b";
const ALL = ["claude-code", "codex", "prompt-cache-key"] as const;

/** Python: sha256(0xFF + tag + LP("metadata.user_id.device_id") LP(DEVICE) LP("metadata.user_id.account_uuid") LP(ACCOUNT) LP("claude-code") LP(SESSION)). */
const CC_VECTOR = "21735eee43e58bc4d02c71b0bd8efd7dfa801c3ce895a092e41d9d3d6d01557a";
/** The same with account_uuid "". */
const CC_NO_ACCOUNT_VECTOR = "07aa129116e10fef18f4d3bccf59d70e71b271ea7a247bc04357141899839c5c";
/** Python: sha256(0xFF + tag + LP("user") LP("alice") LP("codex") LP(CODEX)). */
const CODEX_ALICE_VECTOR = "d3ef128898d8c55aa0ccc448537ef02fbf96c83c715363c40030b8efbbfe54c9";

const legacy = (device = DEVICE, account = ACCOUNT, session = SESSION) => `user_${device}_account_${account}_session_${session}`;
/** As Claude Code >= 2.1.78 builds it: `JSON.stringify({...extraMetadata, device_id, account_uuid, session_id})`. */
const json = (extra: Record<string, unknown> = {}, device = DEVICE, account = ACCOUNT, session = SESSION) =>
  JSON.stringify({ ...extra, device_id: device, account_uuid: account, session_id: session });

const anthropicBody = (userId?: unknown, text = "Fix the flaky test") => ({
  model: "claude-sonnet-4",
  max_tokens: 1024,
  messages: [{ role: "user", content: [{ type: "text", text }] }],
  ...(userId === undefined ? {} : { metadata: { user_id: userId } }),
});
const openaiBody = (extra: Record<string, unknown> = {}, text = "Fix the flaky test") => ({
  model: "gpt-5",
  messages: [{ role: "user", content: text }],
  ...extra,
});

describe("Claude Code metadata.user_id", () => {
  it("reads the legacy form, with an OAuth account and without one (API key: account__session_)", () => {
    expect(parseClaudeCodeUserId(legacy())).toEqual({ deviceId: DEVICE, accountUuid: ACCOUNT, sessionId: SESSION });
    expect(parseClaudeCodeUserId(legacy(DEVICE, ""))).toEqual({ deviceId: DEVICE, accountUuid: "", sessionId: SESSION });
  });

  it("reads uppercase hex and lowercases it, so both spellings are one session", () => {
    const upper = legacy(DEVICE.toUpperCase(), ACCOUNT.toUpperCase(), SESSION.toUpperCase());
    expect(parseClaudeCodeUserId(upper)).toEqual({ deviceId: DEVICE, accountUuid: ACCOUNT, sessionId: SESSION });
    expect(parseClaudeCodeUserId(json({}, DEVICE.toUpperCase(), ACCOUNT, SESSION.toUpperCase()))).toEqual({
      deviceId: DEVICE,
      accountUuid: ACCOUNT,
      sessionId: SESSION,
    });
  });

  it("reads the JSON form, with extra keys (CLAUDE_CODE_EXTRA_METADATA, parent_session_id, ti/tk/cd) and without an account", () => {
    expect(parseClaudeCodeUserId(json())).toEqual({ deviceId: DEVICE, accountUuid: ACCOUNT, sessionId: SESSION });
    const extra = JSON.stringify({ team: "infra", device_id: DEVICE, account_uuid: "", session_id: SESSION, parent_session_id: CODEX, ti: "x", cd: 1 });
    expect(parseClaudeCodeUserId(extra)).toEqual({ deviceId: DEVICE, accountUuid: "", sessionId: SESSION });
  });

  it("fits the JSON form with a parent_session_id within the 256 characters metadata.user_id may hold", () => {
    const withParent = JSON.stringify({ device_id: DEVICE, account_uuid: ACCOUNT, session_id: SESSION, parent_session_id: CODEX });
    expect(withParent.length).toBeLessThanOrEqual(256);
    expect(parseClaudeCodeUserId(withParent)?.sessionId).toBe(SESSION);
  });

  it("rejects anything else: plain user IDs, trailing junk, short hex, non-UUID sessions, bad or oversized JSON, non-strings", () => {
    const rejected: unknown[] = [
      "alice",
      "user_123",
      `${legacy()}_x`,
      `${legacy()}0`,
      ` ${legacy()}`,
      legacy(DEVICE.slice(1)),
      legacy(DEVICE, ACCOUNT, "abc-123"),
      legacy(DEVICE, "not-an-account"),
      `user_${DEVICE}_session_${SESSION}`,
      "{",
      "{not json}",
      JSON.stringify({ device_id: DEVICE, session_id: 42 }),
      JSON.stringify({ account_uuid: ACCOUNT, session_id: SESSION }),
      JSON.stringify({ device_id: DEVICE, account_uuid: 7, session_id: SESSION }),
      JSON.stringify({ device_id: DEVICE, account_uuid: ACCOUNT, session_id: `${SESSION}x` }),
      json({ pad: "p".repeat(200) }),
      `[${JSON.stringify(json())}]`,
      42,
      null,
      { device_id: DEVICE, session_id: SESSION },
    ];
    for (const value of rejected) expect(parseClaudeCodeUserId(value), JSON.stringify(value)).toBeUndefined();
  });
});

describe("finding an ID", () => {
  it("claude-code: the X-Claude-Code-Session-Id header (any case) before the body; the body's session part otherwise", () => {
    const body = anthropicBody(legacy());
    const other = "3b9d2f4e-8a1c-4d7b-9e2f-6c5a1b8d0e3f";
    expect(findSourceSessionId(ALL, { "X-Claude-Code-Session-Id": other.toUpperCase() }, body)).toEqual({
      source: "claude-code",
      foundIn: "header",
      id: other,
    });
    expect(findSourceSessionId(ALL, {}, body)).toEqual({ source: "claude-code", foundIn: "body", id: SESSION });
    expect(findSourceSessionId(ALL, { "x-claude-code-session-id": "not-a-uuid" }, anthropicBody(json()))).toEqual({
      source: "claude-code",
      foundIn: "body",
      id: SESSION,
    });
  });

  it("codex: thread-id, session-id, session_id, conversation_id, each on its own and in any case; thread-id first", () => {
    for (const name of ["thread-id", "Session-Id", "session_id", "CONVERSATION_ID"]) {
      expect(findSourceSessionId(ALL, { [name]: CODEX }, openaiBody()), name).toEqual({ source: "codex", foundIn: "header", id: CODEX });
    }
    expect(findSourceSessionId(ALL, { "session-id": SESSION, "thread-id": CODEX }, openaiBody())?.id).toBe(CODEX);
    expect(findSourceSessionId(ALL, { "thread-id": "main", session_id: CODEX }, openaiBody())?.id).toBe(CODEX);
  });

  it("prompt-cache-key: Codex's UUID or OpenCode's ses_ ID; at most 64 characters, a valid session ID", () => {
    expect(findSourceSessionId(ALL, {}, openaiBody({ prompt_cache_key: CODEX }))).toEqual({ source: "prompt-cache-key", foundIn: "body", id: CODEX });
    const opencode = "ses_0198c2d4e6f8AbCdEfGhIjKlMn";
    expect(findSourceSessionId(ALL, {}, openaiBody({ prompt_cache_key: opencode }))?.id).toBe(opencode);
    expect(findSourceSessionId(ALL, {}, openaiBody({ prompt_cache_key: "k".repeat(64) }))?.id).toBe("k".repeat(64));
    for (const key of ["k".repeat(65), "", "..", "a\u0000b", "a\u200bb", 42, { id: "x" }, ["x"], null]) {
      expect(findSourceSessionId(ALL, {}, openaiBody({ prompt_cache_key: key })), JSON.stringify(key)).toBeUndefined();
    }
  });

  it("tries the sources in the configured order, skipping a value of the wrong format", () => {
    const headers = { session_id: CODEX };
    const body = { ...anthropicBody(legacy()), prompt_cache_key: "cache-7" };
    expect(findSourceSessionId(ALL, headers, body)?.source).toBe("claude-code");
    expect(findSourceSessionId(["codex", "claude-code"], headers, body)?.source).toBe("codex");
    expect(findSourceSessionId(["prompt-cache-key", "codex"], headers, body)?.id).toBe("cache-7");
    expect(findSourceSessionId(ALL, { session_id: "junk" }, { ...anthropicBody("alice"), prompt_cache_key: "cache-7" })?.id).toBe("cache-7");
    expect(findSourceSessionId(["codex"], {}, body)).toBeUndefined();
    expect(findSourceSessionId([], headers, body)).toBeUndefined();
  });
});

describe("the session ID of a found ID", () => {
  const idFor = async (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    sourceSessionId(findSourceSessionId(ALL, headers, body)!, userScope(body));

  it("is scoped by the Claude Code install (device_id, account_uuid), matching vectors computed outside this code base", async () => {
    expect(await idFor(anthropicBody(legacy()))).toBe(CC_VECTOR);
    expect(await idFor(anthropicBody(legacy(DEVICE, "")))).toBe(CC_NO_ACCOUNT_VECTOR);
    expect(await idFor({ ...openaiBody(), user: "alice" }, { "thread-id": CODEX })).toBe(CODEX_ALICE_VECTOR);
  });

  it("is one session for one Claude Code conversation: either form, any extra keys, the header or the body", async () => {
    const ids = await Promise.all([
      idFor(anthropicBody(legacy())),
      idFor(anthropicBody(json())),
      idFor(anthropicBody(json({ ti: "a" }), "first turn")),
      idFor(anthropicBody(json({ tk: "b", parent_session_id: CODEX }), "second turn")),
      idFor(anthropicBody(legacy(DEVICE.toUpperCase()), "third turn")),
      idFor(anthropicBody(json()), { "x-claude-code-session-id": SESSION }),
    ]);
    expect(new Set(ids)).toEqual(new Set([CC_VECTOR]));
  });

  it("differs between installs and accounts that carry the same session UUID", async () => {
    const otherDevice = "e".repeat(64);
    const ids = await Promise.all([
      idFor(anthropicBody(legacy())),
      idFor(anthropicBody(legacy(otherDevice))),
      idFor(anthropicBody(json({}, otherDevice))),
      idFor(anthropicBody(legacy(DEVICE, ""))),
    ]);
    expect(ids[1]).toBe(ids[2]);
    expect(new Set(ids).size).toBe(3);
  });

  it("is the found ID itself when the body names no user", async () => {
    expect(await idFor(openaiBody(), { "thread-id": CODEX.toUpperCase() })).toBe(CODEX);
    expect(await idFor(openaiBody({ prompt_cache_key: "cache-7" }))).toBe("cache-7");
    expect(await idFor(openaiBody(), { "x-claude-code-session-id": SESSION })).toBe(SESSION);
  });

  it("is scoped by a plain user too, and differs by source for the same found value", async () => {
    const viaHeader = await idFor({ ...openaiBody(), user: "alice" }, { "thread-id": CODEX });
    const viaKey = await idFor({ ...openaiBody({ prompt_cache_key: CODEX }), user: "alice" });
    const bob = await idFor({ ...openaiBody(), user: "bob" }, { "thread-id": CODEX });
    expect(new Set([viaHeader, viaKey, bob, CODEX]).size).toBe(4);
  });
});

describe("planResolve with SESSION_ID_SOURCES", () => {
  const plan = async (vars: Record<string, unknown>, input: { headers?: Record<string, string>; sessionId?: string; body: Record<string, unknown> }) => {
    const result = await planResolve(input as Parameters<typeof planResolve>[0], parseConfig(vars));
    return result.sessionId === null ? { sessionId: null, source: null } : { sessionId: result.sessionId, source: result.source };
  };
  const body = { ...openaiBody({ prompt_cache_key: "cache-7" }, "opening words") };

  it("looks at sessionId, then SESSION_HEADER, then the sources in order, then derives", async () => {
    const headers = { "thread-id": CODEX };
    expect(await plan({}, { sessionId: "mine", headers: { ...headers, "x-session-id": "hdr" }, body })).toEqual({ sessionId: "mine", source: "explicit" });
    expect(await plan({}, { headers: { ...headers, "x-session-id": "hdr" }, body })).toEqual({ sessionId: "hdr", source: "header" });
    expect(await plan({ SESSION_HEADER: "thread-id" }, { headers, body })).toEqual({ sessionId: CODEX, source: "header" });
    expect(await plan({}, { headers, body })).toEqual({ sessionId: CODEX, source: "header" });
    expect(await plan({ SESSION_ID_SOURCES: "prompt-cache-key,codex" }, { headers, body })).toEqual({ sessionId: "cache-7", source: "body" });
    expect(await plan({ SESSION_ID_SOURCES: "claude-code" }, { headers, body })).toEqual({
      sessionId: await deriveSessionId("opening words"),
      source: "derived",
    });
  });

  it("with none, never looks at the agents' IDs", async () => {
    const derived = { sessionId: await deriveSessionId("opening words"), source: "derived" };
    expect(await plan({ SESSION_ID_SOURCES: "none" }, { headers: { "thread-id": CODEX, "x-claude-code-session-id": SESSION }, body })).toEqual(derived);
  });
});
