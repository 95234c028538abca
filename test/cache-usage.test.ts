/**
 * Cache accounting (issue 15): settle and POST /cost take an optional `usage`
 * {inputTokens, cachedInputTokens}; the entry shows the session's totals; stats
 * show the totals and the hit ratio across the live sessions. Oracles come from
 * the contract (docs/http-api.md "Cache accounting"): every expected number is
 * worked out by hand.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../src/memory";
import { configFor } from "../src/session/config";
import { freshId } from "./support/back-ends";
import { converge, registryCaughtUp } from "./support/converge";
import { ADMIN_TOKEN, call, sessionPath } from "./support/http";
import { rpcFailure } from "./support/rpc";
import { registryFault, testClock } from "./support/worker";

const svc = exports.SessionService;
const admin = exports.SessionAdmin;
const { reservationTtlMs: TTL_MS, timeoutMs: TIMEOUT_MS } = configFor(env);
/** docs/http-api.md "Cache accounting": a session reports a change of its totals when its last report is at least a minute old. */
const REPORT_INTERVAL_MS = 60_000;
const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };

const resolve = (id: string, reserveMicros?: number) =>
  call("POST", "/v1/resolve", {
    body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content: `hi ${crypto.randomUUID()}` }] }, routed: SIMPLE, reserveMicros },
  });
const settle = (id: string, body: Record<string, unknown>) => call("POST", sessionPath(id, "/settle"), { body });
const cost = (id: string, body: Record<string, unknown>) => call("POST", sessionPath(id, "/cost"), { body });
const read = async (id: string) => (await call("GET", sessionPath(id))).json;
const totals = async (id: string) => {
  const e = await read(id);
  return { sessionCostMicros: e.sessionCostMicros, inputTokens: e.inputTokens, cachedInputTokens: e.cachedInputTokens, inFlight: e.inFlight };
};
const stats = async () => (await call("GET", "/v1/stats", { token: ADMIN_TOKEN })).json;

/** A session with one open reservation of `reserve`; answers its ID and the reservation's. */
async function withReservation(reserve = 500): Promise<{ id: string; rid: string }> {
  const id = freshId("usage");
  const answer = await resolve(id, reserve);
  expect(answer.status).toBe(200);
  return { id, rid: answer.json.reservationId };
}

describe("the entry's totals", () => {
  it("are 0 when no usage was reported", async () => {
    const id = freshId("usage-none");
    expect(await svc.setSession(id, "kimi-k2.5", "MEDIUM")).toMatchObject({ inputTokens: 0, cachedInputTokens: 0 });
    expect(await read(id)).toMatchObject({ inputTokens: 0, cachedInputTokens: 0 });
  });

  it("POST /cost with usage adds the tokens, calls without usage leave them, and the cost answer keeps its shape", async () => {
    const id = freshId("usage-cost");
    await svc.setSession(id, "kimi-k2.5", "MEDIUM");
    const first = await cost(id, { micros: 100, usage: { inputTokens: 1000, cachedInputTokens: 600 } });
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ sessionCostMicros: 100, costUSD: 0.0001 });
    await cost(id, { micros: 50 });
    await cost(id, { micros: 0, usage: { inputTokens: 24, cachedInputTokens: 0 } });
    expect(await totals(id)).toEqual({ sessionCostMicros: 150, inputTokens: 1024, cachedInputTokens: 600, inFlight: 0 });
  });

  it("settle with usage adds the tokens once: a repeat, with any usage, adds nothing", async () => {
    const { id, rid } = await withReservation();
    const first = await settle(id, { reservationId: rid, costMicros: 120, usage: { inputTokens: 2000, cachedInputTokens: 1500 } });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ sessionCostMicros: 120, reservedMicros: 0 });
    const again = await settle(id, { reservationId: rid, costMicros: 999, usage: { inputTokens: 7, cachedInputTokens: 7 } });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ sessionCostMicros: 120, reservedMicros: 0 });
    expect(await totals(id)).toEqual({ sessionCostMicros: 120, inputTokens: 2000, cachedInputTokens: 1500, inFlight: 0 });
  });

  it("over RPC: settle(id, reservationId, costMicros, usage) and addSessionCost(id, micros, usage); the calls without usage still work", async () => {
    const { id, rid } = await withReservation();
    expect(await svc.settle(id, rid, 10, { inputTokens: 300, cachedInputTokens: 100 })).toMatchObject({ sessionCostMicros: 10, reservedMicros: 0 });
    expect(await svc.addSessionCost(id, 5, { inputTokens: 700, cachedInputTokens: 700 })).toEqual({ sessionCostMicros: 15, costUSD: 0.000015 });
    expect(await svc.addSessionCost(id, 5)).toEqual({ sessionCostMicros: 20, costUSD: 0.00002 });
    const second = (await resolve(id, 40)).json.reservationId;
    expect(await svc.settle(id, second, 1)).toMatchObject({ sessionCostMicros: 21, reservedMicros: 0 });
    expect(await svc.getSession(id)).toMatchObject({ sessionCostMicros: 21, inputTokens: 1000, cachedInputTokens: 800 });
  });

  it("a late settle of an expired reservation adds its usage (the expiry charged the cost, not tokens); a repeat adds nothing", async () => {
    const { id, rid } = await withReservation(500);
    testClock.advance(TTL_MS + 1);
    // Expired unsettled: charged in full, no tokens.
    expect(await totals(id)).toEqual({ sessionCostMicros: 500, inputTokens: 0, cachedInputTokens: 0, inFlight: 0 });
    const late = await settle(id, { reservationId: rid, costMicros: 120, usage: { inputTokens: 1000, cachedInputTokens: 800 } });
    expect(late.status).toBe(200);
    expect(await totals(id)).toEqual({ sessionCostMicros: 120, inputTokens: 1000, cachedInputTokens: 800, inFlight: 0 });
    await settle(id, { reservationId: rid, costMicros: 50, usage: { inputTokens: 1000, cachedInputTokens: 800 } });
    expect(await totals(id)).toEqual({ sessionCostMicros: 120, inputTokens: 1000, cachedInputTokens: 800, inFlight: 0 });
  });
});

describe("bad usage", () => {
  const bad: [unknown, string][] = [
    [{ inputTokens: 10, cachedInputTokens: 11 }, "usage.cachedInputTokens"],
    [{ inputTokens: -1, cachedInputTokens: 0 }, "usage.inputTokens"],
    [{ inputTokens: 1.5, cachedInputTokens: 0 }, "usage.inputTokens"],
    [{ inputTokens: "10", cachedInputTokens: 0 }, "usage.inputTokens"],
    [{ inputTokens: 10, cachedInputTokens: -2 }, "usage.cachedInputTokens"],
    [{ inputTokens: 10 }, "usage.cachedInputTokens"],
    [{ inputTokens: 10, cachedInputTokens: 0, cached: 5 }, "usage"],
    [null, "usage"],
    [42, "usage"],
    [[10, 5], "usage"],
  ];

  it("is 400 invalid_request naming the field, on cost and on settle, and changes nothing (the reservation stays open)", async () => {
    const { id, rid } = await withReservation(300);
    await cost(id, { micros: 7, usage: { inputTokens: 100, cachedInputTokens: 50 } });
    const before = await read(id);
    for (const [usage, field] of bad) {
      for (const answer of [await cost(id, { micros: 1, usage }), await settle(id, { reservationId: rid, costMicros: 1, usage })]) {
        expect(answer.status, JSON.stringify(usage)).toBe(400);
        expect(answer.json.error, JSON.stringify(usage)).toMatchObject({ code: "invalid_request", field });
      }
    }
    expect(await read(id)).toEqual(before);
    expect(before).toMatchObject({ sessionCostMicros: 7, inputTokens: 100, cachedInputTokens: 50, inFlight: 1, reservedMicros: 300 });
  });

  it("is refused over RPC too", async () => {
    const { id, rid } = await withReservation(300);
    expect(await rpcFailure(svc.settle(id, rid, 1, { inputTokens: 1, cachedInputTokens: 2 }))).toMatch(/^invalid_request: usage\.cachedInputTokens /);
    expect(await rpcFailure(svc.addSessionCost(id, 1, { inputTokens: -1, cachedInputTokens: 0 }))).toMatch(/^invalid_request: usage\.inputTokens /);
    expect(await svc.getSession(id)).toMatchObject({ sessionCostMicros: 0, inputTokens: 0, cachedInputTokens: 0, inFlight: 1 });
  });

  it("totals that would pass the largest safe integer are 400 and change nothing", async () => {
    const { id, rid } = await withReservation(300);
    const max = Number.MAX_SAFE_INTEGER;
    expect((await cost(id, { micros: 3, usage: { inputTokens: max, cachedInputTokens: 0 } })).status).toBe(200);
    const over = await cost(id, { micros: 3, usage: { inputTokens: 1, cachedInputTokens: 0 } });
    expect(over.status).toBe(400);
    expect(over.json.error).toMatchObject({ code: "invalid_request", field: "usage.inputTokens" });
    const overOnSettle = await settle(id, { reservationId: rid, costMicros: 5, usage: { inputTokens: 1, cachedInputTokens: 1 } });
    expect(overOnSettle.status).toBe(400);
    expect(overOnSettle.json.error).toMatchObject({ code: "invalid_request", field: "usage.inputTokens" });
    // Nothing changed: the cost is the first call's, the reservation is still open.
    expect(await totals(id)).toEqual({ sessionCostMicros: 3, inputTokens: max, cachedInputTokens: 0, inFlight: 1 });
    // Settled without usage, it goes through.
    expect((await settle(id, { reservationId: rid, costMicros: 5 })).status).toBe(200);
    expect(await totals(id)).toEqual({ sessionCostMicros: 8, inputTokens: max, cachedInputTokens: 0, inFlight: 0 });
  });
});

describe("stats", () => {
  it("show the token totals and the hit ratio across the live sessions, over HTTP and RPC", async () => {
    await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
    expect((await stats()).cache).toEqual({ inputTokens: 0, cachedInputTokens: 0, hitRatio: null });
    const [a, b, c] = ["a", "b", "c"].map((s) => freshId(`usage-stats-${s}`));
    await svc.setSession(a!, "kimi-k2.5", "MEDIUM");
    const rid = (await resolve(b!, 100)).json.reservationId;
    await svc.setSession(c!, "kimi-k2.5", "MEDIUM");
    // A report of totals waits until the session's last report (its creation) is a minute old.
    testClock.advance(REPORT_INTERVAL_MS);
    await cost(a!, { micros: 1, usage: { inputTokens: 1000, cachedInputTokens: 250 } });
    await settle(b!, { reservationId: rid, costMicros: 1, usage: { inputTokens: 3000, cachedInputTokens: 2250 } });
    // c reports nothing: it adds 0 to both totals.
    await registryCaughtUp();
    const expected = { inputTokens: 4000, cachedInputTokens: 2500, hitRatio: 2500 / 4000 };
    expect(expected.hitRatio).toBe(0.625);
    const answer = await stats();
    expect(answer.count).toBe(3);
    expect(answer.cache).toEqual(expected);
    expect((await admin.getStats({})).cache).toEqual(expected);
    // Every page carries the totals.
    const page = (await call("GET", "/v1/stats?limit=1", { token: ADMIN_TOKEN })).json;
    expect(page.sessions).toHaveLength(1);
    expect(page.cache).toEqual(expected);
    // A session that ends takes its tokens out of the totals.
    await svc.clearSession(a!);
    await registryCaughtUp();
    expect((await stats()).cache).toEqual({ inputTokens: 3000, cachedInputTokens: 2250, hitRatio: 0.75 });
  });

  it("a second usage change within a minute of the last report makes no registry delivery; stats catch up with the next report", async () => {
    await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
    const id = freshId("usage-report");
    await svc.setSession(id, "kimi-k2.5", "MEDIUM");
    await registryCaughtUp();
    testClock.advance(REPORT_INTERVAL_MS);
    let calls = registryFault.calls;
    await svc.addSessionCost(id, 0, { inputTokens: 100, cachedInputTokens: 10 });
    await registryCaughtUp();
    expect(registryFault.calls).toBe(calls + 1);
    expect((await stats()).cache).toEqual({ inputTokens: 100, cachedInputTokens: 10, hitRatio: 0.1 });

    // 59.999 s after that report: no delivery, stats trail the session.
    testClock.advance(REPORT_INTERVAL_MS - 1);
    calls = registryFault.calls;
    await svc.addSessionCost(id, 0, { inputTokens: 100, cachedInputTokens: 90 });
    await registryCaughtUp();
    expect(registryFault.calls).toBe(calls);
    expect(await svc.getSession(id)).toMatchObject({ inputTokens: 200, cachedInputTokens: 100 });
    expect((await stats()).cache).toEqual({ inputTokens: 100, cachedInputTokens: 10, hitRatio: 0.1 });

    // A minute after the last report, the next change reports both.
    testClock.advance(1);
    await svc.addSessionCost(id, 0, { inputTokens: 200, cachedInputTokens: 200 });
    await registryCaughtUp();
    expect(registryFault.calls).toBe(calls + 1);
    expect((await stats()).cache).toEqual({ inputTokens: 400, cachedInputTokens: 300, hitRatio: 0.75 });
  });

  it("a change no later report carries shows once the shard checks the row, before the session's deadline", async () => {
    await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
    const id = freshId("usage-check");
    await svc.setSession(id, "kimi-k2.5", "MEDIUM");
    await registryCaughtUp();
    const calls = registryFault.calls;
    // Within a minute of the creation's report: not reported.
    testClock.advance(1000);
    await svc.addSessionCost(id, 0, { inputTokens: 500, cachedInputTokens: 400 });
    await registryCaughtUp();
    expect(registryFault.calls).toBe(calls);
    expect((await stats()).cache).toEqual({ inputTokens: 0, cachedInputTokens: 0, hitRatio: null });
    // The shard asks the session a minute before the deadline it knows (creation + timeout); let time pass to 30 s before that deadline.
    await converge(TIMEOUT_MS - 1000 - 30_000);
    const answer = await stats();
    expect(answer.count).toBe(1);
    expect(answer.cache).toEqual({ inputTokens: 500, cachedInputTokens: 400, hitRatio: 0.8 });
  });

  it("MemoryStore's stats are exact at once", async () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    await store.setSession("m1", "kimi-k2.5", "MEDIUM");
    await store.setSession("m2", "kimi-k2.5", "MEDIUM");
    expect((await store.getStats()).cache).toEqual({ inputTokens: 0, cachedInputTokens: 0, hitRatio: null });
    await store.addSessionCost("m1", 1, { inputTokens: 300, cachedInputTokens: 0 });
    await store.addSessionCost("m2", 1, { inputTokens: 100, cachedInputTokens: 100 });
    await store.addSessionCost("m2", 1, { inputTokens: 100, cachedInputTokens: 0 });
    expect((await store.getStats()).cache).toEqual({ inputTokens: 500, cachedInputTokens: 100, hitRatio: 0.2 });
    await store.clearSession("m1");
    expect((await store.getStats()).cache).toEqual({ inputTokens: 200, cachedInputTokens: 100, hitRatio: 0.5 });
    store.close();
  });
});

describe("a shard written before rows carried token totals", () => {
  it("gains the columns in place, keeps its rows (0 tokens), and takes totals from the next delivery", async () => {
    const shard = env.REGISTRY.get(env.REGISTRY.idFromName(`usage-legacy-${crypto.randomUUID()}`));
    const id = freshId("usage-legacy");
    const now = testClock.peek();
    const deadline = now + TIMEOUT_MS;
    await runInDurableObject(shard, (_obj, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE sessions");
      // The previous release's table: incarnations, versions and deadlines, no token totals.
      sql.exec(`CREATE TABLE sessions (
        id TEXT PRIMARY KEY, model TEXT NOT NULL, tier TEXT NOT NULL, created_at INTEGER NOT NULL,
        inc TEXT NOT NULL DEFAULT '', version INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL DEFAULT 0,
        check_at INTEGER NOT NULL DEFAULT 0, failing_since INTEGER NOT NULL DEFAULT 0, doomed INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID`);
      sql.exec(
        "INSERT INTO sessions (id, model, tier, created_at, inc, version, expires_at, check_at) VALUES (?, 'kimi-k2.5', 'MEDIUM', ?, 'i1', 3, ?, ?)",
        id,
        now,
        deadline,
        deadline - 60_000,
      );
    });
    await evictDurableObject(shard);
    const page = await shard.page(null, 10, true);
    expect(page.count).toBe(1);
    expect(page.rows.map((r) => r.id)).toEqual([id]);
    expect([page.inputTokens, page.cachedInputTokens]).toEqual([0, 0]);
    const columns = await runInDurableObject(shard, (_obj, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM pragma_table_info('sessions')")
        .toArray()
        .map((r) => r.name),
    );
    expect(columns).toEqual(expect.arrayContaining(["input_tokens", "cached_input_tokens"]));

    const row = { id, inc: "i1", createdAt: now, model: "kimi-k2.5", tier: "MEDIUM" as const, expiresAt: deadline };
    // A later version takes its totals.
    expect(await shard.deliver({ kind: "upsert", row: { ...row, version: 4, inputTokens: 100, cachedInputTokens: 40 } })).toBe(true);
    let totals = await shard.page(null, 10, true);
    expect([totals.inputTokens, totals.cachedInputTokens]).toEqual([100, 40]);
    // The same version again, with totals that grew (a retried delivery carrying the state as it is now): the larger totals win.
    await shard.deliver({ kind: "upsert", row: { ...row, version: 4, inputTokens: 150, cachedInputTokens: 60 } });
    totals = await shard.page(null, 10, true);
    expect([totals.inputTokens, totals.cachedInputTokens]).toEqual([150, 60]);
    // An older version, or the same with smaller totals, changes nothing.
    await shard.deliver({ kind: "upsert", row: { ...row, version: 3, inputTokens: 999, cachedInputTokens: 999 } });
    await shard.deliver({ kind: "upsert", row: { ...row, version: 4, inputTokens: 100, cachedInputTokens: 40 } });
    totals = await shard.page(null, 10, true);
    expect([totals.inputTokens, totals.cachedInputTokens]).toEqual([150, 60]);
  });
});
