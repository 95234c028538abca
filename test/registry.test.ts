/** Registry shards: stats, pagination, lifecycle rows, clear-all at scale, failure on create, admin auth. */
import { listDurableObjectIds, runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { registryCaughtUp } from "./support/converge";
import { facadeFor } from "./support/back-ends";
import { configFor } from "../src/session/config";
import { MAX_LISTED_MODELS, MAX_SHARD_MODEL_TOTALS, OTHER_MODELS, shardOf } from "../src/session/stats";
import { ADMIN_TOKEN, API_TOKEN, call, sessionPath } from "./support/http";
import { expectEnded, registryHas, storedState, stubOf } from "./support/objects";
import { freshId } from "./support/back-ends";
import { blockClears, registryFault, testClock } from "./support/worker";

const svc = exports.SessionService;
/** SessionAdmin over RPC, reading stats once the deliveries in flight have landed (see test/support/http.ts). */
const admin = {
  getStats: async (...args: Parameters<typeof exports.SessionAdmin.getStats>) => (await registryCaughtUp(), exports.SessionAdmin.getStats(...args)),
  clearAll: async () => (await registryCaughtUp(), exports.SessionAdmin.clearAll()),
};
const shards = configFor(env).registryShards;

/** IDs whose first eight characters are unique, so truncated stats IDs identify them. */
async function createMany(n: number, prefix: string, concurrency = 50): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${String(i).padStart(5, "0")}${prefix.slice(0, 3)}-${crypto.randomUUID()}`);
  for (let i = 0; i < ids.length; i += concurrency) {
    await Promise.all(ids.slice(i, i + concurrency).map((id) => svc.setSession(id, i % 2 ? "kimi-k2.5" : "gemini-2.5-flash", i % 2 ? "MEDIUM" : "SIMPLE")));
  }
  return ids;
}

async function clearEverything() {
  const res = await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
  expect(res.status).toBe(200);
  return res.json;
}

afterEach(() => {
  registryFault.mode = "none";
});

describe("stats", () => {
  it("spreads sessions over several shards and reports count, truncated IDs in order, age and totals", async () => {
    await clearEverything();
    const ids = ["zeta-session-1", "alpha-session-2", "short", "mid-sized-3", "b"];
    const models = ["gemini-2.5-flash", "kimi-k2.5", "kimi-k2.5", "gemini-3.1-pro", "mine"];
    const tiers = ["SIMPLE", "MEDIUM", "MEDIUM", "COMPLEX", ""] as const;
    const start = testClock.now();
    for (let i = 0; i < ids.length; i++) {
      await svc.setSession(ids[i]!, models[i]!, tiers[i]!, tiers[i] === "");
      testClock.advance(1000);
    }
    expect(new Set(ids.map((id) => shardOf(id, shards))).size).toBeGreaterThan(2);

    testClock.offsetMs += start + 10_999 - testClock.now();
    const stats = await facadeFor(env).getStats();
    const fresh = { sessionCostMicros: 0, strikes: 0, requestCount: 1, paused: false };
    expect(stats).toEqual({
      count: 5,
      // The full ID and tier too; a new session has made one request, with no strikes and no cost.
      sessions: [
        { id: "alpha-se...", sessionId: "alpha-session-2", model: "kimi-k2.5", tier: "MEDIUM", age: 9, ...fresh },
        { id: "b", sessionId: "b", model: "mine", tier: "", age: 6, ...fresh },
        { id: "mid-size...", sessionId: "mid-sized-3", model: "gemini-3.1-pro", tier: "COMPLEX", age: 7, ...fresh },
        { id: "short", sessionId: "short", model: "kimi-k2.5", tier: "MEDIUM", age: 8, ...fresh },
        { id: "zeta-ses...", sessionId: "zeta-session-1", model: "gemini-2.5-flash", tier: "SIMPLE", age: 10, ...fresh },
      ],
      byModel: { "gemini-2.5-flash": 1, "kimi-k2.5": 2, "gemini-3.1-pro": 1, mine: 1 },
      byTier: { SIMPLE: 1, MEDIUM: 2, COMPLEX: 1, "": 1 },
      // No session reported usage.
      cache: { inputTokens: 0, cachedInputTokens: 0, hitRatio: null },
      spendMicros: 0,
    });
    // Exactly eight characters stay, and an eight-character ID is shown whole.
    await svc.setSession("12345678", "m", "SIMPLE");
    expect((await facadeFor(env).getStats()).sessions.map((s) => s.id)).toContain("12345678");
  });

  it("reflects a model change (set with a new model, escalation to a new model) but not a touch", async () => {
    await clearEverything();
    const id = freshId("model");
    await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    await svc.setSession(id, "gemini-3.1-pro", "COMPLEX");
    expect((await admin.getStats()).byModel).toEqual({ "gemini-3.1-pro": 1 });
    await svc.escalateSession(id);
    expect((await admin.getStats()).byModel).toEqual({ "grok-4-1-fast-reasoning": 1 });
    expect((await admin.getStats()).byTier).toEqual({ REASONING: 1 });
  });

  it("paginates with limit and nextCursor, returning every session exactly once, with no full IDs", async () => {
    await clearEverything();
    const ids = await createMany(230, "page");
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const q = new URLSearchParams({ limit: "37", ...(cursor ? { cursor } : {}) });
      const res = await call("GET", `/v1/stats?${q}`, { token: ADMIN_TOKEN });
      expect(res.status).toBe(200);
      expect(res.json.count).toBe(230);
      expect(res.json.sessions.length).toBeLessThanOrEqual(37);
      seen.push(...res.json.sessions.map((s: { id: string }) => s.id));
      cursor = res.json.nextCursor;
      if (cursor) for (const id of ids) expect(cursor).not.toContain(id);
      pages++;
    } while (cursor);
    expect(pages).toBe(Math.ceil(230 / 37));
    expect(seen).toEqual(ids.map((id) => id.slice(0, 8) + "..."));
    expect(new Set(seen).size).toBe(230);
  });

  it("pages exactly once in order for every page size, including the refill path for uneven shards", async () => {
    await clearEverything();
    // Thirty sessions in one shard make that shard hold far more than its share of a page.
    const skewed: string[] = [];
    while (skewed.length < 30) {
      const id = `${String(skewed.length).padStart(5, "0")}skw-${crypto.randomUUID()}`;
      if (shardOf(id, shards) === 0) skewed.push(id);
    }
    for (const id of skewed) await svc.setSession(id, "m", "SIMPLE");
    const ids = [...(await createMany(90, "zsize")), ...skewed].sort();
    for (const limit of [1, 2, 3, 5, 7, 15, 16, 17, 33, 60, 119, 120, 121, 1000]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await admin.getStats({ limit, cursor });
        expect(page.sessions.length).toBeLessThanOrEqual(limit);
        seen.push(...page.sessions.map((x) => x.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen, `limit ${limit}`).toEqual(ids.map((id) => id.slice(0, 8) + "..."));
    }
  });

  it("rejects a bad limit or a forged cursor with 400", async () => {
    for (const q of ["limit=0", "limit=10001", "limit=abc", "limit=1&limit=2", "cursor=not-a-cursor", "cursor=AAAA"]) {
      const res = await call("GET", `/v1/stats?${q}`, { token: ADMIN_TOKEN });
      expect(res.status, q).toBe(400);
      expect(res.json.error.code).toBe(q.startsWith("cursor") ? "invalid_cursor" : "invalid_request");
    }
  });
});

describe("lifecycle rows", () => {
  it("removes the row when a session expires and when it is cleared", async () => {
    await clearEverything();
    const [a, b] = [freshId("exp"), freshId("clr")];
    await svc.setSession(a, "m", "SIMPLE");
    await svc.setSession(b, "m", "SIMPLE");
    expect((await admin.getStats()).count).toBe(2);
    await svc.clearSession(b);
    expect((await admin.getStats()).count).toBe(1);
    testClock.advance(configFor(env).timeoutMs + 1);
    expect(await runDurableObjectAlarm(stubOf(a))).toBe(true);
    expect((await admin.getStats()).count).toBe(0);
  });
});

describe("registry failure while creating a session", () => {
  it("answers 200 while the registry is down, and the session is counted once it is back", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const id = freshId("regfail");
    registryFault.mode = "throw";
    const res = await call("PUT", `/v1/sessions/${id}`, { body: { model: "m", tier: "SIMPLE" } });
    expect(res.status).toBe(200);
    expect((await call("GET", `/v1/sessions/${id}`)).json.model).toBe("m");
    expect(await registryHas(id)).toBe(false);
    registryFault.mode = "none";
    // Stats here let the retry land first (see `admin` above).
    expect((await admin.getStats()).sessions.some((s) => s.id === id.slice(0, 8) + "...")).toBe(true);
    vi.restoreAllMocks();
  });

  it("does not touch the registry on touch, hash, cost or escalation without a model change", async () => {
    const id = freshId("quiet");
    // REASONING escalates to its own TIER_MODELS model: no model change.
    await svc.setSession(id, "grok-4-1-fast-reasoning", "REASONING");
    await registryCaughtUp();
    const before = registryFault.calls;
    await svc.touchSession(id);
    await svc.recordRequestHash(id, "h");
    await svc.addSessionCost(id, 5);
    expect((await svc.escalateSession(id))!.escalated).toBe(true);
    await svc.setSession(id, "grok-4-1-fast-reasoning", "SIMPLE");
    await svc.getSession(id);
    expect(registryFault.calls).toBe(before);
  });
});

describe("clear all", () => {
  it("clears 2,000 sessions: storage, alarms and rows, with no surviving entry", async () => {
    await clearEverything();
    const ids = await createMany(2000, "bulk");
    expect((await admin.getStats({ limit: 1 })).count).toBe(2000);
    const res = await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
    expect(res).toMatchObject({ status: 200, json: { cleared: 2000 } });
    expect((await admin.getStats()).count).toBe(0);

    const known = new Set(ids.map((id) => env.SESSIONS.idFromName(id).toString()));
    const listed = await listDurableObjectIds(env.SESSIONS);
    expect(listed.filter((id) => known.has(id.toString())).length).toBe(2000);
    for (let i = 0; i < listed.length; i += 50) {
      const states = await Promise.all(listed.slice(i, i + 50).map((id) => storedState(id)));
      for (const state of states) expectEnded(state);
    }
    // 2,000 creations (about 25 s) and as many storage reads take 40-60 s on a 2-core machine alone, more beside other work.
  }, 180_000);

  it("does not lose a session created after the clear began, nor one re-created while it ran", async () => {
    await clearEverything();
    const before = await createMany(40, "before");
    const gate = blockClears();
    try {
      const clearing = call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
      // A clear is waiting inside a session object: the clear-all is certainly under way.
      await gate.blocked;
      // The late session lands in a shard whose clear is running.
      let late: string;
      do late = freshId("late");
      while (shardOf(late, shards) !== shardOf(before[0]!, shards));
      await svc.setSession(late, "m", "SIMPLE");
      // before[1] ends and starts again: its new incarnation is not the one the clear knew.
      const old = (await svc.getSession(before[1]!))!;
      await svc.clearSession(before[1]!);
      testClock.advance(1);
      const again = await svc.setSession(before[1]!, "n", "MEDIUM");
      expect(again.createdAt).toBeGreaterThan(old.createdAt);
      gate.release();

      const res = await clearing;
      expect(res).toMatchObject({ status: 200, json: { cleared: before.length - 1 } });
      expect(await svc.getSession(late)).toMatchObject({ model: "m", requestCount: 1 });
      expect(await svc.getSession(before[1]!)).toEqual(again);
      for (const id of [before[0]!, ...before.slice(2)]) expect(await svc.getSession(id), id).toBeNull();
      const stats = await admin.getStats();
      expect(stats.count).toBe(2);
      expect(stats.sessions.map((s) => s.id).sort()).toEqual([late, before[1]!].map((id) => id.slice(0, 8) + "...").sort());
    } finally {
      gate.release();
    }
  });

  it("removes and counts a session whose model changed while the clear held its row", async () => {
    await clearEverything();
    const before = await createMany(20, "moved");
    const gate = blockClears();
    try {
      const clearing = call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
      // Every shard has read its rows and its clears wait inside the session objects.
      await gate.blocked;
      // The model change rewrites the row the shard read; the incarnation is the same.
      const moved = await svc.setSession(before[0]!, "other-model", "COMPLEX");
      expect(moved.createdAt).toBe((await svc.getSession(before[0]!))!.createdAt);
      gate.release();

      const res = await clearing;
      expect(res).toMatchObject({ status: 200, json: { cleared: before.length } });
      for (const id of before) expect(await svc.getSession(id), id).toBeNull();
      expect((await admin.getStats()).count).toBe(0);
    } finally {
      gate.release();
    }
  });
});

describe("admin auth", () => {
  it("needs the admin token: the API token gets 403, no token 401", async () => {
    for (const [method, path] of [
      ["GET", "/v1/stats"],
      ["DELETE", "/v1/sessions"],
    ] as const) {
      expect((await call(method, path, { token: null })).json.error.code).toBe("unauthorized");
      expect((await call(method, path, { token: null })).status).toBe(401);
      expect((await call(method, path, { token: "wrong" })).status).toBe(401);
      const api = await call(method, path, { token: API_TOKEN });
      expect(api.status).toBe(403);
      expect(api.json.error.code).toBe("forbidden");
      expect((await call(method, path, { token: ADMIN_TOKEN })).status).toBe(200);
    }
  });
});

describe("stats follow every tier change", () => {
  it("an escalation that keeps the model moves byTier (PUT kimi-k2.5 SIMPLE, then escalate)", async () => {
    await clearEverything();
    const id = freshId("tier-only");
    expect((await call("PUT", sessionPath(id), { body: { model: "kimi-k2.5", tier: "SIMPLE" } })).status).toBe(200);
    expect((await call("POST", sessionPath(id, "/escalate"))).json).toMatchObject({ model: "kimi-k2.5", tier: "MEDIUM" });
    const stats = (await call("GET", "/v1/stats", { token: ADMIN_TOKEN })).json;
    expect(stats.byTier).toEqual({ MEDIUM: 1 });
    expect(stats.byModel).toEqual({ "kimi-k2.5": 1 });
  });

  it("a resolve upgrade with the same model moves byTier", async () => {
    await clearEverything();
    const id = freshId("upgrade");
    const body = { model: "auto", messages: [{ role: "user", content: "hi" }] };
    await svc.resolve({ sessionId: id, body, routed: { model: "m", tier: "SIMPLE" } });
    expect(await svc.resolve({ sessionId: id, body, routed: { model: "m", tier: "COMPLEX" } })).toMatchObject({ model: "m", tier: "COMPLEX" });
    expect((await admin.getStats()).byTier).toEqual({ COMPLEX: 1 });
  });
});

describe("stats counts for any model name", () => {
  const awkward = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "prototype"];
  const expected = awkward.map((m) => [m, 1] as const).sort();
  const entries = (o: Record<string, number>) => Object.entries(o).sort();

  it("counts models named like Object.prototype keys, over HTTP and RPC", async () => {
    await clearEverything();
    for (const model of awkward) await svc.setSession(freshId("proto"), model, "SIMPLE");
    const http = (await call("GET", "/v1/stats", { token: ADMIN_TOKEN })).json;
    expect(entries(http.byModel)).toEqual(expected);
    const rpc = await admin.getStats();
    expect(entries(rpc.byModel)).toEqual(expected);
    expect(rpc.count).toBe(awkward.length);
  });

  it(`lists at most ${MAX_LISTED_MODELS} models across shards, the rest and a model named "(other)" under "(other)"`, async () => {
    await clearEverything();
    // "popular" has one session in each of several shards: only the merged total ranks it first.
    for (let i = 0; i < 4; i++) await svc.setSession(`pop-${i}-${crypto.randomUUID()}`, "popular", "SIMPLE");
    const models = Array.from({ length: MAX_LISTED_MODELS + 4 }, (_, i) => `model-${String(i).padStart(3, "0")}`);
    await Promise.all(models.map((m) => svc.setSession(freshId("cap"), m, "MEDIUM")));
    await svc.setSession(freshId("cap"), OTHER_MODELS, "MEDIUM");
    const stats = await admin.getStats({ limit: 1 });
    expect(stats.count).toBe(4 + models.length + 1);
    expect(Object.keys(stats.byModel).length).toBe(MAX_LISTED_MODELS + 1);
    expect(stats.byModel["popular"]).toBe(4);
    // Ties break by name: the last five of the equally counted models fall into "(other)", with the literal one.
    expect(stats.byModel[OTHER_MODELS]).toBe(5 + 1);
    expect(Object.values(stats.byModel).reduce((a, b) => a + b, 0)).toBe(stats.count);
    expect(stats.byModel[models.at(-1)!]).toBeUndefined();
    expect(stats.byModel[models[MAX_LISTED_MODELS - 2]!]).toBe(1);
  });
});

describe("stats ID truncation", () => {
  it("cuts at 8 code points, never inside a surrogate pair", async () => {
    await clearEverything();
    await svc.setSession("aaaaaaa😀bbb", "m", "SIMPLE");
    await svc.setSession("bbbbbbb😀", "m", "SIMPLE");
    const ids = (await call("GET", "/v1/stats", { token: ADMIN_TOKEN })).json.sessions.map((s: { id: string }) => s.id);
    // Compared as JSON: a lone surrogate would be escaped there instead of breaking the test report.
    expect(JSON.stringify(ids)).toBe(JSON.stringify(["aaaaaaa😀...", "bbbbbbb😀"]));
  });
});

describe("a shard's stats totals are bounded", () => {
  it(`a shard answers at most ${MAX_SHARD_MODEL_TOTALS} model totals plus (other), however many distinct models it holds, and loses no count`, async () => {
    const shard = env.REGISTRY.get(env.REGISTRY.idFromName(`bounded-${crypto.randomUUID()}`));
    const models = MAX_SHARD_MODEL_TOTALS + 50;
    for (let i = 0; i < models; i++) {
      const row = { id: `s${i}`, inc: "i", version: 0, model: `model-${String(i).padStart(5, "0")}-${"x".repeat(200)}`, tier: "SIMPLE" as const };
      await shard.deliver({ kind: "upsert", row: { ...row, createdAt: Date.now(), expiresAt: Date.now() + 60_000 } });
    }
    const page = await shard.page(null, 1, true);
    expect(page.byModel).toHaveLength(MAX_SHARD_MODEL_TOTALS + 1);
    expect(page.byModel.at(-1)).toEqual([OTHER_MODELS, 50]);
    expect((page.byModel as [string, number][]).reduce((sum, [, n]) => sum + n, 0)).toBe(models);
    expect(page.count).toBe(models);
  });
});
