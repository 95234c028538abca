/** Security properties from SECURITY.md that a test can hold. */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { constantTimeEqual } from "../src/http/auth";
import { shardStub } from "../src/objects/registry-client";
import { STATS_CURSOR_KEY_STORAGE, type RegistryObject } from "../src/objects/registry-object";
import type { SessionObject } from "../src/objects/session-object";
import type { Sessions } from "../src/facade";
import { facadeFor } from "./support/back-ends";
import type { SessionError } from "../src/session/errors";
import { STATS_CURSOR_TTL_MS } from "../src/stats-cursor";
import { ADMIN_TOKEN, API_TOKEN, call, sessionPath } from "./support/http";
import { freshId } from "./support/back-ends";
import { testClock } from "./support/worker";

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

describe("full session IDs in stats reach only the admin grant", () => {
  it("the API token gets 403 with no ID; the admin sees `id` cut to eight characters and `sessionId` whole; cursors are opaque", async () => {
    const ids = Array.from({ length: 5 }, () => freshId("secret-conversation"));
    for (const id of ids) await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } });
    const refused = await call("GET", "/v1/stats?limit=2");
    expect(refused.status).toBe(403);
    for (const id of ids) expect(JSON.stringify(refused.json)).not.toContain(id.slice(8));
    const page = await call("GET", "/v1/stats?limit=2", { token: ADMIN_TOKEN });
    for (const row of page.json.sessions) {
      const whole = Array.from(row.sessionId as string);
      expect(row.id).toBe(whole.length > 8 ? whole.slice(0, 8).join("") + "..." : row.sessionId);
    }
    const cursor: string = page.json.nextCursor;
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    for (const id of ids) expect(cursor).not.toContain(id.slice(8));
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
    // The admin grant holds every operation: the cleared session reads as none.
    expect((await via(env.OPERATOR, "getSession", id)).ok).toBeNull();
  });
});

describe("stats cursors", () => {
  const b64url = (bytes: Uint8Array) =>
    btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  const fromB64url = (text: string) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  /** An AES-GCM key derived from a known string, as an attacker holding (or guessing) that string would. */
  const keyFrom = async (secret: string) =>
    crypto.subtle.importKey("raw", await crypto.subtle.digest("SHA-256", new TextEncoder().encode("edge-session stats cursor\0" + secret)), "AES-GCM", false, [
      "encrypt",
      "decrypt",
    ]);
  async function forge(secret: string, lastId: string) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await keyFrom(secret), new TextEncoder().encode(lastId)));
    return b64url(new Uint8Array([...iv, ...sealed]));
  }
  async function cursorFrom(api: Sessions) {
    for (let i = 0; i < 2; i++) await exports.SessionService.setSession(freshId("cursor"), "m", "SIMPLE");
    const cursor = (await api.getStats({ limit: 1 })).nextCursor;
    expect(cursor).toBeTypeOf("string");
    return cursor!;
  }
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => "accepted",
      (e: SessionError) => e.code,
    );

  it("a cursor forged with a key derived from the admin token, or from the public string, is refused", async () => {
    const api = facadeFor(env);
    expect(await codeOf(api.getStats({ cursor: await forge(ADMIN_TOKEN, "") }))).toBe("invalid_cursor");
    const rpcOnly = facadeFor({ ...env, SESSION_ADMIN_TOKEN: undefined });
    expect(await codeOf(rpcOnly.getStats({ cursor: await forge("", "") }))).toBe("invalid_cursor");
    const res = await call("GET", `/v1/stats?cursor=${await forge(ADMIN_TOKEN, "")}`, { token: ADMIN_TOKEN });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("invalid_cursor");
  });

  it("an issued cursor does not open with a token-derived or public key, so it tests no token guess offline", async () => {
    for (const vars of [{}, { SESSION_ADMIN_TOKEN: undefined }]) {
      const bytes = fromB64url(await cursorFrom(facadeFor({ ...env, ...vars })));
      for (const secret of [ADMIN_TOKEN, ""]) {
        const opened = await crypto.subtle.decrypt({ name: "AES-GCM", iv: bytes.subarray(0, 12) }, await keyFrom(secret), bytes.subarray(12)).then(
          () => true,
          () => false,
        );
        expect(opened).toBe(false);
      }
    }
  });

  it("an altered cursor is 400 invalid_cursor", async () => {
    const cursor = await cursorFrom(facadeFor(env));
    const bytes = fromB64url(cursor);
    bytes[bytes.length - 1]! ^= 1;
    for (const bad of [b64url(bytes), cursor.slice(0, -2), "x", "!!!!"]) {
      const res = await call("GET", `/v1/stats?cursor=${encodeURIComponent(bad)}`, { token: ADMIN_TOKEN });
      expect([res.status, res.json.error.code]).toEqual([400, "invalid_cursor"]);
    }
  });

  it(`expires: a cursor older than STATS_CURSOR_TTL_MS is 400 invalid_cursor`, async () => {
    const api = facadeFor(env);
    const ids = [freshId("cursor-ttl"), freshId("cursor-ttl")];
    for (const id of ids) await exports.SessionService.setSession(id, "m", "SIMPLE");
    const cursor = (await api.getStats({ limit: 1 })).nextCursor!;
    // The sessions stay in use for the cursor's lifetime, so a page after it is not empty.
    for (let half = 0; half < 2; half++) {
      testClock.advance(STATS_CURSOR_TTL_MS / 2);
      for (const id of ids) await exports.SessionService.touchSession(id);
    }
    expect((await api.getStats({ limit: 1, cursor })).sessions).toHaveLength(1);
    testClock.advance(1);
    expect(await codeOf(api.getStats({ limit: 1, cursor }))).toBe("invalid_cursor");
  });

  it("with STATS_CURSOR_KEY set, cursors are sealed with it: another key refuses them", async () => {
    const [a, b] = [facadeFor({ ...env, STATS_CURSOR_KEY: "a".repeat(32) + "-key-one" }), facadeFor({ ...env, STATS_CURSOR_KEY: "b".repeat(32) + "-key-two" })];
    const cursor = await cursorFrom(a);
    expect((await a.getStats({ limit: 1, cursor })).sessions).toHaveLength(1);
    expect(await codeOf(b.getStats({ limit: 1, cursor }))).toBe("invalid_cursor");
    expect(await codeOf(facadeFor(env).getStats({ limit: 1, cursor }))).toBe("invalid_cursor");
  });

  it("rejects a short STATS_CURSOR_KEY as config_invalid without echoing it", () => {
    const err = (() => {
      try {
        return facadeFor({ ...env, STATS_CURSOR_KEY: "short-secret" });
      } catch (e) {
        return e as SessionError;
      }
    })() as SessionError;
    expect(err.code).toBe("config_invalid");
    expect(err.message).toMatch(/STATS_CURSOR_KEY/);
    expect(JSON.stringify(err.toBody())).not.toContain("short-secret");
  });

  it("without STATS_CURSOR_KEY, the generated key is kept in registry shard 0's storage", async () => {
    await cursorFrom(facadeFor(env));
    const stored = await runInDurableObject(shardStub(env, 0), (_o: RegistryObject, state) => state.storage.kv.get(STATS_CURSOR_KEY_STORAGE));
    expect(stored).toBeInstanceOf(Uint8Array);
    expect((stored as Uint8Array).byteLength).toBe(32);
  });
});

describe("RPC exposes only the documented methods", () => {
  it("the front doors' helpers (SessionScope's call, SessionService's scope) are not callable over RPC", async () => {
    const scope = exports.SessionService.forNamespace("acme") as unknown as { call(work: unknown): Promise<unknown> };
    let invoked = false;
    const outcome = await scope
      .call(() => (invoked = true))
      .then(
        () => "resolved",
        (e: Error) => e.message,
      );
    expect(invoked).toBe(false);
    expect(outcome).toMatch(/does not implement/);
    const service = exports.SessionService as unknown as { scope: Promise<unknown> };
    expect(
      await Promise.resolve(service.scope).then(
        () => "resolved",
        (e: Error) => e.message,
      ),
    ).toMatch(/does not implement/);
  });
});
