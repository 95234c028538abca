/**
 * What stats show of each session for an operator (issue 16): the full session ID,
 * tier, cost, strikes, request count and paused on every row, and the spend summed
 * across shards. Oracles come from the contract (docs/http-api.md "Stats and
 * clear-all" and "Entries and costs"; /work/brief/issue16-contract.md): every
 * expected number is worked out by hand.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../src/memory";
import { configFor } from "../src/session/config";
import { shardOf } from "../src/session/stats";
import { freshId } from "./support/back-ends";
import { registryCaughtUp } from "./support/converge";
import { ADMIN_TOKEN, call, sessionPath } from "./support/http";
import { registryFault, testClock } from "./support/worker";

const svc = exports.SessionService;
const { timeoutMs: TIMEOUT_MS, registryShards: SHARDS } = configFor(env);
/** docs/http-api.md "Stats and clear-all": a session reports a change of its usage when its last report is at least a minute old. */
const REPORT_INTERVAL_MS = 60_000;
const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };

const stats = async () => {
  await registryCaughtUp();
  const res = await call("GET", "/v1/stats", { token: ADMIN_TOKEN });
  expect(res.status).toBe(200);
  return res.json;
};
const rowFor = async (id: string) => (await stats()).sessions.find((s: { sessionId: string }) => s.sessionId === id);
/** A resolve of a fixed message: the same text twice in a row is a repeat (one strike). */
const resolve = (id: string, text: string, costMicros?: number) =>
  call("POST", "/v1/resolve", { body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content: text }] }, routed: SIMPLE, costMicros } });
const clearAll = async () => expect((await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN })).status).toBe(200);

describe("stats rows", () => {
  it("carry the full session ID, the truncated one, the tier, and a new session's figures", async () => {
    await clearAll();
    const id = freshId("rows-fresh");
    expect((await call("PUT", sessionPath(id), { body: { model: "kimi-k2.5", tier: "MEDIUM" } })).status).toBe(200);
    const answer = await stats();
    expect(answer.sessions).toEqual([
      {
        id: id.slice(0, 8) + "...",
        sessionId: id,
        model: "kimi-k2.5",
        tier: "MEDIUM",
        age: 0,
        // Entries and costs: a new session has made one request, with no strikes and no cost.
        sessionCostMicros: 0,
        strikes: 0,
        requestCount: 1,
        paused: false,
      },
    ]);
    expect(answer.spendMicros).toBe(0);
  });

  it("a tenant-scoped session's sessionId is its ID without the tenant, which is in `tenant`", async () => {
    await clearAll();
    const id = `conversation-${crypto.randomUUID()}`;
    await svc.forNamespace("acme").setSession(id, "m", "SIMPLE");
    const [row] = (await stats()).sessions;
    expect(row).toMatchObject({ id: "conversa...", sessionId: id, tenant: "acme", model: "m", tier: "SIMPLE" });
  });

  it("a session that spends and repeats shows its cost, strikes and requests once a minute has passed since its last report", async () => {
    await clearAll();
    const id = freshId("rows-spend");
    // 1st request: creates the session (requestCount 1), reported at once.
    expect((await resolve(id, "fix the bug", 100)).status).toBe(200);
    // 2nd: the same message again, a repeat (strikes 1); 3rd: another message.
    expect((await resolve(id, "fix the bug", 200)).status).toBe(200);
    expect((await resolve(id, "now the tests")).status).toBe(200);
    expect((await call("POST", sessionPath(id, "/cost"), { body: { micros: 50 } })).status).toBe(200);
    const session = (await call("GET", sessionPath(id))).json;
    expect(session).toMatchObject({ requestCount: 3, strikes: 1, sessionCostMicros: 350 });
    // Within a minute of the creation's report, stats show what that report said.
    expect(await rowFor(id)).toMatchObject({ sessionCostMicros: 100, strikes: 0, requestCount: 1, paused: false });
    expect((await stats()).spendMicros).toBe(100);

    // A minute on, the next change reports everything.
    testClock.advance(REPORT_INTERVAL_MS);
    const calls = registryFault.calls;
    expect((await call("POST", sessionPath(id, "/cost"), { body: { micros: 25 } })).status).toBe(200);
    await registryCaughtUp();
    expect(registryFault.calls).toBe(calls + 1);
    expect(await rowFor(id)).toMatchObject({ sessionId: id, model: SIMPLE.model, tier: "SIMPLE", sessionCostMicros: 375, strikes: 1, requestCount: 3 });
    expect((await stats()).spendMicros).toBe(375);
  });

  it("a change of strikes or requests alone qualifies for a report, as a cost does", async () => {
    await clearAll();
    const id = freshId("rows-touch");
    await svc.setSession(id, "kimi-k2.5", "MEDIUM");
    testClock.advance(REPORT_INTERVAL_MS);
    // A touch counts a request (Entries and costs: +1 per set, touch and resolve).
    expect((await call("POST", sessionPath(id, "/touch"))).status).toBe(200);
    expect(await rowFor(id)).toMatchObject({ requestCount: 2, strikes: 0 });
    testClock.advance(REPORT_INTERVAL_MS);
    // Recording a hash equal to the one before is a strike; recording counts no request.
    const hash = "43e514827182845c1c519a921b089ef5";
    expect((await call("POST", sessionPath(id, "/hashes"), { body: { hash } })).status).toBe(200);
    expect(await rowFor(id)).toMatchObject({ requestCount: 2, strikes: 0 });
    testClock.advance(REPORT_INTERVAL_MS);
    expect((await call("POST", sessionPath(id, "/hashes"), { body: { hash } })).json).toEqual({ strikes: 1 });
    expect(await rowFor(id)).toMatchObject({ requestCount: 2, strikes: 1 });
  });

  it("a session's row leaves spendMicros when it ends", async () => {
    await clearAll();
    const [a, b] = [freshId("rows-end-a"), freshId("rows-end-b")];
    await svc.setSession(a!, "m", "SIMPLE");
    await svc.setSession(b!, "m", "SIMPLE");
    testClock.advance(REPORT_INTERVAL_MS);
    await svc.addSessionCost(a!, 700);
    await svc.addSessionCost(b!, 42);
    expect((await stats()).spendMicros).toBe(742);
    await svc.clearSession(a!);
    expect((await stats()).spendMicros).toBe(42);
  });
});

describe("spendMicros", () => {
  it("sums the cost of the live sessions across shards", async () => {
    await clearAll();
    // Six sessions on at least three shards (REGISTRY_SHARDS in wrangler.toml is 16).
    const ids: string[] = [];
    const used = new Set<number>();
    while (used.size < 3 || ids.length < 6) {
      const id = freshId("rows-shards");
      const shard = shardOf(id, SHARDS);
      if (ids.length < 6 && (used.size < 3 ? !used.has(shard) : true)) {
        ids.push(id);
        used.add(shard);
      }
    }
    for (const id of ids) await svc.setSession(id, "m", "SIMPLE");
    testClock.advance(REPORT_INTERVAL_MS);
    const costs = [1, 20, 300, 4_000, 50_000, 600_000];
    for (let i = 0; i < ids.length; i++) await svc.addSessionCost(ids[i]!, costs[i]!);
    const answer = await stats();
    expect(answer.count).toBe(6);
    expect(answer.spendMicros).toBe(654_321);
    // Every page carries the total; the rows hold each session's own.
    const page = (await call("GET", "/v1/stats?limit=2", { token: ADMIN_TOKEN })).json;
    expect(page.sessions).toHaveLength(2);
    expect(page.spendMicros).toBe(654_321);
    for (let i = 0; i < ids.length; i++) expect(answer.sessions.find((s: { sessionId: string }) => s.sessionId === ids[i])?.sessionCostMicros).toBe(costs[i]);
    // And over RPC.
    expect((await exports.SessionAdmin.getStats({})).spendMicros).toBe(654_321);
  });

  it("is 0 with no sessions", async () => {
    await clearAll();
    expect((await stats()).spendMicros).toBe(0);
  });
});

describe("paused", () => {
  it("shows in stats once POST /pause answers (no minute's wait), and goes with /resume", async () => {
    await clearAll();
    const id = freshId("rows-paused");
    await svc.setSession(id, "m", "SIMPLE");
    // Within a minute of the creation's report: only a change reported at once can show.
    testClock.advance(1_000);
    expect(await rowFor(id)).toMatchObject({ paused: false });
    const paused = await call("POST", sessionPath(id, "/pause"), { token: ADMIN_TOKEN });
    expect(paused.status).toBe(200);
    expect(paused.json).toMatchObject({ paused: true });
    expect(await rowFor(id)).toMatchObject({ paused: true });
    testClock.advance(1_000);
    expect((await call("POST", sessionPath(id, "/resume"), { token: ADMIN_TOKEN })).status).toBe(200);
    expect(await rowFor(id)).toMatchObject({ paused: false });
  });

  it("MemoryStore shows it at once", async () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    await store.setSession("p1", "m", "SIMPLE");
    await store.setSession("p2", "m", "SIMPLE");
    await store.pauseSession("p1");
    expect((await store.getStats()).sessions.map((s) => [s.sessionId, s.paused])).toEqual([
      ["p1", true],
      ["p2", false],
    ]);
    await store.resumeSession("p1");
    expect((await store.getStats()).sessions.map((s) => s.paused)).toEqual([false, false]);
    store.close();
  });
});

describe("MemoryStore stats", () => {
  it("are exact at once: each row's cost, strikes and requests, and spendMicros", async () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    await store.setSession("m1", "kimi-k2.5", "MEDIUM");
    await store.setSession("m2", "gemini-3.1-pro", "COMPLEX");
    await store.addSessionCost("m1", 1_000);
    await store.addSessionCost("m2", 234);
    await store.recordRequestHash("m2", "a");
    await store.recordRequestHash("m2", "a");
    await store.touchSession("m2");
    const answer = await store.getStats();
    expect(answer.spendMicros).toBe(1_234);
    expect(answer.sessions).toEqual([
      { id: "m1", sessionId: "m1", model: "kimi-k2.5", tier: "MEDIUM", age: 0, sessionCostMicros: 1_000, strikes: 0, requestCount: 1, paused: false },
      { id: "m2", sessionId: "m2", model: "gemini-3.1-pro", tier: "COMPLEX", age: 0, sessionCostMicros: 234, strikes: 1, requestCount: 2, paused: false },
    ]);
    store.close();
  });
});

describe("a shard written before rows carried cost, strikes, requests and paused", () => {
  it("gains the columns in place, keeps its rows (0 and not paused), and takes them from the next delivery", async () => {
    const shard = env.REGISTRY.get(env.REGISTRY.idFromName(`rows-legacy-${crypto.randomUUID()}`));
    const id = freshId("rows-legacy");
    const now = testClock.peek();
    const deadline = now + TIMEOUT_MS;
    await runInDurableObject(shard, (_obj, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE sessions");
      // The previous release's table: token totals, but none of the operator's figures.
      sql.exec(`CREATE TABLE sessions (
        id TEXT PRIMARY KEY, model TEXT NOT NULL, tier TEXT NOT NULL, created_at INTEGER NOT NULL,
        inc TEXT NOT NULL DEFAULT '', version INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL DEFAULT 0,
        check_at INTEGER NOT NULL DEFAULT 0, failing_since INTEGER NOT NULL DEFAULT 0, doomed INTEGER NOT NULL DEFAULT 0,
        input_tokens INTEGER NOT NULL DEFAULT 0, cached_input_tokens INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID`);
      sql.exec(
        `INSERT INTO sessions (id, model, tier, created_at, inc, version, expires_at, check_at, input_tokens, cached_input_tokens)
         VALUES (?, 'kimi-k2.5', 'MEDIUM', ?, 'i1', 3, ?, ?, 500, 100)`,
        id,
        now,
        deadline,
        deadline - 60_000,
      );
    });
    await evictDurableObject(shard);
    const page = await shard.page(null, 10, true);
    expect(page.count).toBe(1);
    expect([page.inputTokens, page.cachedInputTokens, page.spendMicros]).toEqual([500, 100, 0]);
    expect(page.rows).toEqual([{ id, model: "kimi-k2.5", tier: "MEDIUM", createdAt: now, sessionCostMicros: 0, strikes: 0, requestCount: 0, paused: false }]);
    const columns = await runInDurableObject(shard, (_obj, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM pragma_table_info('sessions')")
        .toArray()
        .map((r) => r.name),
    );
    expect(columns).toEqual(expect.arrayContaining(["input_tokens", "cached_input_tokens", "session_cost_micros", "strikes", "request_count", "paused"]));

    const row = { id, inc: "i1", createdAt: now, model: "kimi-k2.5", tier: "MEDIUM" as const, expiresAt: deadline, inputTokens: 500, cachedInputTokens: 100 };
    const figures = async () => {
      const p = await shard.page(null, 10, true);
      const { sessionCostMicros, strikes, requestCount, paused } = p.rows[0]!;
      return { spendMicros: p.spendMicros, sessionCostMicros, strikes, requestCount, paused };
    };
    // A later version takes everything.
    const v4 = { ...row, version: 4, sessionCostMicros: 900, strikes: 2, requestCount: 7, paused: true };
    expect(await shard.deliver({ kind: "upsert", row: v4 })).toBe(true);
    expect(await figures()).toEqual({ spendMicros: 900, sessionCostMicros: 900, strikes: 2, requestCount: 7, paused: true });
    // The same version again with figures that grew (a retried delivery carrying the state as it is now): the larger win.
    await shard.deliver({ kind: "upsert", row: { ...v4, sessionCostMicros: 950, strikes: 3, requestCount: 9 } });
    expect(await figures()).toEqual({ spendMicros: 950, sessionCostMicros: 950, strikes: 3, requestCount: 9, paused: true });
    // An older version, or the same one with smaller figures, changes nothing.
    await shard.deliver({ kind: "upsert", row: { ...row, version: 3, sessionCostMicros: 5, strikes: 0, requestCount: 1, paused: false } });
    await shard.deliver({ kind: "upsert", row: v4 });
    expect(await figures()).toEqual({ spendMicros: 950, sessionCostMicros: 950, strikes: 3, requestCount: 9, paused: true });
    // A later version that resumes it.
    await shard.deliver({ kind: "upsert", row: { ...v4, version: 5, sessionCostMicros: 950, strikes: 3, requestCount: 9, paused: false } });
    expect(await figures()).toEqual({ spendMicros: 950, sessionCostMicros: 950, strikes: 3, requestCount: 9, paused: false });
  });

  it("a row from a session of an earlier release (no figures) reads 0 and not paused", async () => {
    const shard = env.REGISTRY.get(env.REGISTRY.idFromName(`rows-old-session-${crypto.randomUUID()}`));
    const id = freshId("rows-old-session");
    const now = testClock.peek();
    const old = { id, inc: "i1", createdAt: now, version: 1, model: "m", tier: "SIMPLE" as const, expiresAt: now + TIMEOUT_MS };
    expect(await shard.deliver({ kind: "upsert", row: old })).toBe(true);
    const page = await shard.page(null, 10, true);
    expect(page.spendMicros).toBe(0);
    expect(page.rows).toEqual([{ id, model: "m", tier: "SIMPLE", createdAt: now, sessionCostMicros: 0, strikes: 0, requestCount: 0, paused: false }]);
  });
});
