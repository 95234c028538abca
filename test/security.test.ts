/** Security properties from SECURITY.md that a test can hold. */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { constantTimeEqual } from "../src/http/auth";
import type { SessionObject } from "../src/objects/session-object";
import { ADMIN_TOKEN, API_TOKEN, call, sessionPath } from "./support/http";
import { freshId } from "./support/ports";

afterEach(() => vi.restoreAllMocks());

describe("tokens", () => {
  it("compares tokens correctly whatever their lengths", async () => {
    expect(await constantTimeEqual("abc", "abc")).toBe(true);
    expect(await constantTimeEqual("abc", "abd")).toBe(false);
    expect(await constantTimeEqual("abc", "abcd")).toBe(false);
    expect(await constantTimeEqual("", "x")).toBe(false);
  });

  it("never logs a token, on success, on refusal or on an internal error", async () => {
    const logged: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(" ")));
    }
    const id = freshId("log");
    const wrong = "wrong-secret-token-1234";
    await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } });
    await call("GET", sessionPath(id), { token: wrong });
    await call("GET", "/v1/stats", { token: API_TOKEN });
    await call("GET", "/v1/stats", { token: ADMIN_TOKEN });
    await runInDurableObject(env.SESSIONS.get(env.SESSIONS.idFromName(id)), (_o: SessionObject, state) => {
      vi.spyOn(state.storage.kv, "put").mockImplementationOnce(() => {
        throw new Error("injected failure");
      });
    });
    expect((await call("POST", sessionPath(id, "/touch"))).status).toBe(500);
    expect(logged.some((line) => line.includes("injected failure"))).toBe(true);
    for (const secret of [API_TOKEN, ADMIN_TOKEN, wrong]) {
      expect(logged.filter((line) => line.includes(secret))).toEqual([]);
    }
  });
});

describe("CORS", () => {
  it("is off by default: no Access-Control headers, preflights are refused", async () => {
    const preflight = await exports.default.fetch(
      new Request("http://x/v1/resolve", { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } }),
    );
    expect(preflight.status).toBe(405);
    const res = await exports.default.fetch(new Request("http://x/health", { headers: { origin: "https://evil.example" } }));
    for (const r of [preflight, res]) {
      expect([...r.headers.keys()].filter((h) => h.startsWith("access-control-"))).toEqual([]);
    }
  });
});

describe("stats never reveal a full session ID", () => {
  it("shows at most eight characters, and cursors are opaque", async () => {
    const ids = Array.from({ length: 5 }, () => freshId("secret-conversation"));
    for (const id of ids) await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } });
    const page = await call("GET", "/v1/stats?limit=2", { token: ADMIN_TOKEN });
    const text = JSON.stringify(page.json);
    for (const id of ids) {
      expect(text).not.toContain(id);
      expect(text).not.toContain(id.slice(8));
    }
    expect(page.json.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
  });
});

describe("admin operations over RPC", () => {
  async function via(worker: Fetcher, method: string, ...args: unknown[]) {
    const res = await worker.fetch("http://worker/", { method: "POST", body: JSON.stringify({ method, args }) });
    return (await res.json()) as { ok?: any; error?: string };
  }

  it("a gateway bound to SessionService can neither list nor wipe every tenant", async () => {
    const id = freshId("survivor");
    await exports.SessionService.forNamespace("victim").setSession(id, "m", "SIMPLE");
    for (const method of ["getStats", "clearAll"]) {
      const out = await via(env.GATEWAY, method);
      expect(out.ok).toBeUndefined();
      expect(out.error).toBeTypeOf("string");
    }
    expect(await exports.SessionService.forNamespace("victim").getSession(id)).not.toBeNull();
  });

  it("SessionAdmin, bound only where operators need it, lists and clears", async () => {
    const id = freshId("admin-rpc");
    await exports.SessionService.setSession(id, "m", "SIMPLE");
    const stats = (await via(env.OPERATOR, "getStats", { limit: 1 })).ok;
    expect(stats.count).toBeGreaterThanOrEqual(1);
    expect(stats.sessions).toHaveLength(1);
    expect(await exports.SessionAdmin.getStats({ limit: 1 })).toMatchObject({ count: stats.count });
    const cleared = (await via(env.OPERATOR, "clearAll")).ok;
    expect(cleared.cleared).toBeGreaterThanOrEqual(1);
    expect(await exports.SessionService.getSession(id)).toBeNull();
    expect((await via(env.OPERATOR, "getSession", id)).error).toBeTypeOf("string");
  });
});
