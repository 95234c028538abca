/**
 * The limits a session can carry beyond its budget, under the configuration of
 * this project (vitest.config.ts): SESSION_BUDGET_MODE=graceful,
 * SESSION_MAX_IN_FLIGHT=3, SESSION_RATE_PER_MIN=6, SESSION_TIMEOUT_MS=60000,
 * RESERVATION_TTL_MS=120000. Expected figures are worked out from the contract.
 */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { freshId } from "../support/back-ends";
import { call, sessionPath } from "../support/http";
import { testClock } from "../support/worker";

const TIER_MODELS = { SIMPLE: "gemini-2.5-flash", MEDIUM: "kimi-k2.5", COMPLEX: "gemini-3.1-pro", REASONING: "grok-4-1-fast-reasoning" };
const COMPLEX = { model: TIER_MODELS.COMPLEX, tier: "COMPLEX" };
/** What one request would cost at most on each tier. */
const PRICES = { SIMPLE: 10, MEDIUM: 40, COMPLEX: 90, REASONING: 200 };

const resolve = (id: string, extra: Record<string, unknown> = {}) =>
  call("POST", "/v1/resolve", {
    body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content: `hello ${crypto.randomUUID()}` }] }, routed: COMPLEX, ...extra },
  });
const settle = (id: string, reservationId: unknown, costMicros: number) => call("POST", sessionPath(id, "/settle"), { body: { reservationId, costMicros } });
const read = async (id: string) => (await call("GET", sessionPath(id))).json;
const evict = (id: string) => evictDurableObject(env.SESSIONS.get(env.SESSIONS.idFromName(id)));
/** Rate-limited sessions recover with time: 10 s buys one more resolve at 6 a minute. */
const refill = (resolves: number) => testClock.advance(resolves * 10_000);

async function complexSession(budget: number): Promise<string> {
  const id = freshId("limits");
  expect((await resolve(id)).json).toMatchObject({ tier: "COMPLEX" });
  expect((await call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros: budget } })).status).toBe(200);
  return id;
}

describe("graceful mode", () => {
  it("answers for the highest lower tier whose reservation fits, with its TIER_MODELS model, and leaves the pin alone", async () => {
    const id = await complexSession(100);
    const first = await resolve(id, { reserveMicros: PRICES });
    expect(first.json).toMatchObject({ model: TIER_MODELS.COMPLEX, tier: "COMPLEX", downgraded: false, reservedMicros: 90 });
    // 90 reserved: COMPLEX (90) and MEDIUM (40) would pass 100; SIMPLE (10) fits exactly.
    const second = await resolve(id, { reserveMicros: PRICES });
    expect(second.json).toMatchObject({ model: TIER_MODELS.SIMPLE, tier: "SIMPLE", downgraded: true, reservedMicros: 100 });
    expect(await read(id)).toMatchObject({ model: TIER_MODELS.COMPLEX, tier: "COMPLEX", reservedMicros: 100, inFlight: 2 });
    // Nothing fits now: 429, with the session's own tier's figures.
    const third = await resolve(id, { reserveMicros: PRICES });
    expect(third.status).toBe(429);
    expect(third.json.error).toMatchObject({ code: "session_budget_exceeded", reservedMicros: 100, reserveMicros: 90, budgetMicros: 100 });

    refill(3);
    await settle(id, first.json.reservationId, 50);
    await evict(id);
    // 50 spent + 10 reserved: MEDIUM (40) fits exactly.
    expect((await resolve(id, { reserveMicros: PRICES })).json).toMatchObject({
      tier: "MEDIUM",
      model: TIER_MODELS.MEDIUM,
      downgraded: true,
      reservedMicros: 50,
    });
  });

  it("does not downgrade a single amount, which is the same on every tier, nor an explicit pin", async () => {
    const id = await complexSession(50);
    expect((await resolve(id, { reserveMicros: 60 })).json.error.code).toBe("session_budget_exceeded");
    const pinned = freshId("pinned");
    const body = { sessionId: pinned, body: { model: "my-model", messages: [{ role: "user", content: "x" }] } };
    await call("POST", "/v1/resolve", { body });
    await call("PUT", sessionPath(pinned, "/budget"), { body: { budgetMicros: 100 } });
    // An explicit pin holds the largest amount (200) and keeps its model: refused.
    const res = await call("POST", "/v1/resolve", { body: { ...body, reserveMicros: PRICES } });
    expect(res.status).toBe(429);
    expect(res.json.error).toMatchObject({ reserveMicros: 200 });
  });
});

describe("SESSION_MAX_IN_FLIGHT", () => {
  it("refuses a fourth open reservation with 429 session_concurrency_limited until one is settled or expires, across eviction", async () => {
    const id = await complexSession(10_000);
    const held = [];
    for (let i = 0; i < 3; i++) held.push((await resolve(id, { reserveMicros: 1 })).json.reservationId);
    await evict(id);
    const fourth = await resolve(id, { reserveMicros: 1 });
    expect(fourth.status).toBe(429);
    expect(fourth.json.error).toMatchObject({ code: "session_concurrency_limited", inFlight: 3, maxInFlight: 3 });
    // A resolve without a reservation is not limited by the cap.
    refill(2);
    expect((await resolve(id)).status).toBe(200);
    await settle(id, held[0], 1);
    await evict(id);
    expect((await resolve(id, { reserveMicros: 1 })).status).toBe(200);
    refill(6);
    // 80 s in: 40 s more and the two oldest open ones (reserved at 0 s) have been held longer than
    // RESERVATION_TTL_MS and are charged; the one reserved at 20 s is still open, and keeps the idle session alive.
    testClock.advance(40_001);
    expect((await resolve(id, { reserveMicros: 1 })).status).toBe(200);
    expect(await read(id)).toMatchObject({ inFlight: 2, sessionCostMicros: 3 });
  });
});

describe("SESSION_RATE_PER_MIN", () => {
  it("admits a burst of 6, then answers 429 session_rate_limited with Retry-After in whole seconds, and refills at 6 a minute", async () => {
    const id = freshId("rate");
    for (let i = 0; i < 6; i++) expect((await resolve(id)).status).toBe(200);
    const limited = await resolve(id);
    expect(limited.status).toBe(429);
    expect(limited.json.error).toMatchObject({ code: "session_rate_limited", ratePerMin: 6, retryAfterSeconds: 10 });
    expect(limited.headers.get("retry-after")).toBe("10");
    // A refused request takes no token and records nothing.
    expect((await read(id)).requestCount).toBe(6);
    testClock.advance(4_500);
    expect((await resolve(id)).headers.get("retry-after")).toBe("6");
    testClock.advance(5_500);
    await evict(id);
    expect((await resolve(id)).status).toBe(200);
    expect((await resolve(id)).status).toBe(429);
  });

  it("limits each session on its own", async () => {
    const a = freshId("rate-a");
    for (let i = 0; i < 6; i++) await resolve(a);
    expect((await resolve(a)).status).toBe(429);
    expect((await resolve(freshId("rate-b"))).status).toBe(200);
  });
});

describe("an open reservation is a request in flight", () => {
  it("keeps its session alive past the idle timeout until it is settled or expires", async () => {
    const id = freshId("alive");
    const { reservationId } = (await resolve(id, { reserveMicros: 7 })).json;
    // Idle past SESSION_TIMEOUT_MS (60 s), but the reservation is open until 120 s.
    testClock.advance(90_000);
    await evict(id);
    expect(await read(id)).toMatchObject({ reservedMicros: 7, inFlight: 1 });
    expect((await settle(id, reservationId, 3)).json).toMatchObject({ sessionCostMicros: 3, reservedMicros: 0 });
    // The call that just finished is activity: the idle time restarts at the settle (90 s), without a request counted.
    testClock.advance(60_000);
    expect(await read(id)).toMatchObject({ requestCount: 1, inFlight: 0, sessionCostMicros: 3 });
    testClock.advance(60_001);
    expect((await call("GET", sessionPath(id))).status).toBe(404);
  });

  it("ends with its session once the reservation expires unsettled", async () => {
    const id = freshId("expires");
    const { reservationId } = (await resolve(id, { reserveMicros: 7 })).json;
    testClock.advance(120_000);
    expect(await read(id)).toMatchObject({ sessionCostMicros: 0, reservedMicros: 7 });
    testClock.advance(1);
    expect((await call("GET", sessionPath(id))).status).toBe(404);
    expect((await settle(id, reservationId, 1)).json.error.code).toBe("session_not_found");
  });
});
