/**
 * Paths exactly as sent: node:http puts the request target on the wire as
 * given, so no client folds "." or ".." segments; the runtime folds them before
 * the Worker runs (`/v1/sessions/%2e` arrives as `/v1/sessions/`). Whatever the
 * folding, a dot path never clears everything or succeeds.
 * Run by `npm run test:blackbox`.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { describe, it } from "node:test";
import { ADMIN_TOKEN, API_TOKEN, BASE_URL, call, freshId, sessionPath } from "./client.mjs";

function raw(method, path, token) {
  const url = new URL(BASE_URL);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode, json: text ? JSON.parse(text) : undefined, cacheControl: res.headers["cache-control"] }));
    });
    req.on("error", reject);
    req.end();
  });
}

function assertError(res, status, code, path) {
  assert.equal(res.status, status, `${path}: ${JSON.stringify(res.json)}`);
  assert.equal(res.json.error.code, code, path);
  assert.equal(res.cacheControl, "no-store", path);
}

describe("raw paths", () => {
  it("DELETE /v1/sessions/%2e and friends with the admin token never clear everything", async () => {
    const id = freshId("bystander");
    assert.equal((await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } })).status, 200);
    for (const path of ["/v1/sessions/%2e", "/v1/sessions/.", "/v1/sessions/%2E", "/v1/sessions/", "/v1/sessions//", "/v1/sessions/x/%2e%2e/"]) {
      assertError(await raw("DELETE", path, ADMIN_TOKEN), 400, "invalid_session_id", path);
    }
    for (const path of ["/v1/sessions/%2e%2e", "/v1/sessions/..", "/v1/stats/"]) {
      assertError(await raw("DELETE", path, ADMIN_TOKEN), 404, "not_found", path);
    }
    assert.equal((await call("GET", sessionPath(id))).status, 200);
  });

  it("an empty session ID before a sub-route is 400, never another route", async () => {
    for (const path of ["/v1/sessions//touch", "/v1/sessions//escalate"]) {
      assertError(await raw("POST", path, API_TOKEN), 400, "invalid_session_id", path);
    }
  });
});
