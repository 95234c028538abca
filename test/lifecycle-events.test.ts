/**
 * Lifecycle messages on the SESSION_EVENTS queue (issue 16): `session.ended`
 * at expiry or clear, and `session.budget_threshold` at 50, 80 and 100
 * percent, each decided once per incarnation, kept in the object's storage
 * and retried from its alarm until the queue takes it. The queue binding in
 * test/support/worker.ts records what the queue took and injects failures
 * and resets between deciding a message and sending it.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { LifecycleMessage } from "../src/session/lifecycle";
import { freshId } from "./support/back-ends";
import { ADMIN_TOKEN, call, sessionPath } from "./support/http";
import { asPreviousVersion, stubOf } from "./support/objects";
import { commitFault, queueFault, testClock } from "./support/worker";
import { env } from "cloudflare:workers";
import { registryCaughtUp } from "./support/converge";

const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const MEDIUM = { model: "kimi-k2.5", tier: "MEDIUM" };

const resolve = (id: string, content: string, routed = SIMPLE) =>
  call("POST", "/v1/resolve", { body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content }] }, routed } });

/** What the object still has to send. */
async function pending(id: string): Promise<LifecycleMessage[]> {
  return runInDurableObject(stubOf(id), async (_o, state) => [...state.storage.kv.list<LifecycleMessage>({ prefix: "send:" })].map(([, m]) => m));
}

/** Waits, for at most 5 s, until the injected faults have reset an object `count` times in all. */
async function resets(count: number): Promise<void> {
  for (let i = 0; i < 500 && queueFault.resets < count; i++) await new Promise((r) => setTimeout(r, 10));
  expect(queueFault.resets).toBe(count);
}

/** Waits, for at most 5 s, for the sends the answer started to finish. */
async function sent(id: string, count: number): Promise<LifecycleMessage[]> {
  for (let i = 0; i < 500 && queueFault.acceptedFor(id).length < count; i++) await new Promise((r) => setTimeout(r, 10));
  return queueFault.acceptedFor(id);
}

/** The messages the queue took for the session after a second more, for checks that no copy follows. */
async function sentAfterAWhile(id: string): Promise<LifecycleMessage[]> {
  await new Promise((r) => setTimeout(r, 1000));
  return queueFault.acceptedFor(id);
}

afterEach(() => {
  queueFault.heal();
  commitFault.count = 0;
  commitFault.target = null;
});

describe("session.ended", () => {
  it("at clear: once, with the session's figures, and nothing left to send", async () => {
    const id = freshId("ended");
    await resolve(id, "a");
    await resolve(id, "b", MEDIUM);
    await call("POST", sessionPath(id, "/cost"), { body: { micros: 1_234, usage: { inputTokens: 100, cachedInputTokens: 40 } } });
    const before = (await call("GET", sessionPath(id))).json;
    expect((await call("DELETE", sessionPath(id), { token: ADMIN_TOKEN })).status).toBe(204);
    const [message, ...rest] = await sent(id, 1);
    expect(rest).toEqual([]);
    expect(message).toEqual({
      type: "session.ended",
      messageId: expect.stringMatching(/:ended$/),
      sessionId: id,
      tenant: null,
      incarnation: expect.any(String),
      reason: "cleared",
      createdAt: before.createdAt,
      endedAt: expect.any(Number),
      requestCount: 2,
      sessionCostMicros: 1_234,
      models: [SIMPLE.model, MEDIUM.model],
      escalations: 0,
      strikes: 0,
      cache: { inputTokens: 100, cachedInputTokens: 40, hitRatio: 0.4 },
    });
    expect(await pending(id)).toEqual([]);
    // Clearing again ends nothing more.
    await call("DELETE", sessionPath(id));
    expect(await sentAfterAWhile(id)).toHaveLength(1);
  });

  it("at expiry, by the alarm: endedAt is the deadline, and escalations are counted", async () => {
    const id = freshId("expiry");
    await resolve(id, "loop");
    await resolve(id, "loop");
    const last = await resolve(id, "loop");
    expect(last.json.escalated).toBe(true);
    const timeoutMs = 1_800_000;
    testClock.advance(timeoutMs + 1);
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    const [message] = await sent(id, 1);
    expect(message).toMatchObject({ type: "session.ended", reason: "expired", endedAt: (await lastUsed(id)) + timeoutMs, escalations: 1, cache: null });
    expect((message as { models: string[] }).models).toHaveLength(2);
    expect(await sentAfterAWhile(id)).toHaveLength(1);
  });

  it("an expired session found by a request ends once, and the new incarnation's end is its own message", async () => {
    const id = freshId("sight");
    await resolve(id, "a");
    testClock.advance(1_800_001);
    await resolve(id, "b");
    const first = await sent(id, 1);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ reason: "expired" });
    await call("DELETE", sessionPath(id));
    const both = await sent(id, 2);
    expect(both).toHaveLength(2);
    expect(both[1]).toMatchObject({ reason: "cleared" });
    expect(both[1]!.incarnation).not.toBe(both[0]!.incarnation);
  });
});

/** The events' record of when the session was last used, read from its journal's end. */
async function lastUsed(id: string): Promise<number> {
  const events = (await call("GET", sessionPath(id, "/events"))).json.events as Array<{ type: string; at: number }>;
  return events.filter((e) => e.type === "created").at(-1)!.at;
}

describe("session.budget_threshold", () => {
  it("at 50, 80 and 100 percent, once each per incarnation", async () => {
    const id = freshId("threshold");
    await resolve(id, "a");
    await call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros: 1_000 } });
    for (const micros of [500, 100, 200, 300, 10]) await call("POST", sessionPath(id, "/cost"), { body: { micros } });
    const messages = await sent(id, 3);
    expect(messages.map((m) => (m.type === "session.budget_threshold" ? [m.percent, m.sessionCostMicros, m.budgetMicros] : m.type))).toEqual([
      [50, 500, 1_000],
      [80, 800, 1_000],
      [100, 1_100, 1_000],
    ]);
    expect(new Set(messages.map((m) => m.messageId)).size).toBe(3);
  });
});

describe("exactly once under faults", () => {
  it("a queue that fails: the message waits in storage and the alarm sends it once the queue is back", async () => {
    const id = freshId("queue-down");
    await resolve(id, "a");
    queueFault.mode = "throw";
    await call("DELETE", sessionPath(id));
    await new Promise((r) => setTimeout(r, 20));
    expect(queueFault.acceptedFor(id)).toEqual([]);
    expect((await pending(id)).map((m) => m.type)).toEqual(["session.ended"]);
    // Still down at the first retry: it stays, and the alarm comes back.
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    expect(await pending(id)).toHaveLength(1);
    queueFault.mode = "none";
    testClock.advance(60_000);
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    expect(await sent(id, 1)).toHaveLength(1);
    expect(await pending(id)).toEqual([]);
    // More alarms (the platform delivers them at least once) send nothing again.
    await runInDurableObject(stubOf(id), (o) => o.alarm());
    expect(queueFault.acceptedFor(id)).toHaveLength(1);
  });

  it("evicted between deciding and sending: the decision survives in storage and is sent once", async () => {
    const id = freshId("evicted");
    await resolve(id, "a");
    queueFault.mode = "throw";
    queueFault.count = 1;
    await call("DELETE", sessionPath(id));
    await new Promise((r) => setTimeout(r, 20));
    await evictDurableObject(stubOf(id));
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    expect(await sent(id, 1)).toHaveLength(1);
    expect(await pending(id)).toEqual([]);
  });

  it("reset just before the queue takes it: sent once after the reset", async () => {
    const before = queueFault.resets;
    const id = freshId("reset-before");
    await resolve(id, "a");
    queueFault.mode = "reset-before";
    queueFault.count = 1;
    await call("DELETE", sessionPath(id));
    await resets(before + 1);
    expect(queueFault.acceptedFor(id)).toEqual([]);
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    expect(await sent(id, 1)).toHaveLength(1);
    expect(await pending(id)).toEqual([]);
  });

  it("reset after the queue took it, before the object recorded that: the copy carries the same messageId", async () => {
    const before = queueFault.resets;
    const id = freshId("reset-after");
    await resolve(id, "a");
    queueFault.mode = "reset-after";
    queueFault.count = 1;
    await call("DELETE", sessionPath(id));
    await resets(before + 1);
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    const copies = await sent(id, 2);
    expect(copies).toHaveLength(2);
    expect(copies[1]).toEqual(copies[0]);
    expect(await pending(id)).toEqual([]);
  });

  it("a commit that fails after deciding: nothing was decided, and the retried clear decides once", async () => {
    const id = freshId("commit");
    await resolve(id, "a");
    // With the creation's registry delivery still out, the injected abort lands after the commit (as in test/faults.test.ts).
    await registryCaughtUp();
    commitFault.target = env.SESSIONS.idFromName(id);
    commitFault.count = 1;
    const failed = await call("DELETE", sessionPath(id));
    expect(failed.status).toBe(500);
    expect(queueFault.acceptedFor(id)).toEqual([]);
    expect((await call("GET", sessionPath(id))).status).toBe(200);
    expect((await call("DELETE", sessionPath(id))).status).toBe(204);
    expect(await sent(id, 1)).toHaveLength(1);
    expect(await sentAfterAWhile(id)).toHaveLength(1);
  });

  it("thresholds decided while an end waits are kept with it, and both are sent in order", async () => {
    const id = freshId("ordered");
    await resolve(id, "a");
    queueFault.mode = "throw";
    await call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros: 100 } });
    await call("POST", sessionPath(id, "/cost"), { body: { micros: 100 } });
    await call("DELETE", sessionPath(id));
    await new Promise((r) => setTimeout(r, 20));
    expect((await pending(id)).map((m) => m.type)).toEqual([
      "session.budget_threshold",
      "session.budget_threshold",
      "session.budget_threshold",
      "session.ended",
    ]);
    queueFault.mode = "none";
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    expect((await sent(id, 4)).map((m) => m.type)).toEqual([
      "session.budget_threshold",
      "session.budget_threshold",
      "session.budget_threshold",
      "session.ended",
    ]);
  });
});

describe("a session stored before incarnations", () => {
  it("names its decisions by its ID: two such sessions' messages never share a messageId", async () => {
    const [a, b] = [freshId("legacy-a"), freshId("legacy-b")];
    for (const id of [a, b]) {
      await resolve(id, "a");
      await registryCaughtUp();
      await asPreviousVersion(id);
      await call("DELETE", sessionPath(id));
    }
    const messages = [...(await sent(a, 1)), ...(await sent(b, 1))];
    expect(messages.map((m) => [m.incarnation, m.messageId])).toEqual([
      ["", `${JSON.stringify([null, a])}:ended`],
      ["", `${JSON.stringify([null, b])}:ended`],
    ]);
  });
});

describe("a long queue outage", () => {
  it("keeps each waiting message under its own key, and sends them all, in order, once the queue is back", async () => {
    const id = freshId("outage");
    queueFault.mode = "throw";
    for (let i = 0; i < 40; i++) {
      await resolve(id, `round ${i}`);
      await call("DELETE", sessionPath(id));
    }
    const waiting = await runInDurableObject(stubOf(id), async (_o, state) => ({
      keys: [...state.storage.kv.list({ prefix: "send:" })].length,
      meta: state.storage.kv.get<{ count: number }>("sends"),
    }));
    expect(waiting).toEqual({ keys: 40, meta: expect.objectContaining({ count: 40 }) });
    queueFault.mode = "none";
    testClock.advance(11 * 60_000);
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    const messages = await sent(id, 40);
    expect(messages).toHaveLength(40);
    expect(new Set(messages.map((m) => m.incarnation)).size).toBe(40);
    const ends = messages.map((m) => (m as { endedAt: number }).endedAt);
    expect(ends).toEqual([...ends].sort((a, b) => a - b));
    expect(await pending(id)).toEqual([]);
  });
});
