/**
 * The example lifecycle-queue consumer (examples/events-consumer/README.md):
 * bodies are the two messages docs/events.md specifies; the consumer alerts on
 * `session.ended` and on `session.budget_threshold` at 80 percent and up, once
 * per `messageId` however many copies arrive, acknowledges malformed bodies
 * without acting, and retries a message whose webhook failed. Every outbound
 * fetch of the Worker under test lands in test/fixtures/webhook-recorder.js.
 */
import { createExecutionContext, createMessageBatch, getQueueResult, runDurableObjectAlarm, runInDurableObject, type QueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import worker, { dedupeFor, type Env as ConsumerEnv } from "../../examples/events-consumer/src/index";
import type { SessionBudgetThreshold, SessionEnded } from "../../src/session/lifecycle";

const HOOK = "https://alerts.example.test/hook";
const DAY_MS = 24 * 60 * 60 * 1000;

type TestEnv = ConsumerEnv & { WEBHOOK_LOG: Fetcher };
const testEnv = env as unknown as TestEnv;

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  status: number;
}

async function calls(): Promise<Call[]> {
  return (await testEnv.WEBHOOK_LOG.fetch("http://recorder/__recorder/calls")).json();
}
/** The alerts the webhook took (2xx), parsed. */
async function alerts(): Promise<Record<string, unknown>[]> {
  return (await calls()).filter((c) => c.status < 300).map((c) => JSON.parse(c.body));
}
async function failNext(count: number): Promise<void> {
  await testEnv.WEBHOOK_LOG.fetch("http://recorder/__recorder/fail", { method: "POST", body: JSON.stringify({ count }) });
}

let seq = 0;
const incarnation = () => crypto.randomUUID();

function ended(inc = incarnation(), over: Partial<SessionEnded> = {}): SessionEnded {
  return {
    type: "session.ended",
    messageId: `${inc}:ended`,
    sessionId: `s-${inc.slice(0, 8)}`,
    tenant: null,
    incarnation: inc,
    reason: "cleared",
    createdAt: 1_780_000_000_000,
    endedAt: 1_780_000_600_000,
    requestCount: 7,
    sessionCostMicros: 12_345,
    models: ["gemini-2.5-flash", "kimi-k2.5"],
    escalations: 1,
    strikes: 2,
    cache: { inputTokens: 1_000, cachedInputTokens: 250, hitRatio: 0.25 },
    ...over,
  };
}

function threshold(percent: number, inc = incarnation()): SessionBudgetThreshold {
  return {
    type: "session.budget_threshold",
    messageId: `${inc}:budget:${percent}`,
    sessionId: `s-${inc.slice(0, 8)}`,
    tenant: "acme",
    incarnation: inc,
    percent,
    at: 1_780_000_300_000,
    sessionCostMicros: percent * 10,
    budgetMicros: 1_000,
  };
}

/**
 * Hands `bodies` to the consumer as one batch; answers the messages' IDs, what the handler did
 * with each, and the delay each retry asked for (getQueueResult does not keep it).
 */
async function deliver(
  bodies: unknown[],
  attempts = 1,
  useEnv: TestEnv = testEnv,
): Promise<{ ids: string[]; result: QueueResult; delays: (number | undefined)[] }> {
  const batch = createMessageBatch(
    "edge-session-events",
    bodies.map((body) => ({ id: `msg-${++seq}`, timestamp: Date.now(), attempts, body })),
  );
  const delays: (number | undefined)[] = [];
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    message.retry = (options?: QueueRetryOptions) => {
      delays.push(options?.delaySeconds);
      retry(options);
    };
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, useEnv);
  return { ids: batch.messages.map((m) => m.id), result: await getQueueResult(batch, ctx), delays };
}

/** Every message of the batch acknowledged, none retried. */
function expectAllAcked({ ids, result }: { ids: string[]; result: QueueResult }): void {
  expect(result.retryMessages).toEqual([]);
  expect(result.retryBatch.retry).toBe(false);
  expect([...result.explicitAcks].sort()).toEqual([...ids].sort());
}

beforeEach(async () => {
  await testEnv.WEBHOOK_LOG.fetch("http://recorder/__recorder/calls", { method: "DELETE" });
  await failNext(0);
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("acting on a message", () => {
  it("session.ended: one POST of the documented JSON to ALERT_WEBHOOK_URL, then ack", async () => {
    const message = ended(undefined, { tenant: "acme", reason: "expired" });
    expectAllAcked(await deliver([message]));
    const [call, ...rest] = await calls();
    expect(rest).toEqual([]);
    expect(call).toMatchObject({ url: HOOK, method: "POST", status: 204 });
    expect(call!.headers["content-type"]).toBe("application/json");
    expect(call!.headers["idempotency-key"]).toBe(message.messageId);
    expect(JSON.parse(call!.body)).toEqual({
      type: "session.ended",
      messageId: message.messageId,
      tenant: "acme",
      sessionId: message.sessionId,
      reason: "expired",
      createdAt: message.createdAt,
      endedAt: message.endedAt,
      requestCount: 7,
      sessionCostMicros: 12_345,
      models: ["gemini-2.5-flash", "kimi-k2.5"],
      escalations: 1,
      strikes: 2,
      cacheHitRatio: 0.25,
    });
  });

  it("cache null (no usage reported) alerts with cacheHitRatio null", async () => {
    expectAllAcked(await deliver([ended(undefined, { cache: null })]));
    expect((await alerts()).map((a) => a.cacheHitRatio)).toEqual([null]);
  });

  it("session.budget_threshold: 80 and 100 percent alert, 50 is acknowledged without acting", async () => {
    const inc = incarnation();
    const [fifty, eighty, hundred] = [threshold(50, inc), threshold(80, inc), threshold(100, inc)];
    expectAllAcked(await deliver([fifty, eighty, hundred]));
    expect(await alerts()).toEqual(
      [eighty, hundred].map((m) => ({
        type: "session.budget_threshold",
        messageId: m.messageId,
        tenant: "acme",
        sessionId: m.sessionId,
        percent: m.percent,
        sessionCostMicros: m.sessionCostMicros,
        budgetMicros: 1_000,
        at: m.at,
      })),
    );
  });

  it("without ALERT_WEBHOOK_URL the alert is logged, and the message still counts as acted on", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const message = ended();
    const unset = Object.create(testEnv, { ALERT_WEBHOOK_URL: { value: undefined } }) as TestEnv;
    expectAllAcked(await deliver([message], 1, unset));
    expect(await calls()).toEqual([]);
    const logged = log.mock.calls.map((args) => String(args[0])).filter((line) => line.includes(message.messageId));
    expect(logged).toHaveLength(1);
    // A copy, now with the webhook set, is a copy: no alert.
    expectAllAcked(await deliver([message]));
    expect(await calls()).toEqual([]);
  });
});

describe("copies of a messageId act once", () => {
  it("within one batch", async () => {
    const message = ended();
    expectAllAcked(await deliver([message, structuredClone(message), threshold(80), structuredClone(message)]));
    expect((await alerts()).filter((a) => a.messageId === message.messageId)).toHaveLength(1);
    expect(await alerts()).toHaveLength(2);
  });

  it("across batches", async () => {
    const message = threshold(100);
    expectAllAcked(await deliver([message]));
    expectAllAcked(await deliver([structuredClone(message)]));
    expectAllAcked(await deliver([structuredClone(message)], 3));
    expect(await alerts()).toHaveLength(1);
  });

  it("across two consumer invocations at once: one acts; the other is acknowledged or retried, and its retry acts on nothing", async () => {
    const message = ended();
    const both = await Promise.all([deliver([message]), deliver([structuredClone(message)])]);
    expect(await alerts()).toHaveLength(1);
    for (const { ids, result } of both) {
      const retried = result.retryMessages.map((r) => r.msgId);
      expect([...result.explicitAcks, ...retried]).toEqual(ids);
      if (retried.length > 0) expectAllAcked(await deliver([structuredClone(message)], 2));
    }
    expect(await alerts()).toHaveLength(1);
  });

  it("the same session's other messages are not copies", async () => {
    const inc = incarnation();
    expectAllAcked(await deliver([threshold(80, inc), threshold(100, inc), ended(inc)]));
    expect((await alerts()).map((a) => a.type)).toEqual(["session.budget_threshold", "session.budget_threshold", "session.ended"]);
  });
});

describe("malformed bodies", () => {
  const good = ended();
  const { messageId: _m, ...noId } = good;
  const malformed: unknown[] = [
    null,
    "session.ended",
    42,
    [good],
    { ...good, type: "session.started" },
    noId,
    { ...good, messageId: "" },
    { ...good, sessionId: 7 },
    { ...good, tenant: undefined },
    { ...good, incarnation: null },
    { ...good, reason: "killed" },
    { ...good, endedAt: "yesterday" },
    { ...good, requestCount: -1 },
    { ...good, sessionCostMicros: 1.5 },
    { ...good, models: "gemini-2.5-flash" },
    { ...good, models: [1] },
    { ...good, cache: { inputTokens: 10 } },
    { ...good, cache: { inputTokens: 10, cachedInputTokens: 5, hitRatio: 2 } },
    { ...threshold(80), percent: "80" },
    { ...threshold(80), budgetMicros: null },
    { ...threshold(100), at: undefined },
  ];

  it("each is acknowledged with a warning and never acted on, and the valid message beside them acts", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const delivery = await deliver([...malformed, good]);
    expectAllAcked(delivery);
    expect(warn).toHaveBeenCalledTimes(malformed.length);
    expect((await alerts()).map((a) => a.messageId)).toEqual([good.messageId]);
  });

  it("a body with fields the contract does not name is still valid", async () => {
    const message = { ...threshold(80), extra: { future: true } };
    expectAllAcked(await deliver([message]));
    expect((await alerts()).map((a) => a.messageId)).toEqual([message.messageId]);
  });
});

describe("webhook failures", () => {
  it("a failed webhook retries the message; a later delivery alerts once, and copies after it do not", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const message = threshold(80);
    await failNext(2);
    // README.md: 10 s after the first attempt, doubling.
    for (const [attempts, delay] of [
      [1, 10],
      [2, 20],
    ]) {
      const { ids, result, delays } = await deliver([message], attempts);
      expect(result.explicitAcks).toEqual([]);
      expect(result.retryMessages.map((r) => r.msgId)).toEqual(ids);
      expect(delays).toEqual([delay]);
    }
    expect((await calls()).map((c) => c.status)).toEqual([503, 503]);
    expectAllAcked(await deliver([message], 3));
    expectAllAcked(await deliver([structuredClone(message)], 1));
    expect((await calls()).map((c) => c.status)).toEqual([503, 503, 204]);
  });

  it("a failure for one message retries only that one", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const [first, second] = [ended(), ended()];
    await failNext(1);
    const { ids, result } = await deliver([first, second]);
    expect(result.retryMessages.map((r) => r.msgId)).toEqual([ids[0]]);
    expect(result.explicitAcks).toEqual([ids[1]]);
    expectAllAcked(await deliver([first], 2));
    expect((await alerts()).map((a) => a.messageId)).toEqual([second.messageId, first.messageId]);
  });
});

describe("the dedupe record", () => {
  it("a claim whose consumer died while acting holds for its lease, then a retried delivery acts", async () => {
    const message = ended();
    const stub = dedupeFor(testEnv, message.messageId);
    // A consumer that claimed the message and died before acting.
    expect(await stub.claim(message.messageId)).toMatchObject({ act: true });
    const { ids, result, delays } = await deliver([message]);
    expect(result.retryMessages).toEqual([{ msgId: ids[0] }]);
    // README.md: asked again once the claim's 60 s lease has run out.
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThan(0);
    expect(delays[0]).toBeLessThanOrEqual(60);
    expect(await calls()).toEqual([]);
    // The lease runs out.
    await runInDurableObject(stub, (_o, state) => {
      state.storage.sql.exec("UPDATE seen SET lease_until = ? WHERE message_id = ?", Date.now() - 1, message.messageId);
    });
    expectAllAcked(await deliver([message], 2));
    expect(await alerts()).toHaveLength(1);
  });

  it("is kept 7 days: the sweep deletes older rows only, and a copy after that alerts again", async () => {
    const [old, recent] = [threshold(100), threshold(100)];
    expectAllAcked(await deliver([old, recent]));
    const stubs = [dedupeFor(testEnv, old.messageId), dedupeFor(testEnv, recent.messageId)];
    await runInDurableObject(stubs[0]!, (_o, state) => {
      state.storage.sql.exec("UPDATE seen SET seen_at = seen_at - ? WHERE message_id = ?", 7 * DAY_MS, old.messageId);
    });
    await runInDurableObject(stubs[1]!, (_o, state) => {
      state.storage.sql.exec("UPDATE seen SET seen_at = seen_at - ? WHERE message_id = ?", 6 * DAY_MS, recent.messageId);
    });
    for (const stub of stubs) expect(await runDurableObjectAlarm(stub)).toBe(true);
    expectAllAcked(await deliver([structuredClone(old), structuredClone(recent)]));
    expect((await alerts()).map((a) => a.messageId)).toEqual([old.messageId, recent.messageId, old.messageId]);
  });
});
