/**
 * Live sessions (issue 16): the journal and the operator actions. Expected
 * values come from the contract: the last 256 events, `after` paging, the
 * event types and fields, pause answering resolve with 423 `session_paused`
 * over both front doors, a pin that holds, and the actor "admin" on every
 * operator action.
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { freshId } from "./support/back-ends";
import { ADMIN_TOKEN, call, sessionPath } from "./support/http";
import { rpcFailure } from "./support/rpc";
import { stubOf } from "./support/objects";
import { registryCaughtUp } from "./support/converge";

const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const MEDIUM = { model: "kimi-k2.5", tier: "MEDIUM" };
const admin = { token: ADMIN_TOKEN };

const resolve = (id: string, content: string, routed: { model: string; tier: string } = SIMPLE, extra: Record<string, unknown> = {}) =>
  call("POST", "/v1/resolve", { body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content }] }, routed, ...extra } });

async function events(id: string, after?: number) {
  const res = await call("GET", sessionPath(id, after === undefined ? "/events" : `/events?after=${after}`));
  expect(res.status).toBe(200);
  return res.json.events as Array<Record<string, any> & { seq: number; at: number; type: string }>;
}

const types = (list: Array<{ type: string }>) => list.map((e) => e.type);

describe("the journal", () => {
  it("records creation, an upgrade, a loop's escalation and a warmed cache, each once, with increasing seq", async () => {
    const id = freshId("journal");
    await resolve(id, "first");
    await resolve(id, "harder", MEDIUM);
    await resolve(id, "loop");
    await resolve(id, "loop");
    const escalating = await resolve(id, "loop");
    expect(escalating.json.escalated).toBe(true);
    await resolve(id, "x".repeat(9_000));
    const list = await events(id);
    expect(types(list)).toEqual(["created", "model_changed", "escalated", "model_changed", "cache_sticky"]);
    expect(list[0]).toMatchObject({ type: "created", model: SIMPLE.model, tier: "SIMPLE" });
    expect(list[1]).toMatchObject({ reason: "upgrade", model: MEDIUM.model, tier: "MEDIUM", from: SIMPLE });
    expect(list[2]).toMatchObject({ strikes: escalating.json.strikes, tier: "COMPLEX" });
    expect(list[3]).toMatchObject({ reason: "escalation", tier: "COMPLEX", from: { tier: "MEDIUM" } });
    expect(list[4]).toMatchObject({ provider: expect.any(String), ttlMs: expect.any(Number) });
    for (let i = 1; i < list.length; i++) expect(list[i]!.seq).toBeGreaterThan(list[i - 1]!.seq);
    expect(list.every((e) => e.actor === undefined)).toBe(true);
  });

  it("pages with after: only the events after the cursor, none after the last", async () => {
    const id = freshId("paging");
    await resolve(id, "a");
    await resolve(id, "b", MEDIUM);
    const all = await events(id);
    expect(all).toHaveLength(2);
    expect(await events(id, all[0]!.seq)).toEqual([all[1]]);
    expect(await events(id, all[1]!.seq)).toEqual([]);
    expect(await events(id, 0)).toEqual(all);
  });

  it("a request that changes nothing notable adds no event and no storage key", async () => {
    const id = freshId("quiet");
    await resolve(id, "one");
    // The creation's registry delivery may still hold its outbox key: let it land first.
    await registryCaughtUp();
    const keys = async () => runInDurableObject(stubOf(id), async (_o, state) => [...state.storage.kv.list()].map(([k]) => k).sort());
    const before = await keys();
    for (let i = 0; i < 5; i++) await resolve(id, `distinct ${i}`);
    await registryCaughtUp();
    expect(await keys()).toEqual(before);
    expect(types(await events(id))).toEqual(["created"]);
  });

  it("keeps the last 256 events: older ones go, seq goes on", async () => {
    const id = freshId("bound");
    await resolve(id, "start");
    for (let i = 0; i < 140; i++) {
      expect((await call("POST", sessionPath(id, "/pause"), admin)).status).toBe(200);
      expect((await call("POST", sessionPath(id, "/resume"), admin)).status).toBe(200);
    }
    const list = await events(id);
    expect(list).toHaveLength(256);
    expect(list[0]!.type).not.toBe("created");
    expect(list[255]!.seq - list[0]!.seq).toBe(255);
    expect(types(list.slice(-2))).toEqual(["paused", "resumed"]);
    const keys = await runInDurableObject(stubOf(id), async (_o, state) => [...state.storage.kv.list({ prefix: "ev:" })].length);
    expect(keys).toBe(256);
  });

  it("answers an empty journal for a session that never existed, and 400 for a bad cursor", async () => {
    expect(await events(freshId("never"))).toEqual([]);
    for (const bad of ["-1", "x", "1.5", "99999999999999999"]) {
      const res = await call("GET", sessionPath("s", `/events?after=${bad}`));
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe("invalid_request");
    }
  });

  it("announces 50, 80 and 100 percent of the budget once each, and a budget change with its actor", async () => {
    const id = freshId("thresholds");
    await resolve(id, "go");
    expect((await call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros: 1_000 } })).status).toBe(200);
    await call("POST", sessionPath(id, "/cost"), { body: { micros: 499 } });
    await call("POST", sessionPath(id, "/cost"), { body: { micros: 1 } });
    await call("POST", sessionPath(id, "/cost"), { body: { micros: 400 } });
    await call("POST", sessionPath(id, "/cost"), { body: { micros: 100 } });
    await call("POST", sessionPath(id, "/cost"), { body: { micros: 100 } });
    // Raised by an operator: the budget moves, the thresholds already announced are not announced again.
    await call("PUT", sessionPath(id, "/budget"), { ...admin, body: { budgetMicros: 10_000 } });
    await call("POST", sessionPath(id, "/cost"), { body: { micros: 4_000 } });
    const list = (await events(id)).filter((e) => e.type === "budget_threshold" || e.type === "budget_changed");
    expect(list.map(({ type, percent, actor, budgetMicros, sessionCostMicros }) => ({ type, percent, actor, budgetMicros, sessionCostMicros }))).toEqual([
      { type: "budget_changed", percent: undefined, actor: "api", budgetMicros: 1_000, sessionCostMicros: undefined },
      { type: "budget_threshold", percent: 50, actor: undefined, budgetMicros: 1_000, sessionCostMicros: 500 },
      { type: "budget_threshold", percent: 80, actor: undefined, budgetMicros: 1_000, sessionCostMicros: 900 },
      { type: "budget_threshold", percent: 100, actor: undefined, budgetMicros: 1_000, sessionCostMicros: 1_000 },
      { type: "budget_changed", percent: undefined, actor: "admin", budgetMicros: 10_000, sessionCostMicros: undefined },
    ]);
  });

  it("journals the end of a session, and a new incarnation numbers on", async () => {
    const id = freshId("ended");
    await resolve(id, "a");
    expect((await call("DELETE", sessionPath(id), admin)).status).toBe(204);
    await resolve(id, "b");
    const list = await events(id);
    expect(types(list)).toEqual(["created", "ended", "created"]);
    expect(list[1]).toMatchObject({ reason: "cleared", actor: "admin" });
  });
});

describe("operator actions", () => {
  it("pause answers resolve with 423 session_paused over HTTP, and resume lets it through; both journaled as admin", async () => {
    const id = freshId("pause");
    await resolve(id, "a");
    const paused = await call("POST", sessionPath(id, "/pause"), admin);
    expect(paused.status).toBe(200);
    expect(paused.json).toMatchObject({ id, paused: true });
    const refused = await resolve(id, "b");
    expect(refused.status).toBe(423);
    expect(refused.json.error).toMatchObject({ code: "session_paused", message: expect.any(String) });
    // A refusal records nothing: the request count stays.
    expect((await call("GET", sessionPath(id))).json).toMatchObject({ requestCount: 1, paused: true });
    // Settles, costs and reads go on.
    expect((await call("POST", sessionPath(id, "/cost"), { body: { micros: 5 } })).status).toBe(200);
    expect((await call("POST", sessionPath(id, "/resume"), admin)).json).toMatchObject({ paused: false });
    expect((await resolve(id, "c")).status).toBe(200);
    const list = (await events(id)).filter((e) => e.type === "paused" || e.type === "resumed");
    expect(list.map(({ type, actor }) => ({ type, actor }))).toEqual([
      { type: "paused", actor: "admin" },
      { type: "resumed", actor: "admin" },
    ]);
  });

  it("pause, resume and pin need the admin grant: the API token gets 403, no token 401", async () => {
    const id = freshId("grant");
    await resolve(id, "a");
    for (const [method, suffix, body] of [
      ["POST", "/pause", undefined],
      ["POST", "/resume", undefined],
      ["PUT", "/pin", { model: "m", tier: "SIMPLE" }],
      ["DELETE", "/pin", undefined],
    ] as const) {
      expect((await call(method, sessionPath(id, suffix), { body })).json.error.code).toBe("forbidden");
      expect((await call(method, sessionPath(id, suffix), { body, token: null })).status).toBe(401);
    }
    expect((await call("GET", sessionPath(id))).json.paused).toBe(false);
  });

  it("pause and resume over RPC: SessionAdmin pauses, SessionService's resolve is refused with session_paused", async () => {
    const id = freshId("rpc-pause");
    const body = { model: "auto", messages: [{ role: "user", content: "hi" }] };
    await exports.SessionService.resolve({ sessionId: id, body, routed: SIMPLE as any });
    expect(await exports.SessionAdmin.pauseSession(id)).toMatchObject({ paused: true });
    expect(await rpcFailure(exports.SessionService.resolve({ sessionId: id, body, routed: SIMPLE as any }))).toMatch(/^session_paused: /);
    expect(await exports.SessionAdmin.resumeSession(id)).toMatchObject({ paused: false });
    expect(await exports.SessionService.resolve({ sessionId: id, body, routed: SIMPLE as any })).toMatchObject({ requestCount: 2 });
    // A tenant's session, through the operator's scope.
    const scoped = exports.SessionService.forNamespace("acme");
    await scoped.resolve({ sessionId: id, body, routed: SIMPLE as any });
    expect(await exports.SessionAdmin.forNamespace("acme").pauseSession(id)).toMatchObject({ paused: true });
    expect(await rpcFailure(scoped.resolve({ sessionId: id, body, routed: SIMPLE as any }))).toMatch(/^session_paused: /);
    expect((await exports.SessionService.getSession(id))!.paused).toBe(false);
    const list = await exports.SessionAdmin.getEvents(id);
    expect(list.events.filter((e) => e.type === "paused" || e.type === "resumed").map((e) => e.actor)).toEqual(["admin", "admin"]);
  });

  it("answers 404 for pausing a session that does not exist, and creates nothing", async () => {
    const id = freshId("ghost");
    expect((await call("POST", sessionPath(id, "/pause"), admin)).json.error.code).toBe("session_not_found");
    expect(await events(id)).toEqual([]);
  });

  it("a pin forces model and tier; routing, escalation, explicit models and setSession do not move it until it is lifted", async () => {
    const id = freshId("pin");
    await resolve(id, "a");
    const pinned = await call("PUT", sessionPath(id, "/pin"), { ...admin, body: { model: "cheap-model", tier: "SIMPLE" } });
    expect(pinned.json).toMatchObject({ model: "cheap-model", tier: "SIMPLE", adminPinned: true });
    expect((await resolve(id, "b", MEDIUM)).json).toMatchObject({ model: "cheap-model", tier: "SIMPLE" });
    for (let i = 0; i < 3; i++) expect((await resolve(id, "loop")).json).toMatchObject({ model: "cheap-model", escalated: false });
    const explicit = await call("POST", "/v1/resolve", { body: { sessionId: id, body: { model: "gpt-5", messages: [{ role: "user", content: "c" }] } } });
    expect(explicit.json.model).toBe("cheap-model");
    const put = await call("PUT", sessionPath(id), { body: { model: "other", tier: "COMPLEX" } });
    expect(put.status).toBe(409);
    expect(put.json.error.code).toBe("session_pinned");
    expect((await call("POST", sessionPath(id, "/escalate"))).json).toMatchObject({ model: "cheap-model", tier: "SIMPLE" });
    expect((await call("DELETE", sessionPath(id, "/pin"), admin)).json).toMatchObject({ adminPinned: false });
    expect((await resolve(id, "d", MEDIUM)).json).toMatchObject({ model: MEDIUM.model, tier: "MEDIUM" });
    const list = (await events(id)).filter((e) => ["pinned", "unpinned", "model_changed"].includes(e.type));
    expect(list.map(({ type, reason, actor }) => ({ type, reason, actor }))).toEqual([
      { type: "model_changed", reason: "explicit", actor: "admin" },
      { type: "pinned", reason: undefined, actor: "admin" },
      { type: "unpinned", reason: undefined, actor: "admin" },
      { type: "model_changed", reason: "upgrade", actor: undefined },
    ]);
  });

  it("refuses a pin with a bad model or tier with 400, changing nothing", async () => {
    const id = freshId("badpin");
    await resolve(id, "a");
    for (const body of [{ model: "", tier: "SIMPLE" }, { model: "m", tier: "HUGE" }, { model: "m" }, {}]) {
      const res = await call("PUT", sessionPath(id, "/pin"), { ...admin, body });
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe("invalid_request");
    }
    expect((await call("GET", sessionPath(id))).json).toMatchObject({ model: SIMPLE.model, adminPinned: false });
    expect(types(await events(id))).toEqual(["created"]);
  });
});

describe("the journal's storage", () => {
  it("is the session object's own: one key per event under ev:, and bounds under journal", async () => {
    const id = freshId("storage");
    await resolve(id, "a");
    const stored = await runInDurableObject(stubOf(id), async (_o, state) => ({
      meta: state.storage.kv.get<{ next: number; first: number }>("journal"),
      events: [...state.storage.kv.list({ prefix: "ev:" })].length,
    }));
    expect(stored.events).toBe(1);
    expect(stored.meta!.next - stored.meta!.first).toBe(1);
    expect(env.SESSIONS).toBeDefined();
  });
});
