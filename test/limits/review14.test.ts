/**
 * Review of issue 14 (budgets that hold under concurrency), under the limits
 * project's configuration (vitest.config.ts): SESSION_BUDGET_MODE=graceful,
 * SESSION_MAX_IN_FLIGHT=3, SESSION_RATE_PER_MIN=6, SESSION_TIMEOUT_MS=60000,
 * RESERVATION_TTL_MS=120000. Expected figures are worked out from the contract
 * (docs/http-api.md "Budgets", "Entries and costs", "Stats and clear-all").
 *
 * Tests marked DEFECT fail on the code they were written against; the others
 * confirm a property the existing tests do not cover.
 */
import { describe, expect, it } from "vitest";
import { freshId } from "../support/back-ends";
import { counted, registryCaughtUp } from "../support/converge";
import { call, sessionPath } from "../support/http";
import { testClock } from "../support/worker";

const TIER_MODELS = { SIMPLE: "gemini-2.5-flash", MEDIUM: "kimi-k2.5", COMPLEX: "gemini-3.1-pro", REASONING: "grok-4-1-fast-reasoning" };
const PRICES = { SIMPLE: 10, MEDIUM: 40, COMPLEX: 90, REASONING: 200 };
const COMPLEX = { model: TIER_MODELS.COMPLEX, tier: "COMPLEX" };
const MEDIUM = { model: TIER_MODELS.MEDIUM, tier: "MEDIUM" };

const message = () => [{ role: "user", content: `hello ${crypto.randomUUID()}` }];
const resolve = (id: string, extra: Record<string, unknown> = {}, routed = COMPLEX) =>
  call("POST", "/v1/resolve", { body: { sessionId: id, body: { model: "auto", messages: message() }, routed, ...extra } });
const resolveExplicit = (id: string, model: string, extra: Record<string, unknown> = {}) =>
  call("POST", "/v1/resolve", { body: { sessionId: id, body: { model, messages: message() }, ...extra } });
const settle = (id: string, reservationId: unknown, costMicros: number) => call("POST", sessionPath(id, "/settle"), { body: { reservationId, costMicros } });
const setBudget = (id: string, budgetMicros: number | null) => call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros } });
/** The model a resolve answered, or the code it was refused with. */
const outcome = (res: { status: number; json: any }) => (res.status === 200 ? res.json.model : res.json.error.code);

describe("review 14: graceful mode never moves an explicit pin", () => {
  // DEFECT: admit() skips graceful mode only for tier "", not for userExplicit. A session whose
  // model was picked explicitly keeps its tier when PUT names one (or when the explicit model equals
  // the pinned one), and graceful mode then answers another tier's model. Contract: "an explicit pin
  // is never moved"; "userExplicit: the model was picked explicitly; sticky".
  // Proposed fix (src/session/budget.ts admit): `mode === "graceful" && … && !entry.userExplicit`
  // (and arguably amountFor should hold the largest amount for any userExplicit session).
  it("DEFECT: a session pinned explicitly with a tier (PUT userExplicit) is not downgraded to another model", async () => {
    const id = freshId("explicit-tier");
    const put = await call("PUT", sessionPath(id), { body: { model: TIER_MODELS.COMPLEX, tier: "COMPLEX", userExplicit: true } });
    expect(put.json).toMatchObject({ userExplicit: true, tier: "COMPLEX" });
    expect((await setBudget(id, 100)).status).toBe(200);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await resolve(id, { reserveMicros: PRICES }));
    // Each answer is the explicit model or a refusal; never another tier's model.
    for (const a of answers) expect([TIER_MODELS.COMPLEX, "session_budget_exceeded"]).toContain(outcome(a));
    for (const a of answers) if (a.status === 200) expect(a.json.downgraded).toBe(false);
  });

  it("DEFECT: a resolve whose body names a model explicitly is answered with that model or refused, never downgraded", async () => {
    const id = freshId("explicit-same-model");
    // The router pins kimi-k2.5 (MEDIUM); the user then names kimi-k2.5 explicitly: the pin keeps tier MEDIUM.
    expect((await resolve(id, {}, MEDIUM)).json).toMatchObject({ model: TIER_MODELS.MEDIUM, tier: "MEDIUM" });
    expect((await setBudget(id, 250)).status).toBe(200);
    // A model picked explicitly holds the largest amount (200): it fits once.
    const first = await resolveExplicit(id, TIER_MODELS.MEDIUM, { reserveMicros: PRICES });
    expect(first.json).toMatchObject({ model: TIER_MODELS.MEDIUM, userExplicit: true, downgraded: false, reservedMicros: 200 });
    // The second must not swap the model the body asked for: 200 more does not fit, and SIMPLE's 10 would.
    const second = await resolveExplicit(id, TIER_MODELS.MEDIUM, { reserveMicros: PRICES });
    expect(outcome(second)).toBe("session_budget_exceeded");
  });

  it("holds: a routed session that was escalated in the same request is downgraded from its new tier, and its pin stays escalated", async () => {
    const id = freshId("escalate-graceful");
    const same = [{ role: "user", content: `stuck ${crypto.randomUUID()}` }];
    const send = (extra: Record<string, unknown> = {}) =>
      call("POST", "/v1/resolve", {
        body: { sessionId: id, body: { model: "auto", messages: same }, routed: { model: TIER_MODELS.SIMPLE, tier: "SIMPLE" }, ...extra },
      });
    expect((await send()).json).toMatchObject({ tier: "SIMPLE" });
    expect((await setBudget(id, 30)).status).toBe(200);
    expect((await send()).json).toMatchObject({ strikes: 1, tier: "SIMPLE" });
    // The third identical request escalates to MEDIUM (40 > 30): graceful answers SIMPLE (10), the pin is MEDIUM.
    const third = await send({ reserveMicros: PRICES });
    expect(third.json).toMatchObject({ escalated: true, tier: "SIMPLE", model: TIER_MODELS.SIMPLE, downgraded: true, reservedMicros: 10 });
    expect((await call("GET", sessionPath(id))).json).toMatchObject({ tier: "MEDIUM", model: TIER_MODELS.MEDIUM, reservedMicros: 10 });
  });
});

describe("review 14: stats and sessions kept alive by a reservation", () => {
  it("holds: a session alive only because of a reservation is counted past its idle deadline, and leaves stats once the reservation expires", async () => {
    const id = freshId("kept");
    // Created at 0 s without a reservation: idle deadline 60 s.
    expect((await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } })).status).toBe(200);
    await registryCaughtUp();
    testClock.advance(30_000);
    // Reserved at 30 s: open until 150 s; idle deadline 90 s.
    expect((await resolve(id, { reserveMicros: 7 })).status).toBe(200);
    testClock.advance(70_000);
    await registryCaughtUp();
    expect((await call("GET", sessionPath(id))).status).toBe(200);
    expect((await counted([id])).has(id)).toBe(true);
    testClock.advance(50_001);
    await registryCaughtUp();
    expect((await call("GET", sessionPath(id))).status).toBe(404);
    expect((await counted([id])).has(id)).toBe(false);
  });

  // DEFECT: the registry row's deadline hint is the reservation's expiry, and a settle (which moves the
  // session's real deadline earlier, here into the past) tells the registry nothing. src/session/registry.ts
  // assumes "use only moves it later, so the real deadline is never earlier", which settle breaks when
  // RESERVATION_TTL_MS > SESSION_TIMEOUT_MS. Stats then count an ended session until the reservation would
  // have expired (up to RESERVATION_TTL_MS, 24 h at most). Contract: a session is counted "never past its
  // deadline" (http-api.md, Stats); the MemoryStore does not count it (it checks isExpired).
  // Proposed fix: when a step moves expiresAt(entry) earlier, end the session in that step if it is now
  // expired (SessionObject.run: #end, a remove delivery) or else report the row with a new version so the
  // shard takes the earlier deadline (decideUpsert "update"); and re-arm the alarm for the earlier deadline.
  // The shard's own check (a minute before the row's deadline) also catches this here; test/rules.test.ts
  // checks that the step itself reports an earlier deadline, which matters when RESERVATION_TTL_MS is far above the timeout.
  it("holds: a settle that moves the session's deadline earlier: stats drop it at the new deadline, not when the reservation would have expired", async () => {
    const id = freshId("settled-ends");
    const { reservationId } = (await resolve(id, { reserveMicros: 7 })).json;
    await registryCaughtUp();
    expect((await counted([id])).has(id)).toBe(true);
    // At 10 s the settle restarts the idle time: the deadline becomes 70 s, earlier than the reservation's 120 s.
    testClock.advance(10_000);
    expect((await settle(id, reservationId, 3)).status).toBe(200);
    await registryCaughtUp();
    testClock.advance(60_000);
    await registryCaughtUp();
    expect((await counted([id])).has(id)).toBe(true);
    // Past 70 s, with nothing read in between (a gateway does not read after settling): stats no longer count it.
    testClock.advance(1_000);
    await registryCaughtUp();
    expect((await counted([id])).has(id)).toBe(false);
    expect((await call("GET", sessionPath(id))).status).toBe(404);
  });
});

describe("review 14: the rate limit", () => {
  it("holds: resolves refused for the budget or the in-flight cap take no token", async () => {
    const id = freshId("rate-refused");
    expect((await resolve(id)).status).toBe(200); // token 1
    expect((await setBudget(id, 100)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await resolve(id, { reserveMicros: 1 })).status).toBe(200); // tokens 2–4
    for (let i = 0; i < 3; i++) expect((await resolve(id, { reserveMicros: 1 })).json.error.code).toBe("session_concurrency_limited");
    for (let i = 0; i < 3; i++) expect((await resolve(id, { costMicros: 1000 })).json.error.code).toBe("session_budget_exceeded");
    expect((await resolve(id)).status).toBe(200); // token 5
    expect((await resolve(id)).status).toBe(200); // token 6
    expect((await resolve(id)).json.error.code).toBe("session_rate_limited");
  });

  it("holds: waiting exactly Retry-After seconds always admits the next resolve, and one second less does not when Retry-After > 1", async () => {
    for (const waitedMs of [0, 1, 3_300, 9_000, 9_999]) {
      const id = freshId("retry-after");
      for (let i = 0; i < 6; i++) expect((await resolve(id)).status).toBe(200);
      testClock.advance(waitedMs);
      const limited = await resolve(id);
      expect(limited.status, `after ${waitedMs} ms`).toBe(429);
      const seconds = Number(limited.headers.get("retry-after"));
      expect(limited.json.error.retryAfterSeconds).toBe(seconds);
      // The 7th token is due 10 s after the burst.
      expect(seconds).toBe(Math.max(1, Math.ceil((10_000 - waitedMs) / 1000)));
      if (seconds > 1) {
        testClock.advance((seconds - 1) * 1000);
        expect((await resolve(id)).status, `after ${waitedMs} ms + Retry-After - 1 s`).toBe(429);
        testClock.advance(1000);
      } else testClock.advance(1000);
      expect((await resolve(id)).status, `after ${waitedMs} ms + Retry-After`).toBe(200);
    }
  });
});
