/**
 * GET /openapi.json against what the routes do (docs/http-api.md).
 */
import { describe, expect, it } from "vitest";
import { call } from "./support/http";

async function doc(): Promise<any> {
  return (await call("GET", "/openapi.json", { token: null })).json;
}

describe("the OpenAPI document describes what the routes do", () => {
  it("touch and escalate read no body, so no request body is required (docs: `touch` and `escalate` read no body)", async () => {
    const paths = (await doc()).paths;
    // The routes take any body, even invalid JSON:
    expect((await call("POST", "/v1/sessions/review-x/touch", { rawBody: "{not json" })).status).toBe(404);
    for (const p of ["/v1/sessions/{id}/touch", "/v1/sessions/{id}/escalate"]) {
      expect(paths[p].post.requestBody?.required ?? false).toBe(false);
      expect(paths[p].post.responses[413]).toBeUndefined();
    }
  });

  it("lists only error codes a route can answer", async () => {
    const paths = (await doc()).paths;
    // resolve answers without a session when sessions are disabled (docs/http-api.md Resolve step 1).
    expect(paths["/v1/resolve"].post.responses[404]).toBeUndefined();
    // set creates; clear is 204 "also when there was no session".
    expect(paths["/v1/sessions/{id}"].put.responses[404].description).not.toContain("session_not_found");
    expect(paths["/v1/sessions/{id}"].delete.responses[404].description).not.toContain("session_not_found");
  });

  it("documents the x-session-pinned header of resolve", async () => {
    const ok = (await doc()).paths["/v1/resolve"].post.responses[200];
    expect(Object.keys(ok.headers ?? {}).map((h) => h.toLowerCase())).toContain("x-session-pinned");
  });
});
