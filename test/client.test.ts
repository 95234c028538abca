/** The typed HTTP client against the real front Worker. */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createSessionClient, SessionApiError } from "../src/client";
import { ADMIN_TOKEN, API_TOKEN } from "./support/http";
import { freshId } from "./support/back-ends";

const viaWorker: typeof fetch = (input, init) => exports.default.fetch(new Request(input as RequestInfo, init));
const client = createSessionClient({ baseUrl: "http://sessions.test/", token: API_TOKEN, adminToken: ADMIN_TOKEN, fetch: viaWorker });

describe("createSessionClient", () => {
  it("covers every route with typed results", async () => {
    const id = freshId("client");
    expect(await client.health()).toEqual({ ok: true });
    // Starts from no sessions, so the admin counts below are exact.
    await client.clearAll();
    expect(await client.deriveSessionId("hello")).toBe("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    expect(await client.hashRequestContent("fix the bug", ["write_file", "read_file"])).toBe("091f622a4f22136f896f0b310357249e");
    expect(await client.getSession(id)).toBeNull();
    expect((await client.setSession(id, "gemini-2.5-flash", "SIMPLE")).requestCount).toBe(1);
    expect((await client.touchSession(id))!.requestCount).toBe(2);
    expect(await client.recordRequestHash(id, "h")).toBe(0);
    expect((await client.escalateSession(id))!.tier).toBe("MEDIUM");
    expect(await client.addSessionCost(id, 7)).toEqual({ sessionCostMicros: 7, costUSD: 0.000007 });
    expect(await client.getSessionCost(id)).toEqual({ sessionCostMicros: 7, costUSD: 0.000007 });
    const decision = await client.resolve({
      sessionId: id,
      body: { model: "auto", messages: [{ role: "user", content: "x" }] },
      routed: { model: "m", tier: "SIMPLE" },
    });
    expect(decision).toMatchObject({ sessionId: id, pinned: true, model: "kimi-k2.5" });
    expect(await client.getStats({ limit: 1 })).toMatchObject({ count: 1, sessions: [{ id: `${id.slice(0, 8)}...`, model: "kimi-k2.5" }] });
    await client.clearSession(id);
    expect(await client.getSession(id)).toBeNull();
    const [a, b] = [freshId("client-a"), freshId("client-b")];
    await client.setSession(a, "m", "SIMPLE");
    await client.setSession(b, "m", "SIMPLE");
    expect(await client.clearAll()).toEqual({ cleared: 2, pending: 0 });
    expect([await client.getSession(a), await client.getSession(b)]).toEqual([null, null]);
    expect((await client.getStats()).count).toBe(0);
  });

  it("throws SessionApiError with status, code and details", async () => {
    const err = await client.setSession("", "m", "SIMPLE").catch((e) => e);
    expect(err).toBeInstanceOf(SessionApiError);
    expect(err).toMatchObject({ status: 400, code: "invalid_session_id" });
    expect(await client.getSession("x".repeat(300)).catch((e) => e.code)).toBe("invalid_session_id");
    const bad = await client.setSession("x", "", "SIMPLE").catch((e) => e);
    expect(bad).toMatchObject({ status: 400, code: "invalid_request", details: { field: "model" } });
    // A per-session call on no live session answers as RPC does, not with a 404 error.
    expect(await client.touchSession(freshId("none"))).toBeNull();
    expect(await client.recordRequestHash(freshId("none"), "h")).toBe(0);
    const noAdmin = createSessionClient({ baseUrl: "http://sessions.test", token: API_TOKEN, fetch: viaWorker });
    expect(await noAdmin.getStats().catch((e) => e.code)).toBe("unauthorized");
    const wrongToken = createSessionClient({ baseUrl: "http://sessions.test", token: "nope", adminToken: API_TOKEN, fetch: viaWorker });
    expect(await wrongToken.getSession("x").catch((e) => [e.status, e.code])).toEqual([401, "unauthorized"]);
    expect(await wrongToken.getStats().catch((e) => [e.status, e.code])).toEqual([403, "forbidden"]);
  });
});
