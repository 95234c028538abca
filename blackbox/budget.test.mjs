/**
 * Issue 14's budgets that hold under concurrency, checked from outside against
 * `wrangler dev` over real HTTP: reserve in resolve, settle after the call, pause
 * at the budget and raise it. Every expected number is worked out from the
 * contract by hand. Run by `npm run test:blackbox`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { call, freshId, sessionPath } from "./client.mjs";

/** The server's SESSION_BUDGET_MICROS (package.json test:blackbox): what PUT budget null returns to. */
const DEFAULT_BUDGET = Number(process.env.BLACKBOX_BUDGET_MICROS ?? 1_000_000);
const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const MEDIUM = { model: "kimi-k2.5", tier: "MEDIUM" };

const resolveBody = (id, extra = {}) => ({
  sessionId: id,
  body: { model: "auto", messages: [{ role: "user", content: `hello ${crypto.randomUUID()}` }] },
  routed: SIMPLE,
  ...extra,
});
const resolve = (id, extra) => call("POST", "/v1/resolve", { body: resolveBody(id, extra) });
const settle = (id, reservationId, costMicros) => call("POST", sessionPath(id, "/settle"), { body: { reservationId, costMicros } });
const setBudget = (id, budgetMicros) => call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros } });

async function read(id) {
  const res = await call("GET", sessionPath(id));
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json;
}

function assertError(res, status, code) {
  assert.equal(res.status, status, JSON.stringify(res.json));
  assert.equal(res.json.error.code, code);
  assert.equal(typeof res.json.error.message, "string");
}

/** A session created by one resolve, with its own budget. */
async function sessionWithBudget(budgetMicros, prefix = "bb-budget") {
  const id = freshId(prefix);
  assert.equal((await resolve(id)).status, 200);
  const put = await setBudget(id, budgetMicros);
  assert.equal(put.status, 200, JSON.stringify(put.json));
  assert.equal(put.json.budgetMicros, budgetMicros);
  return id;
}

describe("budgets over HTTP", () => {
  it("200 concurrent resolves reserving 30 against a budget of 1,000: exactly 33 admitted; settled at 10 each, cost 330 and nothing reserved", async () => {
    const id = await sessionWithBudget(1000, "bb-storm");
    const before = await read(id);
    assert.equal(before.reservedMicros, 0);
    assert.equal(before.inFlight, 0);

    const answers = await Promise.all(Array.from({ length: 200 }, () => resolve(id, { reserveMicros: 30 })));
    const admitted = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    assert.equal(admitted.length, 33);
    assert.equal(refused.length, 167);
    // Reservations only grow during the burst, so a refusal can only come once 33 × 30 = 990 is held: 990 + 30 > 1,000.
    for (const r of refused) {
      assertError(r, 429, "session_budget_exceeded");
      assert.deepEqual(
        { ...r.json.error, message: undefined },
        { code: "session_budget_exceeded", sessionCostMicros: 0, reservedMicros: 990, reserveMicros: 30, budgetMicros: 1000, message: undefined },
      );
    }
    // Each admitted answer holds its own reservation on top of the ones before it: 30, 60, …, 990.
    assert.deepEqual(
      admitted.map((a) => a.json.reservedMicros).sort((x, y) => x - y),
      Array.from({ length: 33 }, (_, i) => 30 * (i + 1)),
    );
    for (const a of admitted) {
      assert.equal(a.json.budgetMicros, 1000);
      assert.equal(a.json.downgraded, false);
      assert.equal(a.json.sessionCostMicros, 0);
    }
    const ids = admitted.map((a) => a.json.reservationId);
    assert.ok(ids.every((rid) => typeof rid === "string" && rid.length > 0));
    assert.equal(new Set(ids).size, 33);
    const held = await read(id);
    assert.equal(held.sessionCostMicros, 0);
    assert.equal(held.reservedMicros, 990);
    assert.equal(held.inFlight, 33);
    assert.equal(held.budgetMicros, 1000);
    // A refusal records nothing: only the admitted requests count.
    assert.equal(held.requestCount, before.requestCount + 33);

    const settled = await Promise.all(ids.map((rid) => settle(id, rid, 10)));
    for (const s of settled) assert.equal(s.status, 200, JSON.stringify(s.json));
    assert.deepEqual(
      settled.map((s) => s.json.sessionCostMicros).sort((x, y) => x - y),
      Array.from({ length: 33 }, (_, i) => 10 * (i + 1)),
    );
    assert.deepEqual(settled.find((s) => s.json.reservedMicros === 0)?.json, { sessionCostMicros: 330, reservedMicros: 0, costUSD: 0.00033 });
    const after = await read(id);
    assert.equal(after.sessionCostMicros, 330);
    assert.equal(after.reservedMicros, 0);
    assert.equal(after.inFlight, 0);
    assert.equal(after.budgetMicros, 1000);
  });

  it("a per-tier reservation holds the amount of the session's tier", async () => {
    const id = freshId("bb-tiers");
    const res = await resolve(id, { routed: MEDIUM, reserveMicros: { SIMPLE: 1, MEDIUM: 2, COMPLEX: 3, REASONING: 4 } });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.tier, "MEDIUM");
    assert.equal(res.json.reservedMicros, 2);
    assert.equal(res.json.budgetMicros, DEFAULT_BUDGET);
    const view = await read(id);
    assert.equal(view.reservedMicros, 2);
    assert.equal(view.inFlight, 1);
  });

  it("settle releases the reservation and adds the actual cost; a repeat, even with another cost, changes nothing", async () => {
    const id = await sessionWithBudget(1000);
    const { reservationId } = (await resolve(id, { reserveMicros: 300 })).json;
    assert.equal((await read(id)).reservedMicros, 300);
    const first = await settle(id, reservationId, 120);
    assert.equal(first.status, 200);
    assert.deepEqual(first.json, { sessionCostMicros: 120, reservedMicros: 0, costUSD: 0.00012 });
    for (const cost of [120, 999]) {
      const again = await settle(id, reservationId, cost);
      assert.equal(again.status, 200);
      assert.deepEqual(again.json, first.json);
    }
    const view = await read(id);
    assert.equal(view.sessionCostMicros, 120);
    assert.equal(view.reservedMicros, 0);
    assert.equal(view.inFlight, 0);
  });

  it("settle: 404 reservation_not_found for an ID this session never handed out, 404 session_not_found for no session", async () => {
    const id = await sessionWithBudget(1000);
    const other = await sessionWithBudget(1000);
    const { reservationId } = (await resolve(other, { reserveMicros: 5 })).json;
    const before = await read(id);
    for (const rid of ["rsv_nope", reservationId]) assertError(await settle(id, rid, 1), 404, "reservation_not_found");
    assertError(await settle(freshId("bb-nobody"), reservationId, 1), 404, "session_not_found");
    assert.deepEqual(await read(id), before);
    const view = await read(other);
    assert.equal(view.reservedMicros, 5);
    assert.equal(view.inFlight, 1);
    assert.equal(view.sessionCostMicros, 0);
  });

  it("pauses at the budget, refusing every reservation (even of 0), until PUT budget raises it; null returns to the default", async () => {
    const id = await sessionWithBudget(100);
    const full = await resolve(id, { reserveMicros: 100 });
    assert.equal(full.status, 200, JSON.stringify(full.json));
    assert.equal(full.json.reservedMicros, 100);
    assert.deepEqual((await settle(id, full.json.reservationId, 100)).json, { sessionCostMicros: 100, reservedMicros: 0, costUSD: 0.0001 });

    const paused = await read(id);
    const refused = await resolve(id, { reserveMicros: 0 });
    assertError(refused, 429, "session_budget_exceeded");
    assert.equal(refused.json.error.sessionCostMicros, 100);
    assert.equal(refused.json.error.reservedMicros, 0);
    assert.equal(refused.json.error.reserveMicros, 0);
    assert.equal(refused.json.error.budgetMicros, 100);
    assert.deepEqual(await read(id), paused);

    const raised = await setBudget(id, 150);
    assert.equal(raised.status, 200);
    assert.equal(raised.json.id, id);
    assert.equal(raised.json.budgetMicros, 150);
    assert.equal(raised.json.sessionCostMicros, 100);
    assert.equal(raised.json.reservedMicros, 0);
    assert.equal(raised.json.inFlight, 0);
    assert.equal((await read(id)).budgetMicros, 150);
    // 100 spent + 51 would pass 150; 50 fits exactly.
    assertError(await resolve(id, { reserveMicros: 51 }), 429, "session_budget_exceeded");
    const resumed = await resolve(id, { reserveMicros: 50 });
    assert.equal(resumed.status, 200, JSON.stringify(resumed.json));
    assert.equal(resumed.json.reservedMicros, 50);
    assert.equal(resumed.json.budgetMicros, 150);

    const reset = await setBudget(id, null);
    assert.equal(reset.status, 200);
    assert.equal(reset.json.budgetMicros, DEFAULT_BUDGET);
    assert.equal((await read(id)).budgetMicros, DEFAULT_BUDGET);
  });

  it("PUT budget: 404 session_not_found for no session, 401 without a token", async () => {
    assertError(await setBudget(freshId("bb-nobody"), 5), 404, "session_not_found");
    const id = await sessionWithBudget(100);
    assertError(await call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros: 1 }, token: null }), 401, "unauthorized");
    assert.equal((await read(id)).budgetMicros, 100);
  });

  it("bad inputs to resolve, settle and PUT budget get 400 naming the field, and change nothing", async () => {
    const id = await sessionWithBudget(1000);
    const { reservationId } = (await resolve(id, { reserveMicros: 5 })).json;
    const before = await read(id);
    assert.equal(before.reservedMicros, 5);

    const tiers = { SIMPLE: 1, MEDIUM: 2, COMPLEX: 3, REASONING: 4 };
    const badReserves = [-1, 1.5, "30", null, true, [], { SIMPLE: 1 }, { ...tiers, EXTRA: 1 }, { ...tiers, MEDIUM: -2 }, { ...tiers, COMPLEX: "3" }, 2 ** 53];
    for (const bad of badReserves) {
      const res = await resolve(id, { reserveMicros: bad });
      assertError(res, 400, "invalid_request");
      assert.match(res.json.error.message, /reserveMicros/, JSON.stringify(bad));
    }

    const badSettles = [
      [reservationId, -1, "costMicros"],
      [reservationId, 1.5, "costMicros"],
      [reservationId, "10", "costMicros"],
      [reservationId, undefined, "costMicros"],
      [reservationId, 2 ** 53, "costMicros"],
      ["", 1, "reservationId"],
      [42, 1, "reservationId"],
      [undefined, 1, "reservationId"],
    ];
    for (const [rid, cost, field] of badSettles) {
      const res = await settle(id, rid, cost);
      assertError(res, 400, "invalid_request");
      assert.match(res.json.error.message, new RegExp(field), JSON.stringify([rid, cost]));
    }
    assertError(await call("POST", sessionPath(id, "/settle"), { rawBody: "{nope" }), 400, "invalid_json");

    for (const bad of [-1, 1.5, "100", undefined, {}, true, 2 ** 53]) {
      const res = await setBudget(id, bad);
      assertError(res, 400, "invalid_request");
      assert.match(res.json.error.message, /budgetMicros/, JSON.stringify(bad));
    }

    assert.deepEqual(await read(id), before);
    // The reservation the bad settles named is still open and settles normally.
    assert.deepEqual((await settle(id, reservationId, 4)).json, { sessionCostMicros: 4, reservedMicros: 0, costUSD: 0.000004 });
  });
});
