/** The Durable Object shell: persistence across eviction, alarm expiry, concurrency, clear. */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { JOURNAL_RETENTION_MS, type SessionObject } from "../src/objects/session-object";
import { shardFor } from "../src/objects/registry-client";
import { configFor } from "../src/session/config";
import { registryHas, storedEntryOf, storedKeys, storedState, stubOf } from "./support/objects";
import { freshId } from "./support/back-ends";
import { registryCaughtUp } from "./support/converge";
import { rpcFailure } from "./support/rpc";
import { registryFault, testClock } from "./support/worker";

const svc = exports.SessionService;
const timeoutMs = configFor(env).timeoutMs;
describe("persistence", () => {
  it("keeps every field across eviction", async () => {
    const id = freshId("evict");
    await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    testClock.advance(1500);
    await svc.touchSession(id);
    await svc.recordRequestHash(id, "a");
    await svc.recordRequestHash(id, "a");
    await svc.escalateSession(id);
    await svc.addSessionCost(id, 4321);
    await svc.setSession(id, "pinned-by-user", "", true);
    const before = await svc.getSession(id);
    expect(before).toMatchObject({ userExplicit: true, escalated: true, strikes: 1, sessionCostMicros: 4321, requestCount: 3 });

    await evictDurableObject(stubOf(id));
    const after = await svc.getSession(id);
    expect(after).toEqual(before);
    // Every field, named, so a field added later cannot silently escape this test.
    for (const field of [
      "model",
      "tier",
      "createdAt",
      "lastUsedAt",
      "requestCount",
      "recentHashes",
      "strikes",
      "escalated",
      "userExplicit",
      "sessionCostMicros",
      "id",
    ] as const) {
      expect(after![field], field).toEqual(before![field]);
    }
  });

  it("writes storage before answering: what is stored equals what was returned", async () => {
    const id = freshId("durable");
    const returned = await svc.setSession(id, "m", "MEDIUM");
    const { kv: stored } = await storedState(id);
    // The view adds its ID and the figures it derives (budget, what is reserved and in flight); a session PUT creates has no cache key,
    // deployment or token totals yet (the view shows 0 tokens). The record keeps when it last reported to the registry: its creation.
    const entry = storedEntryOf(returned);
    expect(stored).toEqual({ id, entry, inc: expect.any(String), version: 0, reportedAt: returned.createdAt });
  });

  it("creates no storage for reads of a session that does not exist", async () => {
    const id = freshId("absent");
    expect(await svc.getSession(id)).toBeNull();
    expect(await svc.touchSession(id)).toBeNull();
    const state = await runInDurableObject(stubOf(id), async (_o, s) => ({
      keys: [...s.storage.kv.list()].map(([k]) => k),
      alarm: await s.storage.getAlarm(),
    }));
    expect(state).toEqual({ keys: [], alarm: null });
  });
});

describe("alarm expiry", () => {
  it("arms once at creation for lastUsedAt + timeout and does not re-arm on touch", async () => {
    const id = freshId("arm");
    const created = await svc.setSession(id, "m", "SIMPLE");
    await registryCaughtUp();
    expect((await storedState(id)).alarm).toBe(created.createdAt + timeoutMs + 1);
    // Within a minute of the creation's report: usage changes wait for a later report.
    testClock.advance(59_000);
    await svc.touchSession(id);
    await svc.setSession(id, "m", "SIMPLE");
    await svc.addSessionCost(id, 1);
    expect((await storedState(id)).alarm).toBe(created.createdAt + timeoutMs + 1);
  });

  it("re-arms on wake for the new deadline when the session was used since", async () => {
    const id = freshId("rearm");
    await svc.setSession(id, "m", "SIMPLE");
    testClock.advance(timeoutMs - 1000);
    const touched = await svc.touchSession(id);
    testClock.advance(1001);
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    expect((await storedState(id)).alarm).toBe(touched!.lastUsedAt + timeoutMs + 1);
    expect(await svc.getSession(id)).toEqual(touched);
  });

  it("deletes storage, alarm and registry row once idle past the timeout", async () => {
    const id = freshId("expire");
    await svc.setSession(id, "m", "SIMPLE");
    expect(await registryHas(id)).toBe(true);
    const created = (await svc.getSession(id))!;
    testClock.advance(timeoutMs + 1);
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    // The session is gone; its journal stays a day after its deadline, to show how it ended.
    const deadline = created.lastUsedAt + timeoutMs;
    expect(await storedState(id)).toMatchObject({ kv: undefined, alarm: deadline + JOURNAL_RETENTION_MS, journal: { endedAt: deadline } });
    expect(await registryHas(id)).toBe(false);
    // Delivered again (at-least-once): still nothing, still no error.
    await runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm());
    expect(await storedState(id)).toMatchObject({ kv: undefined, alarm: deadline + JOURNAL_RETENTION_MS });
    await expectDroppedAfterRetention(id);
  });

  it("deletes an expired entry on sight, before its alarm runs", async () => {
    const id = freshId("sight");
    await svc.setSession(id, "m", "SIMPLE");
    testClock.advance(timeoutMs + 1);
    expect(await svc.getSession(id)).toBeNull();
    await registryCaughtUp();
    expect(await storedState(id)).toMatchObject({ kv: undefined, journal: { endedAt: expect.any(Number) } });
    expect(await registryHas(id)).toBe(false);
    await expectDroppedAfterRetention(id);
  });

  it("re-creates a fresh incarnation after expiry", async () => {
    const id = freshId("again");
    await svc.setSession(id, "m", "SIMPLE");
    await svc.addSessionCost(id, 99);
    testClock.advance(timeoutMs + 1);
    const again = await svc.setSession(id, "n", "MEDIUM");
    expect(again).toMatchObject({ model: "n", tier: "MEDIUM", requestCount: 1, sessionCostMicros: 0, createdAt: testClock.now() });
    await registryCaughtUp();
    expect((await storedState(id)).alarm).toBe(testClock.now() + timeoutMs + 1);
  });
});

describe("concurrency", () => {
  /** Registry calls held this long, so operations that await the registry before writing overlap. */
  const REGISTRY_DELAY_MS = 5;

  afterEach(() => {
    registryFault.delayMs = 0;
    testClock.tickMs = 0;
  });

  /** The session's row in its registry shard, or undefined. */
  async function registryRow(id: string) {
    return (await shardFor(env, id).page(null, 100_000, false)).rows.find((r) => r.id === id);
  }

  it("loses no update: touches racing model changes that await the registry all count", async () => {
    const id = freshId("concurrent");
    await svc.setSession(id, "m-0", "SIMPLE");
    registryFault.delayMs = REGISTRY_DELAY_MS;
    testClock.tickMs = 1;
    const sets = 20;
    const touches = 80;
    const calls = [
      ...Array.from({ length: sets }, (_, i) => () => svc.setSession(id, `m-${i + 1}`, "MEDIUM")),
      ...Array.from({ length: touches }, () => () => svc.touchSession(id)),
    ];
    // Interleaved, so touches arrive while model changes wait on the registry.
    const order = calls.map((_, i) => calls[(i * 37) % calls.length]!);
    const results = await Promise.all(order.map((c) => c()));
    const counts = results.map((r) => r!.requestCount).sort((a, b) => a - b);
    expect(counts).toEqual(Array.from({ length: sets + touches }, (_, i) => i + 2));
    const final = (await svc.getSession(id))!;
    expect(final.requestCount).toBe(1 + sets + touches);
    await registryCaughtUp();
    const row = await registryRow(id);
    expect(row).toMatchObject({ id, model: final.model, tier: final.tier, createdAt: final.createdAt });
    await evictDurableObject(stubOf(id));
    expect(await svc.getSession(id)).toEqual(final);
  });

  it("creates one incarnation when many sets race on a new session", async () => {
    const id = freshId("race");
    registryFault.delayMs = REGISTRY_DELAY_MS;
    testClock.tickMs = 1;
    const n = 50;
    const callsBefore = registryFault.calls;
    const results = await Promise.all(Array.from({ length: n }, () => svc.setSession(id, "m", "SIMPLE")));
    expect(new Set(results.map((r) => r.createdAt)).size).toBe(1);
    expect(results.map((r) => r.requestCount).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    // One creation, one registry delivery: the other sets change nothing the registry holds.
    await registryCaughtUp();
    expect(registryFault.calls - callsBefore).toBe(1);
    const stored = (await storedState(id)).kv!;
    expect(stored.entry.requestCount).toBe(n);
    expect(stored.entry.createdAt).toBe(results[0]!.createdAt);
    expect(await registryRow(id)).toMatchObject({ id, model: "m", tier: "SIMPLE", createdAt: stored.entry.createdAt });
    // The alarm is armed when the creation's delivery lands, for the expiry as it is then; a set
    // after that does not re-arm (the hot path writes no alarm). So it is at the last set's expiry,
    // or earlier when the delivery landed first, and then waking finds the session live and re-arms.
    const expiry = stored.entry.lastUsedAt + timeoutMs + 1;
    const { alarm } = await storedState(id);
    expect(alarm).toBeGreaterThanOrEqual(results[0]!.createdAt + timeoutMs + 1);
    expect(alarm).toBeLessThanOrEqual(expiry);
    if (alarm! < expiry) {
      testClock.tickMs = 0;
      testClock.advance(alarm! - testClock.peek());
      expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
      expect((await storedState(id)).alarm).toBe(expiry);
      expect((await svc.getSession(id))?.requestCount).toBe(n);
    }
  });
});

describe("clear", () => {
  it("removes entry, storage, alarm and registry row, and is fine twice", async () => {
    const id = freshId("clear");
    await svc.setSession(id, "m", "SIMPLE");
    await svc.clearSession(id);
    await svc.clearSession(id);
    expect(await svc.getSession(id)).toBeNull();
    await registryCaughtUp();
    expect(await storedState(id)).toMatchObject({ kv: undefined, journal: { endedAt: expect.any(Number) } });
    expect(await registryHas(id)).toBe(false);
    await expectDroppedAfterRetention(id);
  });
});

/** A day after its session ended, the object drops its journal and holds nothing, with no alarm left. */
async function expectDroppedAfterRetention(id: string): Promise<void> {
  const { alarm } = await storedState(id);
  expect(alarm).toBeTypeOf("number");
  testClock.advance(alarm! - testClock.peek());
  expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
  expect(await storedState(id)).toEqual({ kv: undefined, outbox: undefined, alarm: null, journal: undefined });
  expect(await storedKeys(id)).toEqual([]);
}

describe("hot path cost", () => {
  it("does one storage write and no alarm write per request on an existing session, and no registry call", async () => {
    const id = freshId("hot");
    await svc.setSession(id, "kimi-k2.5", "MEDIUM");
    await registryCaughtUp();
    const spies = await runInDurableObject(stubOf(id), (_obj: SessionObject, state) => ({
      put: vi.spyOn(state.storage.kv, "put"),
      alarm: vi.spyOn(state.storage, "setAlarm"),
      deleteAll: vi.spyOn(state.storage, "deleteAll"),
    }));
    const registryBefore = registryFault.calls;
    const body = { model: "auto", messages: [{ role: "user", content: "hello" }] };
    for (let turn = 0; turn < 5; turn++) {
      await svc.resolve({
        sessionId: id,
        body: { ...body, messages: [...body.messages, { role: "user", content: `turn ${turn}` }] },
        routed: { model: "gemini-2.5-flash", tier: "SIMPLE" },
        costMicros: 10,
      });
    }
    await svc.touchSession(id);
    await svc.recordRequestHash(id, "h");
    await svc.addSessionCost(id, 1);
    await svc.getSession(id);
    expect(spies.put).toHaveBeenCalledTimes(8);
    expect(spies.alarm).not.toHaveBeenCalled();
    expect(spies.deleteAll).not.toHaveBeenCalled();
    expect(registryFault.calls).toBe(registryBefore);
  });
});

describe("refusals", () => {
  it("are answered as values, never thrown across RPC, where the platform would log each one as an uncaught exception", async () => {
    const id = freshId("refusal");
    await svc.setSession(id, "m", "SIMPLE");
    await svc.setBudget(id, 10);
    const stub = stubOf(id) as unknown as { run(key: string, name: string, input: unknown): Promise<unknown> };
    const answer = await stub.run(id, "settle", { id, reservationId: "rsv_none", costMicros: 1 });
    expect(answer).toEqual({ refused: { code: "reservation_not_found", message: expect.any(String), reservationId: "rsv_none" } });
    // The facade throws it again, as the same error.
    expect(await rpcFailure(svc.settle(id, "rsv_none", 1))).toMatch(/^reservation_not_found: /);
  });
});
