/**
 * Adversarial review of issue 16 under the limits project's configuration
 * (graceful budgets, no SESSION_EVENTS binding; vitest.config.ts). Oracles
 * come from docs/http-api.md "Live sessions".
 */
import { describe, expect, it } from "vitest";
import { freshId } from "../support/back-ends";
import { ADMIN_TOKEN, call, sessionPath } from "../support/http";

const TIER_MODELS = { SIMPLE: "gemini-2.5-flash", MEDIUM: "kimi-k2.5", COMPLEX: "gemini-3.1-pro", REASONING: "grok-4-1-fast-reasoning" };
const COMPLEX = { model: TIER_MODELS.COMPLEX, tier: "COMPLEX" };
const PRICES = { SIMPLE: 10, MEDIUM: 40, COMPLEX: 90, REASONING: 200 };
const admin = { token: ADMIN_TOKEN };

const resolve = (id: string, extra: Record<string, unknown> = {}) =>
  call("POST", "/v1/resolve", {
    body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content: `hello ${crypto.randomUUID()}` }] }, routed: COMPLEX, ...extra },
  });

describe("operator actions under graceful budgets", () => {
  it("graceful mode does not answer a paused session: 423, with a reservation that would fit a lower tier", async () => {
    const id = freshId("graceful-paused");
    await resolve(id);
    await call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros: 50 } });
    await call("POST", sessionPath(id, "/pause"), admin);
    const res = await resolve(id, { reserveMicros: PRICES });
    expect(res.status).toBe(423);
    expect(res.json.error.code).toBe("session_paused");
    expect((await call("GET", sessionPath(id))).json).toMatchObject({ reservedMicros: 0, requestCount: 1 });
  });

  // Decided after review: an operator's pin holds against graceful mode too, as a user's explicit pick does
  // (docs/http-api.md, Operator actions): a reservation that does not fit is refused, not answered with a cheaper model.
  it("graceful mode never answers another model for an operator-pinned session: 429, the pin kept", async () => {
    const id = freshId("graceful-pinned");
    await resolve(id);
    await call("PUT", sessionPath(id, "/pin"), { ...admin, body: COMPLEX });
    await call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros: 50 } });
    const res = await resolve(id, { reserveMicros: PRICES });
    expect(res.status).toBe(429);
    expect(res.json.error.code).toBe("session_budget_exceeded");
    expect((await call("GET", sessionPath(id))).json).toMatchObject({ model: COMPLEX.model, tier: "COMPLEX", adminPinned: true });
  });
});
