/** Small contract edges: each checked against the docs' wording. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../src/memory";
import { configFor } from "../src/session/config";
import { call } from "./support/http";
import { rpcFailure } from "./support/rpc";
import { testClock } from "./support/worker";

describe("edges where the back ends, RPC and HTTP must agree", () => {
  it("MemoryStore.clearAll counts only live sessions as cleared, as stats count them", async () => {
    const store = new MemoryStore({ config: { ...configFor(env), timeoutMs: 5 }, sweepIntervalMs: 0 });
    await store.setSession("gone", "m", "SIMPLE");
    testClock.advance(10);
    expect(await store.getSession("other")).toBeNull();
    expect((await store.getStats()).count).toBe(0);
    // docs: `cleared` is "sessions cleared by this call"; an expired entry is no live session (the objects' alarm has removed it).
    expect(await store.clearAll()).toEqual({ cleared: 0, pending: 0 });
    store.close();
  });

  it("getStats over RPC with a non-object says what is wrong in the API's words, not zod's defaults", async () => {
    const failure = await rpcFailure((exports.SessionAdmin as any).getStats([]));
    expect(failure).toMatch(/^invalid_request: /);
    expect(failure).not.toContain("Invalid input: expected object");
  });

  it("a query parameter named id is not a query parameter of a session route: ignored, like other unknown ones", async () => {
    // docs/http-api.md: "Query parameters may appear once each ...; unknown ones are ignored."
    const res = await call("GET", "/v1/sessions/review-no-such-session?id=a&id=b");
    expect([res.status, res.json?.error?.code]).toEqual([404, "session_not_found"]);
  });
});
