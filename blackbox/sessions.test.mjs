/**
 * Issue 2's HTTP contract, checked from outside against `wrangler dev`,
 * exactly as written. Run by `npm run test:blackbox`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { call, freshId, sessionPath, sleep } from "./client.mjs";

/**
 * The server's SESSION_TIMEOUT_MS (package.json test:blackbox). Long enough that
 * the other tests' sessions cannot expire between two calls on a loaded 2-core
 * machine, short enough for the expiry test to wait it out.
 */
const TIMEOUT_MS = Number(process.env.BLACKBOX_TIMEOUT_MS ?? 10_000);
/** Clear of the deadline on the side each assertion needs, past the clock's millisecond granularity. */
const MARGIN_MS = 1000;
/** Expiry runs repeat this often at most when the machine stalls so long that a run proves nothing. */
const EXPIRY_ATTEMPTS = 3;

function assertError(res, status, code) {
  assert.equal(res.status, status, JSON.stringify(res.json));
  assert.equal(res.json.error.code, code);
  assert.equal(typeof res.json.error.message, "string");
}

describe("session service over HTTP", () => {
  it("GET /health answers without auth", async () => {
    const res = await call("GET", "/health", { token: null });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { ok: true });
  });

  it("auth: 401 without or with a wrong token", async () => {
    assertError(await call("GET", sessionPath("x"), { token: null }), 401, "unauthorized");
    assertError(await call("GET", sessionPath("x"), { token: "wrong" }), 401, "unauthorized");
  });

  it("POST /v1/session-id and POST /v1/hash give the reference vectors", async () => {
    assert.deepEqual((await call("POST", "/v1/session-id", { body: { firstUserMessage: "hello" } })).json, {
      sessionId: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    });
    assert.deepEqual((await call("POST", "/v1/hash", { body: { content: "  hello   world\n\tfoo  " } })).json, { hash: "43e514827182845c1c519a921b089ef5" });
    assert.deepEqual((await call("POST", "/v1/hash", { body: { content: "fix the bug", toolNames: ["write_file", "read_file"] } })).json, {
      hash: "091f622a4f22136f896f0b310357249e",
    });
  });

  it("the session lifecycle: PUT, GET, touch, hashes, escalate, cost, DELETE", async () => {
    const id = freshId("bb");
    assertError(await call("GET", sessionPath(id)), 404, "session_not_found");
    const put = await call("PUT", sessionPath(id), { body: { model: "gemini-2.5-flash", tier: "SIMPLE" } });
    assert.equal(put.status, 200);
    assert.equal(put.json.id, id);
    assert.equal(put.json.requestCount, 1);
    assert.equal(put.json.createdAt, put.json.lastUsedAt);
    assert.deepEqual((await call("GET", sessionPath(id))).json, put.json);
    assert.equal((await call("POST", sessionPath(id, "/touch"))).json.requestCount, 2);
    const strikes = [];
    for (const hash of ["a", "a", "a", "b", "b"]) strikes.push((await call("POST", sessionPath(id, "/hashes"), { body: { hash } })).json.strikes);
    assert.deepEqual(strikes, [0, 1, 2, 2, 3]);
    const esc = await call("POST", sessionPath(id, "/escalate"));
    assert.equal(esc.json.tier, "MEDIUM");
    assert.equal(esc.json.model, "kimi-k2.5");
    assert.equal(esc.json.escalated, true);
    assert.equal(esc.json.strikes, 3);
    assert.deepEqual((await call("POST", sessionPath(id, "/cost"), { body: { micros: 1200 } })).json, { sessionCostMicros: 1200, costUSD: 0.0012 });
    assert.deepEqual((await call("GET", sessionPath(id, "/cost"))).json, { sessionCostMicros: 1200, costUSD: 0.0012 });
    assert.equal((await call("DELETE", sessionPath(id))).status, 204);
    assert.equal((await call("DELETE", sessionPath(id))).status, 204);
    assertError(await call("GET", sessionPath(id)), 404, "session_not_found");
  });

  it("unknown sessions: 404 on touch, hashes, escalate, cost", async () => {
    const id = freshId("bb-missing");
    assertError(await call("POST", sessionPath(id, "/touch")), 404, "session_not_found");
    assertError(await call("POST", sessionPath(id, "/hashes"), { body: { hash: "h" } }), 404, "session_not_found");
    assertError(await call("POST", sessionPath(id, "/escalate")), 404, "session_not_found");
    assertError(await call("POST", sessionPath(id, "/cost"), { body: { micros: 1 } }), 404, "session_not_found");
    assertError(await call("GET", sessionPath(id, "/cost")), 404, "session_not_found");
  });

  it("an explicit pin survives escalation", async () => {
    const id = freshId("bb-pin");
    await call("PUT", sessionPath(id), { body: { model: "my-model", tier: "", userExplicit: true } });
    const esc = await call("POST", sessionPath(id, "/escalate"));
    assert.equal(esc.json.model, "my-model");
    assert.equal(esc.json.escalated, false);
  });

  it("errors: invalid_json, invalid_request, invalid_session_id, payload_too_large, 404, 405", async () => {
    const id = freshId("bb-err");
    assertError(await call("PUT", sessionPath(id), { rawBody: "{nope" }), 400, "invalid_json");
    const missing = await call("PUT", sessionPath(id), { body: { tier: "SIMPLE" } });
    assertError(missing, 400, "invalid_request");
    assert.match(missing.json.error.message, /model/);
    assertError(await call("PUT", sessionPath(id), { body: { model: "m", tier: "HUGE" } }), 400, "invalid_request");
    assertError(await call("GET", sessionPath("x".repeat(257))), 400, "invalid_session_id");
    assertError(await call("GET", "/v1/sessions/a%01b"), 400, "invalid_session_id");
    assertError(
      await call("PUT", sessionPath(id), { rawBody: JSON.stringify({ model: "m", tier: "SIMPLE", pad: "x".repeat(70_000) }) }),
      413,
      "payload_too_large",
    );
    assertError(await call("GET", "/v1/unknown"), 404, "not_found");
    assertError(await call("POST", sessionPath(id)), 405, "method_not_allowed");
    // None of the rejected requests created the session.
    assertError(await call("GET", sessionPath(id)), 404, "session_not_found");
  });

  it(`expires a session after SESSION_TIMEOUT_MS idle (server runs with ${TIMEOUT_MS} ms)`, { timeout: EXPIRY_ATTEMPTS * 4 * TIMEOUT_MS }, async () => {
    // The server and this process read the same system clock, so the server's
    // createdAt and lastUsedAt place each request against its deadline. Only an
    // answer that arrives after the touch's deadline proves nothing; then the run repeats.
    const until = (t) => sleep(Math.max(0, t - Date.now()));
    for (let attempt = 1; attempt <= EXPIRY_ATTEMPTS; attempt++) {
      const id = freshId("bb-expire");
      const put = await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } });
      assert.equal(put.status, 200);
      await until(put.json.createdAt + TIMEOUT_MS / 2);
      const touch = await call("POST", sessionPath(id, "/touch"));
      if (touch.status === 404 && Date.now() >= put.json.createdAt + TIMEOUT_MS) continue;
      assert.equal(touch.status, 200);
      const { lastUsedAt } = touch.json;

      // Past the creation deadline, well before the touch's: the touch kept it alive.
      await until(put.json.createdAt + TIMEOUT_MS + MARGIN_MS);
      const alive = await call("GET", sessionPath(id));
      if (Date.now() >= lastUsedAt + TIMEOUT_MS) continue;
      assert.equal(alive.status, 200, JSON.stringify(alive.json));
      assert.equal(alive.json.lastUsedAt, lastUsedAt);

      // Past the touch's deadline: gone, whether the alarm or this read removed it.
      await until(lastUsedAt + TIMEOUT_MS + MARGIN_MS);
      assertError(await call("GET", sessionPath(id)), 404, "session_not_found");
      return;
    }
    assert.fail(`the machine stalled past the deadline in all ${EXPIRY_ATTEMPTS} runs`);
  });
});
