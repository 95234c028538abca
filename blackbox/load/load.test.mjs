/** Load on loopback: 1,000 concurrent resolves on one session, and on 1,000 different sessions. Counts must be exact. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ADMIN_TOKEN, call, eventually, freshId, sessionPath } from "../client.mjs";

const N = Number(process.env.LOAD_REQUESTS ?? 1000);
const COST = 7;

function resolveBody(sessionId, i) {
  return {
    sessionId,
    body: { model: "auto", messages: [{ role: "user", content: `turn ${i}` }] },
    routed: { model: "kimi-k2.5", tier: "MEDIUM" },
    costMicros: COST,
  };
}

describe(`load: ${N} concurrent resolves`, () => {
  it("on one session: every request answered, requestCount and cost exact", async () => {
    const id = freshId("load-one");
    const results = await Promise.all(Array.from({ length: N }, (_, i) => call("POST", "/v1/resolve", { body: resolveBody(id, i) })));
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
    assert.equal(results.filter((r) => r.json.pinned === false).length, 1, "exactly one request created the session");
    const session = (await call("GET", sessionPath(id))).json;
    assert.equal(session.requestCount, N);
    assert.equal(session.sessionCostMicros, N * COST);
    assert.deepEqual(
      results.map((r) => r.json.requestCount).sort((a, b) => a - b),
      Array.from({ length: N }, (_, i) => i + 1),
    );
  });

  it("on as many different sessions: all created, each counted once, all registered", async () => {
    const ids = Array.from({ length: N }, () => freshId("load-many"));
    const results = await Promise.all(ids.map((id, i) => call("POST", "/v1/resolve", { body: resolveBody(id, i) })));
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
    assert.ok(results.every((r) => r.json.requestCount === 1 && r.json.sessionCostMicros === COST));
    // Each creation reaches its shard just after its answer: count this test's rows once they have landed.
    const mine = new Set(ids);
    await eventually(async () => {
      const { json } = await call("GET", "/v1/stats?limit=10000", { token: ADMIN_TOKEN });
      assert.equal(json.nextCursor, undefined, "one page holds every row");
      assert.equal(json.sessions.filter((s) => mine.has(s.sessionId)).length, N);
    }, 60_000);
  });
});
