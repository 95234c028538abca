/** POST /v1/resolve and RPC resolve: the whole session decision for one gateway request. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { configFor } from "../src/session/config";
import { deriveSessionId } from "../src/session/hashing";
import { anthropic, openai, SYSTEM } from "./support/bodies";
import { call, sessionPath } from "./support/http";
import { freshId } from "./support/back-ends";
import { rpcFailure } from "./support/rpc";
import { router } from "../src/http/router";

const MEDIUM = { model: "kimi-k2.5", tier: "MEDIUM" };
const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const COMPLEX = { model: "gemini-3.1-pro", tier: "COMPLEX" };

async function resolve(input: unknown) {
  const res = await call("POST", "/v1/resolve", { body: input });
  return { ...res, pinnedHeader: res.headers.get("x-session-pinned") };
}

function expectError(res: { status: number; json: any }, status: number, code: string, field?: string) {
  expect(res.status).toBe(status);
  expect(res.json.error.code).toBe(code);
  if (field) expect(res.json.error.message).toContain(field);
}

describe("session ID", () => {
  it("derives from the first user message of an OpenAI body (string content), ignoring the system prompt", async () => {
    const first = `derive me ${crypto.randomUUID()}`;
    const res = await resolve({ body: openai("auto", [{ user: first, tools: ["read_file"] }, { user: "and then?" }]), routed: MEDIUM });
    expect(res.json).toMatchObject({ sessionId: await deriveSessionId(first), source: "derived", model: "kimi-k2.5", pinned: false });
  });

  it("derives from the first user message of an Anthropic body (text parts joined with \\n); system is not a user message", async () => {
    const body = anthropic("auto", [{ user: "part one" }]);
    const tag = crypto.randomUUID();
    (body.messages[0] as any).content = [
      { type: "text", text: `part one ${tag}` },
      { type: "image", source: {} },
      { type: "text", text: "part two" },
    ];
    const res = await resolve({ body, routed: MEDIUM });
    expect(res.json.sessionId).toBe(await deriveSessionId(`part one ${tag}\npart two`));
    expect(res.json.sessionId).not.toBe(await deriveSessionId(SYSTEM));
  });

  it("prefers sessionId over the header, and the header (case-insensitive) over derivation", async () => {
    const [a, b] = [freshId("explicit"), freshId("header")];
    const body = openai("auto", [{ user: "hello" }]);
    expect((await resolve({ sessionId: a, headers: { "x-session-id": b }, body, routed: MEDIUM })).json).toMatchObject({ sessionId: a, source: "explicit" });
    expect((await resolve({ headers: { "X-Session-ID": b }, body, routed: MEDIUM })).json).toMatchObject({ sessionId: b, source: "header" });
  });

  it("with no ID and no user message answers sessionId null with the would-be model, storing nothing", async () => {
    const res = await resolve({ body: { model: "auto", messages: [{ role: "system", content: "only system" }] }, routed: SIMPLE });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ sessionId: null, model: "gemini-2.5-flash", pinned: false, requestCount: 0 });
    expect((await resolve({ body: { model: "gpt-x", messages: [] } })).json).toMatchObject({ sessionId: null, model: "gpt-x", userExplicit: true });
  });
});

/** The documented user-scoped derivation (docs/http-api.md "User-scoped session IDs"), written here from the formula, not from src. */
async function userScopedId(fields: [string, string][], message: string): Promise<string> {
  const enc = new TextEncoder();
  const parts: number[] = [0xff, ...enc.encode("edge-session/user-scoped-session-id/v1")];
  for (const s of [...fields.flat(), message]) {
    const b = enc.encode(s);
    parts.push((b.length >>> 24) & 0xff, (b.length >>> 16) & 0xff, (b.length >>> 8) & 0xff, b.length & 0xff, ...b);
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(parts)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("user-scoped session ID (issue 11)", () => {
  const derived = async (body: Record<string, unknown>) => (await resolve({ body, routed: MEDIUM })).json.sessionId;

  it("matches the documented derivation, checked against vectors computed outside this code base", async () => {
    // Python hashlib over the documented preimage (docs/http-api.md).
    expect(await userScopedId([["user", "alice"]], "hi")).toBe("5fbb68e083107c852ed1c744d2b63b6fbcea68eb902acb196d30623466b70c94");
    expect(await derived({ ...openai("auto", [{ user: "hi" }]), user: "alice" })).toBe("5fbb68e083107c852ed1c744d2b63b6fbcea68eb902acb196d30623466b70c94");
    expect(await derived({ ...anthropic("auto", [{ user: "hi" }]), metadata: { user_id: "alice" } })).toBe(
      "b345e4d173a2199d10e94e68c12ec4f4c2a99b100cd999fd9265ef71f937cb8f",
    );
    const all = { ...openai("auto", [{ user: "héllo 文" }]), user: "alice", safety_identifier: "sid-1", metadata: { user_id: "ü" } };
    expect(await derived(all)).toBe("f815372f8b768b723a07eca3e27daa02474dc28f98e88b6f65c75c1948c6cea3");
    const first = `vector ${crypto.randomUUID()}`;
    expect(await derived({ ...openai("auto", [{ user: first }]), safety_identifier: "s-9" })).toBe(await userScopedId([["safety_identifier", "s-9"]], first));
  });

  it("defeats session riding: an attacker's pinned model and cost do not reach another user who opens the same way", async () => {
    const opening = `hi ${crypto.randomUUID()}`;
    const attack = { model: "very-costly-model", user: "mallory", messages: [{ role: "user", content: opening }] };
    const pinned = await resolve({ body: attack, costMicros: 5000 });
    expect(pinned.json).toMatchObject({ model: "very-costly-model", userExplicit: true, source: "derived" });
    expect((await resolve({ body: attack })).json.pinned).toBe(true);

    const victim = await resolve({ body: { ...openai("auto", [{ user: opening }]), user: "victor" }, routed: MEDIUM, costMicros: 10 });
    expect(victim.status).toBe(200);
    expect(victim.json).toMatchObject({ model: "kimi-k2.5", tier: "MEDIUM", pinned: false, userExplicit: false, requestCount: 1, sessionCostMicros: 10 });
    expect(victim.json.sessionId).not.toBe(pinned.json.sessionId);
    expect((await call("GET", sessionPath(pinned.json.sessionId, "/cost"))).json.sessionCostMicros).toBe(5000);
  });

  it("gives one user the same ID on every turn of a conversation, in both shapes", async () => {
    const opening = `plan the migration ${crypto.randomUUID()}`;
    const turns = [[{ user: opening }], [{ user: opening, tools: ["read_file"] }, { user: "continue" }], [{ user: opening }, { user: "a" }, { user: "b" }]];
    const ids = await Promise.all(turns.map((t) => derived({ ...openai("auto", t), user: "u-1" })));
    expect(new Set(ids).size).toBe(1);
    const anthropicIds = await Promise.all(
      [[{ user: opening }], [{ user: opening, tools: ["grep"] }, { user: "more" }]].map((t) =>
        derived({ ...anthropic("auto", t), metadata: { user_id: "u-1" } }),
      ),
    );
    expect(new Set(anthropicIds).size).toBe(1);
    expect(await derived({ ...openai("auto", [{ user: opening }]), user: "u-2" })).not.toBe(ids[0]);
  });

  it("keeps the reference derivation, SHA-256 of the first user message, when no user is named", async () => {
    const opening = `no user ${crypto.randomUUID()}`;
    const reference = (await call("POST", "/v1/session-id", { body: { firstUserMessage: opening } })).json.sessionId;
    expect(await derived(openai("auto", [{ user: opening }]))).toBe(reference);
    expect(await derived({ ...openai("auto", [{ user: opening }]), user: null, safety_identifier: "", metadata: { other: 1 } })).toBe(reference);
    expect(await derived({ ...anthropic("auto", [{ user: opening }]), metadata: "not an object" })).toBe(reference);
  });

  it("rejects a user field of the wrong type or an absurd length with 400 naming it, storing nothing", async () => {
    const opening = `bad user ${crypto.randomUUID()}`;
    const cases: [Record<string, unknown>, string][] = [
      [{ user: 42 }, "body.user"],
      [{ user: ["alice"] }, "body.user"],
      [{ safety_identifier: { id: "x" } }, "body.safety_identifier"],
      [{ metadata: { user_id: 7 } }, "body.metadata.user_id"],
      [{ user: "x".repeat(257) }, "body.user"],
      [{ metadata: { user_id: "y".repeat(257) } }, "body.metadata.user_id"],
    ];
    for (const [extra, field] of cases) {
      const res = await resolve({ body: { ...openai("auto", [{ user: opening }]), ...extra }, routed: MEDIUM });
      expectError(res, 400, "invalid_request", field);
      expect(res.json.error.field).toBe(field);
    }
    expect(await derived({ ...openai("auto", [{ user: opening }]), user: "x".repeat(256) })).toMatch(/^[0-9a-f]{64}$/);
    expect((await call("GET", sessionPath(await sha256Hex(opening)))).status).toBe(404);
  });
});

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("pinning", () => {
  it("keeps a 3-turn conversation on its first model, with one requestCount increment per resolve", async () => {
    const id = freshId("pin");
    const first = await resolve({ sessionId: id, body: openai("auto", [{ user: "hi" }]), routed: MEDIUM });
    expect(first.json).toMatchObject({ model: "kimi-k2.5", tier: "MEDIUM", pinned: false, requestCount: 1 });
    expect(first.pinnedHeader).toBe("false");
    const second = await resolve({ sessionId: id, body: openai("auto", [{ user: "hi" }, { user: "tell me more" }]), routed: SIMPLE });
    expect(second.json).toMatchObject({ model: "kimi-k2.5", tier: "MEDIUM", pinned: true, requestCount: 2 });
    expect(second.pinnedHeader).toBe("true");
    const third = await resolve({ sessionId: id, body: openai("auto", [{ user: "hi" }, { user: "x" }, { user: "ok" }]), routed: MEDIUM });
    expect(third.json).toMatchObject({ model: "kimi-k2.5", pinned: true, requestCount: 3 });
  });

  it("upgrades when the router ranks a later request higher, and never goes down (ClawRouter issue 61)", async () => {
    const id = freshId("upgrade");
    await resolve({ sessionId: id, body: openai("auto", [{ user: "hi" }]), routed: SIMPLE });
    const hard = await resolve({ sessionId: id, body: openai("auto", [{ user: "prove this theorem" }]), routed: COMPLEX });
    expect(hard.json).toMatchObject({ model: "gemini-3.1-pro", tier: "COMPLEX", pinned: true });
    const easy = await resolve({ sessionId: id, body: openai("auto", [{ user: "thanks" }]), routed: SIMPLE });
    expect(easy.json).toMatchObject({ model: "gemini-3.1-pro", tier: "COMPLEX" });
    const same = await resolve({ sessionId: id, body: openai("auto", [{ user: "more" }]), routed: { model: "other-complex", tier: "COMPLEX" } });
    expect(same.json).toMatchObject({ model: "gemini-3.1-pro", tier: "COMPLEX", requestCount: 4 });
  });

  it("pins an explicit model, which survives later profile requests and escalation attempts", async () => {
    const id = freshId("explicit");
    const pick = await resolve({ sessionId: id, body: openai("claude-opus-4", [{ user: "use my model" }]) });
    expect(pick.json).toMatchObject({ model: "claude-opus-4", tier: "", userExplicit: true });
    for (const routed of [COMPLEX, { model: "grok-4-1-fast-reasoning", tier: "REASONING" }]) {
      const res = await resolve({ sessionId: id, body: openai("auto", [{ user: "loop" }]), routed });
      expect(res.json).toMatchObject({ model: "claude-opus-4", userExplicit: true, escalated: false });
    }
    // The same looping content a third and fourth time: strikes rise, escalation is refused.
    const third = await resolve({ sessionId: id, body: openai("auto", [{ user: "loop" }]), routed: COMPLEX });
    const fourth = await resolve({ sessionId: id, body: openai("auto", [{ user: "loop" }]), routed: COMPLEX });
    expect(third.json).toMatchObject({ model: "claude-opus-4", strikes: 2, escalated: false });
    expect(fourth.json).toMatchObject({ model: "claude-opus-4", strikes: 3, escalated: false });
    expect((await call("POST", sessionPath(id, "/escalate"))).json).toMatchObject({ model: "claude-opus-4", escalated: false });
  });

  it("lets a new explicit model replace an old explicit one", async () => {
    const id = freshId("switch");
    await resolve({ sessionId: id, body: openai("model-a", [{ user: "x" }]) });
    expect((await resolve({ sessionId: id, body: openai("model-b", [{ user: "y" }]) })).json).toMatchObject({ model: "model-b", userExplicit: true });
  });
});

describe("loop check", () => {
  it("escalates on the third and fourth identical requests (OpenAI tool loop)", async () => {
    const id = freshId("loop");
    const body = openai("auto", [{ user: "fix the failing test" }, { tools: ["run_tests"] }]);
    const results = [];
    for (let i = 0; i < 4; i++) results.push((await resolve({ sessionId: id, body, routed: SIMPLE })).json);
    expect(results.map((r) => [r.strikes, r.escalated, r.tier, r.model])).toEqual([
      [0, false, "SIMPLE", "gemini-2.5-flash"],
      [1, false, "SIMPLE", "gemini-2.5-flash"],
      [2, true, "MEDIUM", "kimi-k2.5"],
      [3, true, "COMPLEX", "gemini-3.1-pro"],
    ]);
    expect((await call("GET", sessionPath(id))).json).toMatchObject({ escalated: true, tier: "COMPLEX", model: "gemini-3.1-pro", requestCount: 4 });
  });

  it("escalates an Anthropic tool_use loop the same way", async () => {
    const id = freshId("loop-anthropic");
    const body = anthropic("auto", [{ user: "refactor it" }, { tools: ["edit_file"] }]);
    const strikes = [];
    for (let i = 0; i < 3; i++) strikes.push((await resolve({ sessionId: id, body, routed: SIMPLE })).json);
    expect(strikes.map((r) => [r.strikes, r.escalated])).toEqual([
      [0, false],
      [1, false],
      [2, true],
    ]);
  });

  it("does not strike when the tool call differs", async () => {
    const id = freshId("no-loop");
    const results = [];
    for (const tool of ["read_file", "write_file", "run_tests", "read_file"]) {
      results.push((await resolve({ sessionId: id, body: openai("auto", [{ user: "fix it" }, { tools: [tool] }]), routed: SIMPLE })).json);
    }
    expect(results.map((r) => r.strikes)).toEqual([0, 0, 0, 0]);
    expect(results.every((r) => !r.escalated && r.tier === "SIMPLE")).toBe(true);
  });

  it("treats tool names as a set: order of calls does not matter", async () => {
    const id = freshId("order");
    await resolve({ sessionId: id, body: openai("auto", [{ user: "go" }, { tools: ["a", "b"] }]), routed: SIMPLE });
    expect((await resolve({ sessionId: id, body: openai("auto", [{ user: "go" }, { tools: ["b", "a"] }]), routed: SIMPLE })).json.strikes).toBe(1);
  });
});

describe("cost and budget", () => {
  it("adds costMicros on each resolve", async () => {
    const id = freshId("cost");
    await resolve({ sessionId: id, body: openai("auto", [{ user: "a" }]), routed: MEDIUM, costMicros: 1200 });
    const res = await resolve({ sessionId: id, body: openai("auto", [{ user: "b" }]), routed: MEDIUM, costMicros: 800 });
    expect(res.json.sessionCostMicros).toBe(2000);
    expect((await call("GET", sessionPath(id, "/cost"))).json).toEqual({ sessionCostMicros: 2000, costUSD: 0.002 });
  });

  it("answers 429 session_budget_exceeded with the current cost, recording nothing", async () => {
    const budget = configFor(env).budgetMicros!;
    const id = freshId("budget");
    await resolve({ sessionId: id, body: openai("auto", [{ user: "a" }]), routed: MEDIUM, costMicros: 1000 });
    await call("POST", sessionPath(id, "/cost"), { body: { micros: budget - 5000 } });
    const before = (await call("GET", sessionPath(id))).json;
    expect(before.sessionCostMicros).toBe(budget - 4000);

    const over = await resolve({ sessionId: id, body: openai("auto", [{ user: "b" }]), routed: COMPLEX, costMicros: 4001 });
    expect(over.status).toBe(429);
    expect(over.json.error).toMatchObject({ code: "session_budget_exceeded", sessionCostMicros: budget - 4000, costMicros: 4001, budgetMicros: budget });
    expect((await call("GET", sessionPath(id))).json).toEqual(before);

    // Exactly reaching the budget is allowed; anything beyond it, even with no cost given, is not.
    const exact = await resolve({ sessionId: id, body: openai("auto", [{ user: "c" }]), routed: MEDIUM, costMicros: 4000 });
    expect(exact.json.sessionCostMicros).toBe(budget);
    await call("POST", sessionPath(id, "/cost"), { body: { micros: 1 } });
    expect((await resolve({ sessionId: id, body: openai("auto", [{ user: "d" }]), routed: MEDIUM })).status).toBe(429);
  });
});

describe("bad input", () => {
  it("rejects each malformed input with 400 naming the field, and stores nothing", async () => {
    const id = freshId("bad");
    const cases: [unknown, string][] = [
      [{ sessionId: id }, "body"],
      [{ sessionId: id, body: "text" }, "body"],
      [{ sessionId: id, body: [] }, "body"],
      [{ sessionId: id, body: { model: "auto", messages: "hi" }, routed: MEDIUM }, "messages"],
      [{ sessionId: id, body: { model: "auto" }, routed: MEDIUM }, "messages"],
      [{ sessionId: id, body: { model: "auto", messages: [1] }, routed: MEDIUM }, "messages[0]"],
      [{ sessionId: id, body: { messages: [] }, routed: MEDIUM }, "model"],
      [{ sessionId: id, body: openai("auto", [{ user: "x" }]) }, "routed"],
      [{ sessionId: id, body: openai("eco", [{ user: "x" }]), routed: "MEDIUM" }, "routed"],
      [{ sessionId: id, body: openai("auto", [{ user: "x" }]), routed: { model: "m", tier: "HUGE" } }, "routed.tier"],
      [{ sessionId: id, body: openai("auto", [{ user: "x" }]), routed: { model: "m", tier: "" } }, "routed.tier"],
      [{ sessionId: id, body: openai("auto", [{ user: "x" }]), routed: { tier: "SIMPLE" } }, "routed.model"],
      [{ sessionId: id, body: openai("auto", [{ user: "x" }]), routed: MEDIUM, costMicros: -5 }, "costMicros"],
      [{ sessionId: id, body: openai("auto", [{ user: "x" }]), routed: MEDIUM, costMicros: "5" }, "costMicros"],
      [{ headers: "x", body: openai("auto", [{ user: "x" }]), routed: MEDIUM }, "headers"],
      [{ headers: { "x-session-id": 5 }, body: openai("auto", [{ user: "x" }]), routed: MEDIUM }, "headers"],
    ];
    for (const [input, field] of cases) {
      const res = await resolve(input);
      expect(res.status, JSON.stringify(input)).toBe(400);
      expect(res.json.error.code).toBe("invalid_request");
      expect(res.json.error.message).toContain(field);
    }
    expectError(await resolve({ sessionId: "", body: openai("auto", [{ user: "x" }]), routed: MEDIUM }), 400, "invalid_session_id");
    expectError(await resolve({ headers: { "x-session-id": "a\u0000b" }, body: openai("auto", [{ user: "x" }]), routed: MEDIUM }), 400, "invalid_session_id");
    expectError(await call("POST", "/v1/resolve", { rawBody: "{" }), 400, "invalid_json");
    expect((await call("GET", sessionPath(id))).status).toBe(404);
  });

  it("accepts bodies up to 4 MiB and answers 413 above, counting exact bytes", async () => {
    const LIMIT = 4 * 1024 * 1024;
    const sized = (id: string, bytes: number) => {
      const input = { sessionId: id, body: openai("auto", [{ user: "" }, { user: "latest" }]), routed: MEDIUM };
      const pad = bytes - JSON.stringify(input).length;
      (input.body.messages[1] as any).content = "x".repeat(pad);
      const text = JSON.stringify(input);
      expect(new TextEncoder().encode(text).length).toBe(bytes);
      return text;
    };
    const id = freshId("large");
    expect((await call("POST", "/v1/resolve", { rawBody: sized(id, LIMIT) })).status).toBe(200);
    expectError(await call("POST", "/v1/resolve", { rawBody: sized(freshId("too-large"), LIMIT + 1) }), 413, "payload_too_large");
    expect((await call("GET", sessionPath(id))).json.requestCount).toBe(1);
  });

  it("ignores fields it does not read", async () => {
    const res = await resolve({
      sessionId: freshId("extra"),
      body: { ...openai("auto", [{ user: "x" }]), n: 3, response_format: { type: "json_object" } },
      routed: MEDIUM,
      extra: true,
    });
    expect(res.status).toBe(200);
  });
});

describe("routing profiles", () => {
  it("treats auto, eco and premium as profiles and anything else as an explicit model", async () => {
    for (const profile of ["auto", "eco", "premium"]) {
      const res = await resolve({ sessionId: freshId(profile), body: openai(profile, [{ user: "x" }]), routed: MEDIUM });
      expect(res.json).toMatchObject({ model: "kimi-k2.5", userExplicit: false });
    }
    expect((await resolve({ sessionId: freshId("auto2"), body: openai("Auto", [{ user: "x" }]) })).json).toMatchObject({ model: "Auto", userExplicit: true });
  });
});

describe("RPC through a service binding", () => {
  async function viaGateway(method: string, ...args: unknown[]) {
    const res = await env.GATEWAY.fetch("http://gateway/", { method: "POST", body: JSON.stringify({ method, args }) });
    return (await res.json()) as { ok?: any; error?: string };
  }

  it("resolves from a second Worker, the way a gateway Worker would", async () => {
    const id = freshId("binding");
    const body = openai("auto", [{ user: "loop forever" }, { tools: ["read_file"] }]);
    const out = [];
    for (let i = 0; i < 3; i++) out.push((await viaGateway("resolve", { headers: { "x-session-id": id }, body, routed: SIMPLE, costMicros: 10 })).ok);
    expect(out.map((r) => [r.source, r.pinned, r.strikes, r.escalated, r.model, r.sessionCostMicros])).toEqual([
      ["header", false, 0, false, "gemini-2.5-flash", 10],
      ["header", true, 1, false, "gemini-2.5-flash", 20],
      ["header", true, 2, true, "kimi-k2.5", 30],
    ]);
    expect((await viaGateway("getSession", id)).ok).toMatchObject({ id, requestCount: 3, escalated: true });
  });

  it("reports errors with their code (the fixture prints err.code, then the message)", async () => {
    expect((await viaGateway("resolve", { body: { model: "auto", messages: [] } })).error).toMatch(/^invalid_request: routed/);
    expect((await viaGateway("setSession", "", "m", "SIMPLE")).error).toMatch(/^invalid_session_id: /);
  });

  it("calls the other operations, as exports.SessionService does", async () => {
    const id = freshId("rpc");
    expect(await exports.SessionService.deriveSessionId("hello")).toBe("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    expect(await exports.SessionService.hashRequestContent("fix the bug", ["write_file", "read_file"])).toBe("091f622a4f22136f896f0b310357249e");
    const tooLong = "文".repeat(4 * 1024 * 1024 + 1);
    for (const call of [() => exports.SessionService.deriveSessionId(tooLong), () => exports.SessionService.hashRequestContent(tooLong)]) {
      const message = await rpcFailure(call());
      expect(message).toMatch(/^invalid_request: (firstUserMessage|content) must be at most 4194304 characters/);
    }
    expect(await exports.SessionService.recordRequestHash(id, "h")).toBe(0);
    expect(await exports.SessionService.getSessionCostUSD(id)).toBe(0);
    await exports.SessionService.setSession(id, "m", "SIMPLE");
    expect(await exports.SessionService.addSessionCost(id, 2_500_000)).toEqual({ sessionCostMicros: 2_500_000, costUSD: 2.5 });
    expect(await exports.SessionService.getSessionCostUSD(id)).toBe(2.5);
    await exports.SessionService.clearSession(id);
    expect(await exports.SessionService.getSession(id)).toBeNull();
  });
});

/** 32 random bytes as hex: a Claude Code install's device_id. */
const deviceId = () => [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, "0")).join("");
/** Claude Code's metadata.user_id, legacy (<= 2.1.77) and JSON (>= 2.1.78) forms (docs/http-api.md cites the source). */
const ccLegacy = (device: string, session: string, account = "") => `user_${device}_account_${account}_session_${session}`;
const ccJson = (device: string, session: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ...extra, device_id: device, account_uuid: "", session_id: session });

/** An Anthropic body as Claude Code sends it. */
const cc = (userId: string, turns: { user?: string; tools?: string[] }[] = [{ user: "Fix the flaky test" }]) => ({
  ...anthropic("auto", turns),
  metadata: { user_id: userId },
});

describe("session IDs that coding agents send (issue 15)", () => {
  it("keeps one Claude Code conversation in one session across its requests, in either form and from the header, as source body or header", async () => {
    const [device, session] = [deviceId(), crypto.randomUUID()];
    const first = await resolve({ body: cc(ccLegacy(device, session)), routed: MEDIUM });
    expect(first.json).toMatchObject({ source: "body", pinned: false, requestCount: 1 });
    expect(first.json.sessionId).toMatch(/^[0-9a-f]{64}$/);
    const second = await resolve({ body: cc(ccJson(device, session, { ti: "1" }), [{ user: "Fix the flaky test", tools: ["read_file"] }]), routed: MEDIUM });
    expect(second.json).toMatchObject({ sessionId: first.json.sessionId, source: "body", pinned: true, requestCount: 2 });
    const third = await resolve({
      headers: { "X-Claude-Code-Session-Id": session },
      body: cc(ccJson(device, session, { parent: "x", tk: 2 }), [{ user: "Fix the flaky test" }, { user: "go on" }]),
      routed: MEDIUM,
    });
    expect(third.json).toMatchObject({ sessionId: first.json.sessionId, source: "header", pinned: true, requestCount: 3 });
  });

  it("gives two installs that send the same session UUID two sessions", async () => {
    const session = crypto.randomUUID();
    const a = await resolve({ body: cc(ccLegacy(deviceId(), session)), routed: MEDIUM, costMicros: 7 });
    const b = await resolve({ body: cc(ccJson(deviceId(), session)), routed: SIMPLE, costMicros: 3 });
    expect([a.json.pinned, b.json.pinned]).toEqual([false, false]);
    expect(a.json.sessionId).not.toBe(b.json.sessionId);
    expect([a.json.sessionCostMicros, b.json.sessionCostMicros]).toEqual([7, 3]);
  });

  it("takes Codex's session headers (source header) and prompt_cache_key (source body) as the ID when no user is named", async () => {
    for (const name of ["thread-id", "Session-Id", "session_id", "conversation_id"]) {
      const id = crypto.randomUUID();
      expect((await resolve({ headers: { [name]: id }, body: openai("auto", [{ user: "hello" }]), routed: MEDIUM })).json).toMatchObject({
        sessionId: id,
        source: "header",
        pinned: false,
      });
    }
    const key = `ses_${crypto.randomUUID().replaceAll("-", "").slice(0, 26)}`;
    expect((await resolve({ body: openai("auto", [{ user: "hello" }], { prompt_cache_key: key }), routed: MEDIUM })).json).toMatchObject({
      sessionId: key,
      source: "body",
    });
  });

  it("scopes a found ID by the end user the body names", async () => {
    const id = crypto.randomUUID();
    const as = async (user: string) => (await resolve({ headers: { "thread-id": id }, body: openai("auto", [{ user: "hi" }], { user }), routed: MEDIUM })).json;
    const [alice, bob] = [await as("alice"), await as("bob")];
    expect(alice.source).toBe("header");
    expect(new Set([alice.sessionId, bob.sessionId, id]).size).toBe(3);
    expect((await as("alice")).sessionId).toBe(alice.sessionId);
  });

  it("never overrides sessionId or SESSION_HEADER", async () => {
    const [explicit, header, device] = [freshId("explicit"), freshId("header"), deviceId()];
    const body = { ...cc(ccLegacy(device, crypto.randomUUID())), prompt_cache_key: "cache-key" };
    const agents = { "thread-id": crypto.randomUUID(), "x-claude-code-session-id": crypto.randomUUID() };
    expect((await resolve({ sessionId: explicit, headers: agents, body, routed: MEDIUM })).json).toMatchObject({ sessionId: explicit, source: "explicit" });
    expect((await resolve({ headers: { ...agents, "x-session-id": header }, body, routed: MEDIUM })).json).toMatchObject({
      sessionId: header,
      source: "header",
    });
  });

  it("falls through to derivation when a value does not have its source's format", async () => {
    const opening = `fall through ${crypto.randomUUID()}`;
    const reference = await deriveSessionId(opening);
    const badLegacy = ccLegacy(deviceId(), "not-a-uuid");
    const derivedFrom = async (input: Record<string, unknown>) => (await resolve({ routed: MEDIUM, ...input })).json;
    expect(await derivedFrom({ body: { ...anthropic("auto", [{ user: opening }]), metadata: { user_id: badLegacy } } })).toMatchObject({
      sessionId: await userScopedId([["metadata.user_id", badLegacy]], opening),
      source: "derived",
    });
    expect(
      await derivedFrom({ headers: { session_id: "abc", "thread-id": `${crypto.randomUUID()}x` }, body: openai("auto", [{ user: opening }]) }),
    ).toMatchObject({
      sessionId: reference,
      source: "derived",
    });
    expect(await derivedFrom({ body: openai("auto", [{ user: opening }], { prompt_cache_key: "k".repeat(65) }) })).toMatchObject({
      sessionId: reference,
      source: "derived",
    });
  });

  it("answers 4xx, never 5xx, for junk in these fields, and derives when the junk is in a field only a source reads", async () => {
    const opening = `junk ${crypto.randomUUID()}`;
    const reference = await deriveSessionId(opening);
    const huge = "x".repeat(100_000);
    for (const key of [42, { id: "x" }, ["a"], true, huge, "", "\u0000"]) {
      const res = await resolve({ body: openai("auto", [{ user: opening }], { prompt_cache_key: key }), routed: MEDIUM });
      expect(res.json, JSON.stringify(key).slice(0, 40)).toMatchObject({ sessionId: reference, source: "derived" });
    }
    for (const name of ["x-claude-code-session-id", "thread-id", "session-id", "session_id", "conversation_id"]) {
      const res = await resolve({ headers: { [name]: huge }, body: openai("auto", [{ user: opening }]), routed: MEDIUM });
      expect(res.json).toMatchObject({ sessionId: reference, source: "derived" });
    }
    const bad: [Record<string, unknown>, string][] = [
      [{ headers: { "thread-id": 42 } }, "headers"],
      [{ headers: { session_id: { id: "x" } } }, "headers"],
      [
        { body: { ...anthropic("auto", [{ user: opening }]), metadata: { user_id: { device_id: deviceId(), session_id: crypto.randomUUID() } } } },
        "body.metadata.user_id",
      ],
      [
        { body: { ...anthropic("auto", [{ user: opening }]), metadata: { user_id: ccJson(deviceId(), crypto.randomUUID(), { pad: huge }) } } },
        "body.metadata.user_id",
      ],
      [{ body: { ...anthropic("auto", [{ user: opening }]), metadata: { user_id: 12 } } }, "body.metadata.user_id"],
    ];
    for (const [input, field] of bad) {
      const res = await resolve({ body: openai("auto", [{ user: opening }]), routed: MEDIUM, ...input });
      expectError(res, 400, "invalid_request", field);
    }
  });
});

describe("SESSION_ID_SOURCES and tenant scope over HTTP", () => {
  const via = (vars: Record<string, unknown>) => {
    const scopedEnv = { ...env, ...vars };
    return async (input: unknown, headers: Record<string, string> = {}) => {
      const request = new Request("http://session.test/v1/resolve", {
        method: "POST",
        headers: { authorization: "Bearer test-token", ...headers },
        body: JSON.stringify(input),
      });
      const res = await router.fetch(request, scopedEnv, {} as ExecutionContext);
      return { status: res.status, json: (await res.json()) as any };
    };
  };

  it("none turns the sources off; a list sets their order", async () => {
    const opening = `sources ${crypto.randomUUID()}`;
    const [thread, key] = [crypto.randomUUID(), `key-${crypto.randomUUID()}`];
    const input = { headers: { "thread-id": thread }, body: openai("auto", [{ user: opening }], { prompt_cache_key: key }), routed: MEDIUM };
    expect((await via({ SESSION_ID_SOURCES: "none" })(input)).json).toMatchObject({ sessionId: await deriveSessionId(opening), source: "derived" });
    expect((await via({ SESSION_ID_SOURCES: "prompt-cache-key,codex" })(input)).json).toMatchObject({ sessionId: key, source: "body" });
    expect((await via({ SESSION_ID_SOURCES: "codex,prompt-cache-key" })(input)).json).toMatchObject({ sessionId: thread, source: "header" });
    const invalid = await via({ SESSION_ID_SOURCES: "codex,cursor" })(input);
    expect(invalid.status).toBe(500);
    expect(invalid.json.error).toMatchObject({ code: "config_invalid" });
    expect(invalid.json.error.message).toContain("SESSION_ID_SOURCES");
  });

  it("keeps a found ID per tenant: the same Claude Code conversation in two tenants is two sessions", async () => {
    const resolveIn = via({ SESSION_NAMESPACE_HEADER: "x-tenant-id" });
    const body = cc(ccJson(deviceId(), crypto.randomUUID()));
    const a = await resolveIn({ body, routed: MEDIUM, costMicros: 11 }, { "x-tenant-id": `a-${crypto.randomUUID().slice(0, 8)}` });
    const b = await resolveIn({ body, routed: SIMPLE, costMicros: 4 }, { "x-tenant-id": `b-${crypto.randomUUID().slice(0, 8)}` });
    expect(a.json).toMatchObject({ source: "body", pinned: false, sessionCostMicros: 11, model: "kimi-k2.5" });
    expect(b.json).toMatchObject({ source: "body", pinned: false, sessionCostMicros: 4, model: "gemini-2.5-flash", sessionId: a.json.sessionId });
  });
});
