/**
 * Budgets that hold under concurrency (strict mode, the default): reserve in
 * resolve, settle after the call, expiry of unsettled reservations, pause at
 * the budget and raise. Every expected number here is worked out from the
 * contract by hand, not by the rules under test.
 */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { configFor } from "../src/session/config";
import { freshId } from "./support/back-ends";
import { call, sessionPath } from "./support/http";
import { testClock } from "./support/worker";

const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const TTL_MS = configFor(env).reservationTtlMs;

function resolveBody(id: string, extra: Record<string, unknown> = {}) {
  return { sessionId: id, body: { model: "auto", messages: [{ role: "user", content: `hello ${crypto.randomUUID()}` }] }, routed: SIMPLE, ...extra };
}

const resolve = (id: string, extra: Record<string, unknown> = {}) => call("POST", "/v1/resolve", { body: resolveBody(id, extra) });
const settle = (id: string, reservationId: unknown, costMicros: unknown) => call("POST", sessionPath(id, "/settle"), { body: { reservationId, costMicros } });
const setBudget = (id: string, budgetMicros: unknown) => call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros } });
const read = async (id: string) => (await call("GET", sessionPath(id))).json;
/** An RPC call from the test gateway Worker (test/fixtures/gateway-worker.js): `{ ok }`, or `{ error: "code: message" }`. */
const rpc = (method: string, ...args: unknown[]) =>
  env.GATEWAY.fetch("http://gateway/", { method: "POST", body: JSON.stringify({ method, args }) }).then(
    (r) => r.json() as Promise<{ ok?: any; error?: string }>,
  );

/** A session with its own budget. */
async function sessionWithBudget(budget: number): Promise<string> {
  const id = freshId("budget");
  expect((await resolve(id)).status).toBe(200);
  expect((await setBudget(id, budget)).status).toBe(200);
  return id;
}

describe("reservations hold under concurrency", () => {
  it("200 concurrent resolves reserving 30 against a budget of 1,000: exactly 33 admitted; settled at 10 each, cost 330 and nothing reserved", async () => {
    const id = await sessionWithBudget(1000);
    const answers = await Promise.all(Array.from({ length: 200 }, () => resolve(id, { reserveMicros: 30 })));
    const admitted = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    expect(admitted.length).toBe(33);
    expect(refused.length).toBe(167);
    for (const r of refused) expect(r.json.error.code).toBe("session_budget_exceeded");
    // Each admitted answer saw its own reservation added to the ones before it: 30, 60, …, 990.
    expect(admitted.map((a) => a.json.reservedMicros).sort((x, y) => x - y)).toEqual(Array.from({ length: 33 }, (_, i) => 30 * (i + 1)));
    const ids = admitted.map((a) => a.json.reservationId);
    expect(new Set(ids).size).toBe(33);
    expect(await read(id)).toMatchObject({ sessionCostMicros: 0, reservedMicros: 990, inFlight: 33, budgetMicros: 1000 });

    const settled = await Promise.all(ids.map((rid) => settle(id, rid, 10)));
    expect(settled.every((s) => s.status === 200)).toBe(true);
    expect(await read(id)).toMatchObject({ sessionCostMicros: 330, reservedMicros: 0, inFlight: 0 });
    const last = settled.find((s) => s.json.reservedMicros === 0)!;
    expect(last.json).toEqual({ sessionCostMicros: 330, reservedMicros: 0, costUSD: 0.00033 });
  });

  it("the same over RPC, from a second Worker", async () => {
    const id = await sessionWithBudget(1000);
    const answers = await Promise.all(Array.from({ length: 200 }, () => rpc("resolve", resolveBody(id, { reserveMicros: 30 }))));
    const admitted = answers.filter((a) => a.ok);
    expect(admitted.length).toBe(33);
    expect(answers.filter((a) => a.error?.startsWith("session_budget_exceeded: ")).length).toBe(167);
    for (const a of admitted) expect((await rpc("settle", id, a.ok.reservationId, 10)).ok).toBeDefined();
    expect(await read(id)).toMatchObject({ sessionCostMicros: 330, reservedMicros: 0, inFlight: 0 });
  });
});

describe("strict mode", () => {
  it("refuses with the session's figures and records nothing", async () => {
    const id = await sessionWithBudget(100);
    const before = await read(id);
    const res = await resolve(id, { reserveMicros: 101 });
    expect(res.status).toBe(429);
    expect(res.json.error).toMatchObject({ code: "session_budget_exceeded", sessionCostMicros: 0, reservedMicros: 0, reserveMicros: 101, budgetMicros: 100 });
    expect(await read(id)).toEqual(before);
  });

  it("a reservation that exactly fills the budget is admitted", async () => {
    const id = await sessionWithBudget(100);
    const res = await resolve(id, { reserveMicros: 100 });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ reservedMicros: 100, budgetMicros: 100, downgraded: false });
    expect(res.json.reservationId).toEqual(expect.any(String));
  });

  it("a per-tier reservation holds the amount of the session's tier (an explicit pin holds the largest)", async () => {
    const tiers = { SIMPLE: 1, MEDIUM: 2, COMPLEX: 3, REASONING: 4 };
    const id = freshId("tiers");
    expect((await resolve(id, { reserveMicros: tiers, routed: { model: "kimi-k2.5", tier: "MEDIUM" } })).json.reservedMicros).toBe(2);
    const pinned = freshId("pinned");
    const res = await call("POST", "/v1/resolve", {
      body: { sessionId: pinned, body: { model: "my-model", messages: [{ role: "user", content: "x" }] }, reserveMicros: tiers },
    });
    expect(res.json).toMatchObject({ model: "my-model", tier: "", reservedMicros: 4 });
  });

  it("a resolve without a reservation counts what is reserved against its costMicros (the compatible path)", async () => {
    const id = await sessionWithBudget(100);
    expect((await resolve(id, { reserveMicros: 60 })).status).toBe(200);
    expect((await resolve(id, { costMicros: 40 })).status).toBe(200);
    const over = await resolve(id, { costMicros: 1 });
    expect(over.status).toBe(429);
    expect(over.json.error).toMatchObject({ code: "session_budget_exceeded", sessionCostMicros: 40, reservedMicros: 60, costMicros: 1, budgetMicros: 100 });
    // POST /cost keeps working as before: no budget check, it records what was spent.
    expect((await call("POST", sessionPath(id, "/cost"), { body: { micros: 5 } })).json.sessionCostMicros).toBe(45);
  });

  it("a resolve with no session ID reserves nothing and is never refused", async () => {
    const res = await call("POST", "/v1/resolve", { body: { body: { model: "auto", messages: [] }, routed: SIMPLE, reserveMicros: 10 ** 12 } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ sessionId: null, reservedMicros: 0, budgetMicros: null, downgraded: false });
    expect(res.json.reservationId).toBeUndefined();
  });
});

describe("settle", () => {
  it("releases the reservation and adds the actual cost; a repeat changes nothing", async () => {
    const id = await sessionWithBudget(1000);
    const { reservationId } = (await resolve(id, { reserveMicros: 300 })).json;
    const first = await settle(id, reservationId, 120);
    expect(first.json).toEqual({ sessionCostMicros: 120, reservedMicros: 0, costUSD: 0.00012 });
    for (const cost of [120, 999]) {
      const again = await settle(id, reservationId, cost);
      expect(again.status).toBe(200);
      expect(again.json).toEqual(first.json);
    }
    expect(await read(id)).toMatchObject({ sessionCostMicros: 120, reservedMicros: 0, inFlight: 0 });
  });

  it("may settle above the reservation: the session then sits over its budget and takes no reservation", async () => {
    const id = await sessionWithBudget(100);
    const { reservationId } = (await resolve(id, { reserveMicros: 50 })).json;
    expect((await settle(id, reservationId, 130)).json.sessionCostMicros).toBe(130);
    expect((await resolve(id, { reserveMicros: 0 })).json.error.code).toBe("session_budget_exceeded");
  });

  it("answers 404 reservation_not_found for an ID the session never handed out, 404 session_not_found for no session", async () => {
    const id = await sessionWithBudget(1000);
    const other = await sessionWithBudget(1000);
    const { reservationId } = (await resolve(other, { reserveMicros: 5 })).json;
    for (const rid of ["rsv_nope", reservationId]) {
      const res = await settle(id, rid, 1);
      expect(res.status).toBe(404);
      expect(res.json.error.code).toBe("reservation_not_found");
    }
    const gone = await settle(freshId("nobody"), reservationId, 1);
    expect(gone.status).toBe(404);
    expect(gone.json.error.code).toBe("session_not_found");
    expect(await read(other)).toMatchObject({ reservedMicros: 5, sessionCostMicros: 0 });
  });

  it("bad bodies get 400 naming the field and change nothing", async () => {
    const id = await sessionWithBudget(1000);
    const { reservationId } = (await resolve(id, { reserveMicros: 5 })).json;
    const before = await read(id);
    const cases: [unknown, unknown, string][] = [
      [reservationId, -1, "costMicros"],
      [reservationId, 1.5, "costMicros"],
      [reservationId, "10", "costMicros"],
      [reservationId, undefined, "costMicros"],
      ["", 1, "reservationId"],
      [42, 1, "reservationId"],
      ["x".repeat(129), 1, "reservationId"],
      [reservationId, Number.MAX_SAFE_INTEGER + 2, "costMicros"],
    ];
    for (const [rid, cost, field] of cases) {
      const res = await settle(id, rid, cost);
      expect(res.status, JSON.stringify([rid, cost])).toBe(400);
      expect(res.json.error.message).toContain(field);
    }
    expect(await read(id)).toEqual(before);
  });

  it("over RPC: settle(id, reservationId, costMicros), null for no session, reservation_not_found as the error's code", async () => {
    const id = await sessionWithBudget(1000);
    const { reservationId } = (await resolve(id, { reserveMicros: 40 })).json;
    expect(await rpc("settle", id, reservationId, 25)).toEqual({ ok: { sessionCostMicros: 25, reservedMicros: 0, costUSD: 0.000025 } });
    expect(await rpc("settle", freshId("nobody"), reservationId, 25)).toEqual({ ok: null });
    expect((await rpc("settle", id, "rsv_nope", 1)).error).toMatch(/^reservation_not_found: /);
    expect((await rpc("setBudget", id, 10)).ok).toMatchObject({ budgetMicros: 10, sessionCostMicros: 25 });
  });
});

describe("unsettled reservations", () => {
  it("are charged in full once held longer than RESERVATION_TTL_MS, and a later settle replaces the charge with the actual cost", async () => {
    const id = await sessionWithBudget(1000);
    const { reservationId } = (await resolve(id, { reserveMicros: 300 })).json;
    testClock.advance(TTL_MS);
    expect(await read(id)).toMatchObject({ sessionCostMicros: 0, reservedMicros: 300, inFlight: 1 });
    testClock.advance(1);
    expect(await read(id)).toMatchObject({ sessionCostMicros: 300, reservedMicros: 0, inFlight: 0 });
    expect((await settle(id, reservationId, 80)).json).toEqual({ sessionCostMicros: 80, reservedMicros: 0, costUSD: 0.00008 });
    expect((await settle(id, reservationId, 500)).json.sessionCostMicros).toBe(80);
  });

  it("survive eviction between reserve and settle, and between expiry and a late settle", async () => {
    const id = await sessionWithBudget(1000);
    const stub = () => env.SESSIONS.get(env.SESSIONS.idFromName(id));
    const a = (await resolve(id, { reserveMicros: 200 })).json.reservationId;
    const b = (await resolve(id, { reserveMicros: 300 })).json.reservationId;
    await evictDurableObject(stub());
    expect(await read(id)).toMatchObject({ reservedMicros: 500, inFlight: 2 });
    expect((await settle(id, a, 50)).json).toMatchObject({ sessionCostMicros: 50, reservedMicros: 300 });
    await evictDurableObject(stub());
    // 450 + 300 reserved + 300 more would pass 1,000: the settled one is released, the open one still holds.
    expect((await resolve(id, { reserveMicros: 651 })).status).toBe(429);
    testClock.advance(TTL_MS + 1);
    await evictDurableObject(stub());
    expect(await read(id)).toMatchObject({ sessionCostMicros: 350, reservedMicros: 0 });
    await evictDurableObject(stub());
    expect((await settle(id, b, 10)).json.sessionCostMicros).toBe(60);
    expect((await settle(id, a, 10)).json.sessionCostMicros).toBe(60);
  });
});

describe("pause at the budget, and raise", () => {
  it("refuses every reservation at the budget, even of 0, until the budget is raised; null returns to the default", async () => {
    const id = await sessionWithBudget(100);
    const { reservationId } = (await resolve(id, { reserveMicros: 100 })).json;
    expect((await settle(id, reservationId, 100)).json.sessionCostMicros).toBe(100);
    await evictDurableObject(env.SESSIONS.get(env.SESSIONS.idFromName(id)));
    const refused = await resolve(id, { reserveMicros: 0 });
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({
      code: "session_budget_exceeded",
      sessionCostMicros: 100,
      reservedMicros: 0,
      reserveMicros: 0,
      budgetMicros: 100,
    });

    const raised = await setBudget(id, 150);
    expect(raised.status).toBe(200);
    await evictDurableObject(env.SESSIONS.get(env.SESSIONS.idFromName(id)));
    expect(raised.json).toMatchObject({ id, budgetMicros: 150, sessionCostMicros: 100, reservedMicros: 0, inFlight: 0 });
    expect((await resolve(id, { reserveMicros: 50 })).json).toMatchObject({ reservedMicros: 50, budgetMicros: 150 });

    const reset = await setBudget(id, null);
    expect(reset.json.budgetMicros).toBe(configFor(env).budgetMicros);
  });

  it("PUT budget: 404 for no live session, 400 for anything but a non-negative integer or null, and nothing changes", async () => {
    expect((await setBudget(freshId("nobody"), 5)).json.error.code).toBe("session_not_found");
    const id = await sessionWithBudget(100);
    for (const bad of [-1, 1.5, "100", undefined, {}, Number.MAX_SAFE_INTEGER + 1]) {
      const res = await setBudget(id, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.json.error.message).toContain("budgetMicros");
    }
    expect((await read(id)).budgetMicros).toBe(100);
    expect((await call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros: 1 }, token: null })).status).toBe(401);
  });
});

describe("reserveMicros is validated", () => {
  it("answers 400 naming reserveMicros for every malformed form, and records nothing", async () => {
    const id = await sessionWithBudget(1000);
    const before = await read(id);
    const full = { SIMPLE: 1, MEDIUM: 2, COMPLEX: 3, REASONING: 4 };
    for (const bad of [
      -1,
      1.5,
      "30",
      null,
      [],
      { SIMPLE: 1 },
      { ...full, EXTRA: 1 },
      { ...full, MEDIUM: -2 },
      { ...full, COMPLEX: "3" },
      Number.MAX_SAFE_INTEGER + 1,
    ]) {
      const res = await resolve(id, { reserveMicros: bad });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.json.error.message).toContain("reserveMicros");
    }
    expect(await read(id)).toEqual(before);
  });

  it("answers 400, not a wrong total, when a reservation would take the total past a safe integer", async () => {
    const id = freshId("huge");
    await resolve(id);
    await setBudget(id, Number.MAX_SAFE_INTEGER);
    expect((await resolve(id, { reserveMicros: Number.MAX_SAFE_INTEGER - 5 })).status).toBe(200);
    const res = await resolve(id, { costMicros: 6 });
    expect(res.status).toBe(429);
    await call("POST", sessionPath(id, "/cost"), { body: { micros: 5 } });
    const overflow = await call("POST", sessionPath(id, "/cost"), { body: { micros: 1 } });
    expect(overflow.status).toBe(400);
  });
});
