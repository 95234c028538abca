/**
 * Review of issue 14 (budgets that hold under concurrency), in the main project:
 * strict budgets, SESSION_BUDGET_MICROS 1,000 USD, no in-flight cap or rate set,
 * RESERVATION_TTL_MS at its default. Expected figures come from the contract
 * (docs/http-api.md "Budgets", "Entries and costs", "Errors"; docs/configuration.md).
 *
 * Tests marked DEFECT fail on the code they were written against; the others
 * confirm a property the existing tests do not cover.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createSessionClient, SessionApiError } from "../src/client";
import { MemoryStore } from "../src/memory";
import { facadeFor, freshId } from "./support/back-ends";
import { ADMIN_TOKEN, API_TOKEN, call, sessionPath } from "./support/http";

const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const PRICES = { SIMPLE: 10, MEDIUM: 40, COMPLEX: 90, REASONING: 200 };

const message = () => [{ role: "user", content: `hello ${crypto.randomUUID()}` }];
const resolveBody = (id: string, extra: Record<string, unknown> = {}) => ({
  sessionId: id,
  body: { model: "auto", messages: message() },
  routed: SIMPLE,
  ...extra,
});
const resolve = (id: string, extra: Record<string, unknown> = {}) => call("POST", "/v1/resolve", { body: resolveBody(id, extra) });
const settle = (id: string, reservationId: unknown, costMicros: unknown) => call("POST", sessionPath(id, "/settle"), { body: { reservationId, costMicros } });
const setBudget = (id: string, budgetMicros: unknown) => call("PUT", sessionPath(id, "/budget"), { body: { budgetMicros } });
const read = async (id: string) => (await call("GET", sessionPath(id))).json;

async function sessionWithBudget(budget: number): Promise<string> {
  const id = freshId("review14");
  expect((await resolve(id)).status).toBe(200);
  expect((await setBudget(id, budget)).status).toBe(200);
  return id;
}

describe("review 14: the bounds on reservations", () => {
  it("holds: 257 parallel reservations with no SESSION_MAX_IN_FLIGHT admit exactly 256; the 257th is 429 session_concurrency_limited, and a settle makes room", async () => {
    const id = await sessionWithBudget(1_000_000);
    const answers = await Promise.all(Array.from({ length: 257 }, () => resolve(id, { reserveMicros: 1 })));
    const admitted = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    expect(admitted.length).toBe(256);
    expect(refused.map((r) => [r.status, r.json.error.code, r.json.error.inFlight, r.json.error.maxInFlight])).toEqual([
      [429, "session_concurrency_limited", 256, 256],
    ]);
    expect(await read(id)).toMatchObject({ inFlight: 256, reservedMicros: 256, requestCount: 257 });
    expect((await settle(id, admitted[0]!.json.reservationId, 1)).status).toBe(200);
    expect((await resolve(id, { reserveMicros: 1 })).status).toBe(200);
    expect((await resolve(id, { reserveMicros: 1 })).json.error.code).toBe("session_concurrency_limited");
  });

  it("holds: a session remembers its last 256 closed reservations: the 257th-last answers 404 reservation_not_found, the 256th-last its totals unchanged", async () => {
    const id = await sessionWithBudget(1_000_000);
    const first = await Promise.all(Array.from({ length: 200 }, () => resolve(id, { reserveMicros: 5 })));
    const ids: string[] = first.map((a) => a.json.reservationId);
    for (const rid of ids) expect((await settle(id, rid, 1)).status).toBe(200);
    const more = await Promise.all(Array.from({ length: 57 }, () => resolve(id, { reserveMicros: 5 })));
    for (const a of more) {
      ids.push(a.json.reservationId);
      expect((await settle(id, a.json.reservationId, 1)).status).toBe(200);
    }
    expect(new Set(ids).size).toBe(257);
    const before = await read(id);
    expect(before).toMatchObject({ sessionCostMicros: 257, reservedMicros: 0, inFlight: 0 });
    const forgotten = await settle(id, ids[0], 100);
    expect(forgotten.status).toBe(404);
    expect(forgotten.json.error).toMatchObject({ code: "reservation_not_found", reservationId: ids[0] });
    expect((await settle(id, ids[1], 100)).json).toEqual({ sessionCostMicros: 257, reservedMicros: 0, costUSD: 0.000257 });
    expect(await read(id)).toEqual(before);
  });
});

describe("review 14: a reservation belongs to one incarnation of one session of one tenant", () => {
  it("holds: after clear and re-creation under the same ID, the old reservation answers 404 and charges nothing to the new session", async () => {
    const id = await sessionWithBudget(1000);
    const { reservationId } = (await resolve(id, { reserveMicros: 300 })).json;
    expect((await call("DELETE", sessionPath(id))).status).toBe(204);
    expect((await settle(id, reservationId, 50)).json.error.code).toBe("session_not_found");
    expect((await resolve(id, { reserveMicros: 100 })).status).toBe(200);
    const late = await settle(id, reservationId, 50);
    expect([late.status, late.json.error.code]).toEqual([404, "reservation_not_found"]);
    // The new incarnation starts from the default budget, with only its own reservation.
    expect(await read(id)).toMatchObject({ sessionCostMicros: 0, reservedMicros: 100, inFlight: 1, budgetMicros: 1_000_000_000 });
  });

  it("holds: tenant B cannot settle tenant A's reservation through a session of the same ID", async () => {
    const scoped = facadeFor({ ...env, SESSION_NAMESPACE_HEADER: "x-tenant-id" });
    const [a, b] = [scoped.forNamespace(`a-${crypto.randomUUID().slice(0, 8)}`), scoped.forNamespace(`b-${crypto.randomUUID().slice(0, 8)}`)];
    const id = freshId("tenant-rsv");
    const held = await a.resolve(resolveBody(id, { reserveMicros: 70 }) as never);
    expect(held.reservationId).toMatch(/^rsv_/);
    expect(await b.settle(id, held.reservationId!, 1)).toBeNull();
    await b.resolve(resolveBody(id) as never);
    await expect(b.settle(id, held.reservationId!, 1)).rejects.toMatchObject({ code: "reservation_not_found" });
    expect(await a.getSession(id)).toMatchObject({ reservedMicros: 70, inFlight: 1, sessionCostMicros: 0 });
    expect(await b.getSession(id)).toMatchObject({ reservedMicros: 0, sessionCostMicros: 0 });
  });
});

describe("review 14: what a reservation holds", () => {
  it("holds: a per-tier reservation on the request that escalates holds the escalated tier's amount (strict)", async () => {
    const id = freshId("escalate");
    const same = [{ role: "user", content: `stuck ${crypto.randomUUID()}` }];
    const send = (extra: Record<string, unknown> = {}) =>
      call("POST", "/v1/resolve", { body: { sessionId: id, body: { model: "auto", messages: same }, routed: SIMPLE, ...extra } });
    await send();
    await send();
    const third = await send({ reserveMicros: PRICES });
    expect(third.json).toMatchObject({ escalated: true, tier: "MEDIUM", reservedMicros: PRICES.MEDIUM, downgraded: false });
  });

  // DEFECT (minor): admit() adds costMicros to the 429's details only when it is above 0
  // (`if (cost > 0)`), while the contract lists it "when given" (http-api.md, Errors and Budgets).
  // Proposed fix: pass whether costMicros was given (e.g. `cost: number | undefined`) and test `!== undefined`.
  it("DEFECT: a 429 session_budget_exceeded for a resolve that gave costMicros: 0 carries costMicros in its details", async () => {
    const id = await sessionWithBudget(100);
    const { reservationId } = (await resolve(id, { reserveMicros: 50 })).json;
    // Settled above the budget: every resolve that checks the budget is now refused.
    expect((await settle(id, reservationId, 130)).status).toBe(200);
    const res = await resolve(id, { costMicros: 0 });
    expect(res.status).toBe(429);
    expect(res.json.error).toMatchObject({ code: "session_budget_exceeded", sessionCostMicros: 130, reservedMicros: 0, budgetMicros: 100 });
    expect(res.json.error).toHaveProperty("costMicros", 0);
  });
});

describe("review 14: bad input is 4xx and changes nothing", () => {
  it("holds: raw JSON numbers out of range (1e21, 1e400, 2^53, -1, 0.5, exponent forms) and junk in settle, PUT budget and reserveMicros", async () => {
    const id = await sessionWithBudget(1000);
    const { reservationId } = (await resolve(id, { reserveMicros: 5 })).json;
    const before = await read(id);
    const numbers = ["1e21", "1e400", "-1e400", "9007199254740992", "-1", "0.5", "1e-7", '"5"', "true", "[]", "{}", '{"a":[1]}', "[[[[1]]]]"];
    const raw = (method: string, path: string, text: string) =>
      exports.default.fetch(new Request(`http://session.test${path}`, { method, headers: { authorization: `Bearer ${API_TOKEN}` }, body: text }));
    for (const n of numbers) {
      const cases: [string, string, string][] = [
        ["POST", sessionPath(id, "/settle"), `{"reservationId":"${reservationId}","costMicros":${n}}`],
        ["PUT", sessionPath(id, "/budget"), `{"budgetMicros":${n}}`],
        ["POST", "/v1/resolve", JSON.stringify(resolveBody(id)).replace(/}$/, `,"reserveMicros":${n}}`)],
        ["POST", "/v1/resolve", JSON.stringify(resolveBody(id)).replace(/}$/, `,"reserveMicros":{"SIMPLE":${n},"MEDIUM":1,"COMPLEX":1,"REASONING":1}}`)],
        ["POST", "/v1/resolve", JSON.stringify(resolveBody(id)).replace(/}$/, `,"costMicros":${n}}`)],
      ];
      for (const [method, path, text] of cases) {
        const res = await raw(method, path, text);
        expect(res.status, `${method} ${path} ${text.slice(-80)}`).toBe(400);
        expect(((await res.json()) as any).error.code).toBe("invalid_request");
      }
    }
    for (const text of ['{"reservationId":["x"],"costMicros":1}', '{"reservationId":null,"costMicros":1}', "[]", "null", '"x"']) {
      const res = await raw("POST", sessionPath(id, "/settle"), text);
      expect(res.status, text).toBe(400);
    }
    for (const text of ["{}", '{"budget":5}', "[]", "null", "5"]) expect((await raw("PUT", sessionPath(id, "/budget"), text)).status, text).toBe(400);
    expect(await read(id)).toEqual(before);
  });
});

describe("review 14: OpenAPI and the typed client", () => {
  it("holds: GET /openapi.json describes settle and PUT budget, with their bodies and error codes, and resolve's three 429 codes with Retry-After", async () => {
    const doc = (await call("GET", "/openapi.json", { token: null })).json;
    const settleOp = doc.paths["/v1/sessions/{id}/settle"].post;
    expect(settleOp.operationId).toBe("settle");
    const settleBody = settleOp.requestBody.content["application/json"].schema;
    expect(settleBody.required.sort()).toEqual(["costMicros", "reservationId"]);
    expect(settleBody.properties.reservationId).toMatchObject({ type: "string", minLength: 1, maxLength: 128 });
    expect(settleBody.properties.costMicros).toMatchObject({ type: "integer", minimum: 0 });
    expect(settleOp.responses["404"].description).toContain("reservation_not_found");
    expect(settleOp.responses["404"].description).toContain("session_not_found");
    expect(Object.keys(settleOp.responses["200"].content["application/json"].schema.properties).sort()).toEqual([
      "costUSD",
      "reservedMicros",
      "sessionCostMicros",
    ]);
    const budgetOp = doc.paths["/v1/sessions/{id}/budget"].put;
    expect(budgetOp.operationId).toBe("setBudget");
    expect(budgetOp.requestBody.content["application/json"].schema.required).toEqual(["budgetMicros"]);
    expect(JSON.stringify(budgetOp.requestBody.content["application/json"].schema.properties.budgetMicros)).toContain("null");
    const resolveOp = doc.paths["/v1/resolve"].post;
    for (const code of ["session_budget_exceeded", "session_concurrency_limited", "session_rate_limited"])
      expect(resolveOp.responses["429"].description).toContain(code);
    expect(resolveOp.responses["429"].headers).toHaveProperty("Retry-After");
    const props = resolveOp.responses["200"].content["application/json"].schema.properties;
    for (const field of ["reservedMicros", "budgetMicros", "reservationId", "downgraded"]) expect(props).toHaveProperty(field);
  });

  it("holds: the typed client's settle and setBudget answer as RPC does: null for no session, SessionApiError for reservation_not_found", async () => {
    const client = createSessionClient({
      baseUrl: "http://session.test",
      token: API_TOKEN,
      adminToken: ADMIN_TOKEN,
      fetch: (input, init) => exports.default.fetch(new Request(input as RequestInfo, init)),
    });
    const id = freshId("client");
    await client.resolve(resolveBody(id) as never);
    expect(await client.setBudget(id, 500)).toMatchObject({ budgetMicros: 500 });
    const held = await client.resolve(resolveBody(id, { reserveMicros: 200 }) as never);
    expect(await client.settle(id, held.reservationId!, 120)).toEqual({ sessionCostMicros: 120, reservedMicros: 0, costUSD: 0.00012 });
    const err = await client.settle(id, "rsv_never", 1).catch((e) => e);
    expect(err).toBeInstanceOf(SessionApiError);
    expect([err.status, err.code, err.details.reservationId]).toEqual([404, "reservation_not_found", "rsv_never"]);
    expect(await client.settle(freshId("nobody"), held.reservationId!, 1)).toBeNull();
    expect(await client.setBudget(freshId("nobody"), 1)).toBeNull();
    expect(await client.setBudget(id, null)).toMatchObject({ budgetMicros: 1_000_000_000 });
  });

  it("holds: MemoryStore answers the same bounds and settles as the objects (257th open reservation, repeat settle, foreign ID)", async () => {
    const store = new MemoryStore({ config: { budgetMicros: 1_000_000 }, sweepIntervalMs: 0 });
    const id = freshId("memory");
    const held = [];
    for (let i = 0; i < 256; i++) held.push((await store.resolve(resolveBody(id, { reserveMicros: 1 }) as never)).reservationId!);
    await expect(store.resolve(resolveBody(id, { reserveMicros: 1 }) as never)).rejects.toMatchObject({ code: "session_concurrency_limited" });
    expect(await store.settle(id, held[0]!, 3)).toEqual({ sessionCostMicros: 3, reservedMicros: 255, costUSD: 0.000003 });
    expect(await store.settle(id, held[0]!, 9)).toEqual({ sessionCostMicros: 3, reservedMicros: 255, costUSD: 0.000003 });
    await expect(store.settle(id, "rsv_foreign", 1)).rejects.toMatchObject({ code: "reservation_not_found" });
    expect(await store.settle(freshId("nobody"), held[1]!, 1)).toBeNull();
    store.close();
  });
});

describe("review 14: SESSION_RATE_PER_MIN admits a full burst for every N", () => {
  // DEFECT: takeToken (src/session/budget.ts) keeps the bucket as a float instant: interval = 60000 / N is
  // added N times to an epoch-millisecond instant (~1.8e12, where a double's step is 2^-12 ms), then
  // compared with `over > 0` against N * interval. The rounding leaves `over` a fraction of a millisecond
  // above 0 for about half of all N (9, 14, 17, 19, 26, …) at any real clock, so the N-th resolve of a burst
  // answers 429 session_rate_limited (Retry-After 1). Contract: "each session has a bucket of N resolves".
  // Shown on the MemoryStore, which runs the same rule as the objects (the objects here have no rate set).
  // Proposed fix: compare with a tolerance below the clock's 1 ms resolution (`over > 0.5`), or keep the
  // instant in integer units, e.g. rateAt rounded to whole ms (Math.ceil) with the check done in integer ms.
  it("DEFECT: a burst of N resolves at one instant is admitted in full, for N from 1 to 60", async () => {
    const short: string[] = [];
    for (let n = 1; n <= 60; n++) {
      const store = new MemoryStore({ config: { ratePerMin: n }, sweepIntervalMs: 0 });
      const id = freshId("burst");
      let admitted = 0;
      for (let i = 0; i < n; i++) {
        try {
          await store.resolve(resolveBody(id) as never);
          admitted++;
        } catch (err) {
          expect((err as { code?: string }).code).toBe("session_rate_limited");
        }
      }
      if (admitted !== n) short.push(`${n}: ${admitted}`);
      await expect(store.resolve(resolveBody(id) as never)).rejects.toMatchObject({ code: "session_rate_limited" });
      store.close();
    }
    expect(short).toEqual([]);
  });
});
