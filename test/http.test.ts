/** Every HTTP route and every documented error, through the front Worker's fetch. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { facadeFor } from "./support/back-ends";
import { freshId } from "./support/back-ends";
import { ADMIN_TOKEN, call, sessionPath } from "./support/http";
import { registryFault } from "./support/worker";
import { rpcFailure } from "./support/rpc";

function expectError(res: { status: number; json: any }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.json).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
}

describe("health", () => {
  it("answers without auth", async () => {
    const res = await call("GET", "/health", { token: null });
    expect(res).toMatchObject({ status: 200, json: { ok: true } });
  });
});

describe("auth", () => {
  it("rejects a missing or wrong token with 401 and the error shape", async () => {
    expectError(await call("GET", sessionPath("x"), { token: null }), 401, "unauthorized");
    expectError(await call("GET", sessionPath("x"), { token: "nope" }), 401, "unauthorized");
    expectError(await call("GET", sessionPath("x"), { headers: { authorization: "Basic dGVzdA==" }, token: null }), 401, "unauthorized");
  });

  it("accepts the admin token on ordinary routes: an operator may do what a gateway may", async () => {
    expectError(await call("GET", sessionPath("x"), { token: ADMIN_TOKEN }), 404, "session_not_found");
  });
});

describe("stateless routes", () => {
  it("POST /v1/session-id derives the SHA-256 ID", async () => {
    const res = await call("POST", "/v1/session-id", { body: { firstUserMessage: "hello" } });
    expect(res).toMatchObject({ status: 200, json: { sessionId: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" } });
    expectError(await call("POST", "/v1/session-id", { body: {} }), 400, "invalid_request");
    expectError(await call("POST", "/v1/session-id", { body: { firstUserMessage: 7 } }), 400, "invalid_request");
  });

  it("POST /v1/hash hashes content and tool names", async () => {
    expect((await call("POST", "/v1/hash", { body: { content: "  hello   world\n\tfoo  " } })).json).toEqual({ hash: "43e514827182845c1c519a921b089ef5" });
    expect((await call("POST", "/v1/hash", { body: { content: "fix the bug", toolNames: ["write_file", "read_file"] } })).json).toEqual({
      hash: "091f622a4f22136f896f0b310357249e",
    });
    const bad = await call("POST", "/v1/hash", { body: { content: "x", toolNames: ["a", 1] } });
    expectError(bad, 400, "invalid_request");
    expect(bad.json.error.message).toContain("toolNames[1]");
  });
});

describe("session routes", () => {
  it("PUT creates, GET reads, touch, hashes, escalate, cost, DELETE", async () => {
    const id = freshId("http");
    expectError(await call("GET", sessionPath(id)), 404, "session_not_found");

    const put = await call("PUT", sessionPath(id), { body: { model: "gemini-2.5-flash", tier: "SIMPLE" } });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ id, model: "gemini-2.5-flash", tier: "SIMPLE", requestCount: 1, userExplicit: false, recentHashes: [] });
    expect(Object.keys(put.json).sort()).toEqual(
      [
        "createdAt",
        "escalated",
        "id",
        "lastUsedAt",
        "model",
        "recentHashes",
        "requestCount",
        "sessionCostMicros",
        "strikes",
        "tier",
        "userExplicit",
        "budgetMicros",
        "reservedMicros",
        "inFlight",
        "cacheKey",
        "deployment",
        "inputTokens",
        "cachedInputTokens",
        "paused",
        "adminPinned",
      ].sort(),
    );

    expect((await call("GET", sessionPath(id))).json).toEqual(put.json);
    expect((await call("POST", sessionPath(id, "/touch"))).json).toMatchObject({ requestCount: 2 });
    expect((await call("POST", sessionPath(id, "/hashes"), { body: { hash: "h1" } })).json).toEqual({ strikes: 0 });
    expect((await call("POST", sessionPath(id, "/hashes"), { body: { hash: "h1" } })).json).toEqual({ strikes: 1 });
    expect((await call("POST", sessionPath(id, "/escalate"))).json).toMatchObject({ tier: "MEDIUM", model: "kimi-k2.5", escalated: true, strikes: 1 });
    expect((await call("POST", sessionPath(id, "/cost"), { body: { micros: 1500 } })).json).toEqual({ sessionCostMicros: 1500, costUSD: 0.0015 });
    expect((await call("GET", sessionPath(id, "/cost"))).json).toEqual({ sessionCostMicros: 1500, costUSD: 0.0015 });

    const del = await call("DELETE", sessionPath(id));
    expect(del.status).toBe(204);
    expect(del.json).toBeUndefined();
    expect((await call("DELETE", sessionPath(id))).status).toBe(204);
    expectError(await call("GET", sessionPath(id)), 404, "session_not_found");
  });

  it("answers 404 session_not_found for operations on an unknown session", async () => {
    const id = freshId("missing");
    expectError(await call("POST", sessionPath(id, "/touch")), 404, "session_not_found");
    expectError(await call("POST", sessionPath(id, "/hashes"), { body: { hash: "h" } }), 404, "session_not_found");
    expectError(await call("POST", sessionPath(id, "/escalate")), 404, "session_not_found");
    expectError(await call("POST", sessionPath(id, "/cost"), { body: { micros: 1 } }), 404, "session_not_found");
    expectError(await call("GET", sessionPath(id, "/cost")), 404, "session_not_found");
    expectError(await call("GET", sessionPath(id)), 404, "session_not_found");
  });

  it("PUT with userExplicit pins the model against escalation", async () => {
    const id = freshId("pin");
    await call("PUT", sessionPath(id), { body: { model: "mine", tier: "", userExplicit: true } });
    expect((await call("POST", sessionPath(id, "/escalate"))).json).toMatchObject({ model: "mine", tier: "", escalated: false, userExplicit: true });
  });

  it("accepts IDs with odd but legal characters, percent-encoded in the path", async () => {
    const id = freshId("odd/ünï cödé?#%");
    expect((await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } })).json.id).toBe(id);
    expect((await call("GET", sessionPath(id))).json.id).toBe(id);
  });
});

describe("errors", () => {
  it("400 invalid_json for malformed JSON, bad UTF-8 and deep nesting", async () => {
    const id = freshId("json");
    expectError(await call("PUT", sessionPath(id), { rawBody: "{not json" }), 400, "invalid_json");
    expectError(await call("PUT", sessionPath(id), { rawBody: new Uint8Array([0x7b, 0xff, 0x7d]) }), 400, "invalid_json");
    expectError(await call("PUT", sessionPath(id), { rawBody: "[".repeat(60_000) }), 400, "invalid_json");
    const deep = '{"model":"m","tier":"SIMPLE","x":' + "[".repeat(30_000) + "]".repeat(30_000) + "}";
    expect((await call("PUT", sessionPath(id), { rawBody: deep })).status).toBe(200);
    await call("DELETE", sessionPath(id));
    expectError(await call("PUT", sessionPath(id), { rawBody: "" }), 400, "invalid_json");
    expectError(await call("PUT", sessionPath(id), { rawBody: "[1,2]" }), 400, "invalid_request");
    expectError(await call("GET", sessionPath(id)), 404, "session_not_found");
  });

  it("400 invalid_request naming the field", async () => {
    const id = freshId("field");
    const cases: [string, string, unknown, string][] = [
      ["PUT", "", { tier: "SIMPLE" }, "model"],
      ["PUT", "", { model: "", tier: "SIMPLE" }, "model"],
      ["PUT", "", { model: "m" }, "tier"],
      ["PUT", "", { model: "m", tier: "simple" }, "tier"],
      ["PUT", "", { model: "m", tier: "SIMPLE", userExplicit: "yes" }, "userExplicit"],
      ["POST", "/hashes", {}, "hash"],
      ["POST", "/cost", { micros: -1 }, "micros"],
      ["POST", "/cost", { micros: 1.5 }, "micros"],
      ["POST", "/cost", { micros: "5" }, "micros"],
      ["POST", "/cost", { micros: 1e300 }, "micros"],
    ];
    for (const [method, suffix, body, field] of cases) {
      const res = await call(method, sessionPath(id, suffix), { body });
      expectError(res, 400, "invalid_request");
      expect(res.json.error.message, JSON.stringify(body)).toContain(field);
    }
    expectError(await call("GET", sessionPath(id)), 404, "session_not_found");
  });

  it("400 invalid_session_id for empty, over-long, control-character and badly encoded IDs", async () => {
    expectError(await call("GET", sessionPath("x".repeat(257))), 400, "invalid_session_id");
    expectError(await call("GET", sessionPath("bad\u0001id")), 400, "invalid_session_id");
    expectError(await call("GET", sessionPath("tab\tid")), 400, "invalid_session_id");
    expectError(await call("GET", "/v1/sessions/%E0%A4%A"), 400, "invalid_session_id");
    expectError(await call("PUT", "/v1/sessions/%00", { body: { model: "m", tier: "SIMPLE" } }), 400, "invalid_session_id");
    expect((await call("GET", sessionPath("x".repeat(256)))).status).toBe(404);
  });

  it("413 payload_too_large over 64 KiB, by Content-Length and by streaming", async () => {
    const id = freshId("big");
    const big = JSON.stringify({ model: "m", tier: "SIMPLE", pad: "x".repeat(64 * 1024) });
    expectError(await call("PUT", sessionPath(id), { rawBody: big }), 413, "payload_too_large");
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    expectError(await call("PUT", sessionPath(id), { rawBody: stream }), 413, "payload_too_large");
    expectError(await call("GET", sessionPath(id)), 404, "session_not_found");
  });

  it("404 for unknown routes and 405 with Allow for wrong methods", async () => {
    expectError(await call("GET", "/v1/nope"), 404, "not_found");
    expectError(await call("GET", "/nope", { token: null }), 404, "not_found");
    expectError(await call("GET", "/v1/sessions/a/b/c"), 404, "not_found");
    const wrong = await call("POST", sessionPath("x"));
    expectError(wrong, 405, "method_not_allowed");
    expect(wrong.headers.get("allow")).toBe("GET, PUT, DELETE");
    expectError(await call("GET", sessionPath("x", "/touch")), 405, "method_not_allowed");
    expectError(await call("DELETE", "/health", { token: null }), 405, "method_not_allowed");
    expectError(await call("PATCH", "/v1/hash"), 405, "method_not_allowed");
  });
});

describe("configuration errors", () => {
  it("answers 500 config_invalid naming the var on every /v1 call, and never falls back", async () => {
    const bad = { ...env, TIER_MODELS: "{oops" };
    expect(() => facadeFor(bad)).toThrow(/TIER_MODELS/);
    const { router } = await import("../src/http/router");
    for (const [method, path, token] of [
      ["GET", "/v1/sessions/x", "test-token"],
      ["POST", "/v1/hash", "test-token"],
      ["GET", "/v1/stats", ADMIN_TOKEN],
    ] as const) {
      const res = await router.fetch(new Request(`http://x${path}`, { method, headers: { authorization: `Bearer ${token}` } }), bad, {} as ExecutionContext);
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: { code: "config_invalid", message: expect.stringContaining("TIER_MODELS"), var: "TIER_MODELS" } });
    }
  });

  it("fails closed with 503 auth_not_configured when no token is set", async () => {
    const { router } = await import("../src/http/router");
    const noTokens = { ...env, SESSION_API_TOKEN: undefined, SESSION_ADMIN_TOKEN: "" };
    for (const path of ["/v1/sessions/x", "/v1/stats"]) {
      const res = await router.fetch(new Request(`http://x${path}`, { headers: { authorization: "Bearer anything" } }), noTokens, {} as ExecutionContext);
      expect(res.status).toBe(503);
      expect(((await res.json()) as any).error.code).toBe("auth_not_configured");
    }
  });

  it("answers 404 sessions_disabled on session routes when SESSION_ENABLED=false, and stores nothing", async () => {
    const { router } = await import("../src/http/router");
    const disabled = { ...env, SESSION_ENABLED: "false" };
    const id = freshId("disabled");
    const put = await router.fetch(
      new Request(`http://x${sessionPath(id)}`, {
        method: "PUT",
        headers: { authorization: "Bearer test-token" },
        body: JSON.stringify({ model: "m", tier: "SIMPLE" }),
      }),
      disabled,
      {} as ExecutionContext,
    );
    expect(put.status).toBe(404);
    expect(((await put.json()) as any).error.code).toBe("sessions_disabled");
    expectError(await call("GET", sessionPath(id)), 404, "session_not_found");
  });
});

describe("paths that a URL parser normalises", () => {
  it("DELETE /v1/sessions/%2e with the admin token never clears everything", async () => {
    const id = freshId("bystander");
    await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } });
    for (const path of ["/v1/sessions/%2e", "/v1/sessions/.", "/v1/sessions/%2E", "/v1/sessions/", "/v1/sessions//"]) {
      expectError(await call("DELETE", path, { token: ADMIN_TOKEN }), 400, "invalid_session_id");
      expectError(await call("DELETE", path), 400, "invalid_session_id");
    }
    expect((await call("GET", sessionPath(id))).status).toBe(200);
  });

  it("a dot-only or empty session ID segment is 400 invalid_session_id on every session route", async () => {
    for (const seg of ["%2e", "%2E", ".", ""]) {
      expectError(await call("GET", `/v1/sessions/${seg}`), 400, "invalid_session_id");
      expectError(await call("PUT", `/v1/sessions/${seg}`, { body: { model: "m", tier: "SIMPLE" } }), 400, "invalid_session_id");
    }
    for (const suffix of ["/touch", "/escalate", "/hashes", "/cost"]) {
      expectError(await call("POST", `/v1/sessions/${suffix}`, { body: { hash: "h", micros: 1 } }), 400, "invalid_session_id");
    }
    expectError(await call("GET", "/v1/sessions//cost"), 400, "invalid_session_id");
  });

  it("'..' in the path never reaches clear-all or a session (the URL parser has already removed it)", async () => {
    const id = freshId("bystander2");
    await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } });
    for (const seg of ["%2e%2e", "..", "%2E%2e"]) {
      expectError(await call("DELETE", `/v1/sessions/${seg}`, { token: ADMIN_TOKEN }), 404, "not_found");
      expectError(await call("GET", `/v1/sessions/${seg}`), 404, "not_found");
    }
    expect((await call("GET", sessionPath(id))).json.requestCount).toBe(1);
  });

  it("a trailing slash never reaches a different route", async () => {
    const id = freshId("slash");
    await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } });
    expectError(await call("GET", sessionPath(id, "/")), 404, "not_found");
    expectError(await call("POST", sessionPath(id, "/touch/")), 404, "not_found");
    expectError(await call("GET", "/v1/stats/", { token: ADMIN_TOKEN }), 404, "not_found");
    expectError(await call("POST", "/v1/hash/", { body: { content: "x" } }), 404, "not_found");
    expect((await call("GET", sessionPath(id))).json.requestCount).toBe(1);
  });

  it("an ID of dots with other characters is an ordinary ID", async () => {
    const id = `...${freshId("dots")}`;
    expect((await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } })).status).toBe(200);
    expect((await call("GET", `/v1/sessions/${id}`)).json.id).toBe(id);
  });
});

/** The message an RPC call rejects with, or "resolved". */

describe("session ID characters", () => {
  it("rejects ill-formed UTF-16 and invisible format characters, saying which", async () => {
    const svc = exports.SessionService;
    for (const id of ["a\uD800", "a\uDC00b", "\uDBFF"]) {
      expect(await rpcFailure(svc.setSession(id, "m", "SIMPLE"))).toMatch(/^invalid_session_id: .*surrogate/);
      const res = await call("POST", "/v1/resolve", { body: { sessionId: id, body: { model: "m" } } });
      expectError(res, 400, "invalid_session_id");
    }
    for (const id of ["a\u200Bb", "a\u202Eb", "\u2066x\u2069", "a\uFEFF", "a\u00ADb", "a\u200Db"]) {
      expect(await rpcFailure(svc.setSession(id, "m", "SIMPLE"))).toMatch(/^invalid_session_id: .*format/);
      expectError(await call("GET", sessionPath(id)), 400, "invalid_session_id");
    }
    expect((await svc.setSession(`a\uFFFD-${crypto.randomUUID()}`, "m", "SIMPLE")).requestCount).toBe(1);
    expect((await svc.setSession(`emoji-😀-${crypto.randomUUID()}`, "m", "SIMPLE")).requestCount).toBe(1);
  });

  it('refuses "." and "..", which no path can address, over RPC and as x-session-id', async () => {
    for (const id of [".", ".."]) {
      expect(await rpcFailure(exports.SessionService.setSession(id, "m", "SIMPLE"))).toMatch(/^invalid_session_id: /);
      const res = await call("POST", "/v1/resolve", {
        body: { headers: { "x-session-id": id }, body: { model: "m", messages: [{ role: "user", content: freshId("dot") }] } },
      });
      expectError(res, 400, "invalid_session_id");
    }
  });
});

describe("responses", () => {
  it("every /v1 response, errors included, carries Cache-Control: no-store", async () => {
    const id = freshId("cache");
    const responses = [
      await call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } }),
      await call("GET", sessionPath(id)),
      await call("DELETE", sessionPath(id)),
      await call("GET", sessionPath(id)),
      await call("GET", sessionPath(id), { token: null }),
      await call("GET", "/v1/stats?limit=1", { token: ADMIN_TOKEN }),
      await call("POST", "/v1/hash", { body: { content: "x" } }),
      await call("POST", "/v1/hash", { rawBody: "{" }),
      await call("PATCH", "/v1/hash"),
      await call("GET", "/v1/nope"),
    ];
    for (const res of responses) expect(res.headers.get("cache-control")).toBe("no-store");
  });
});

describe("authentication before configuration", () => {
  it("an unauthenticated call gets 401 and never sees a var's value, even when a var is invalid", async () => {
    const { router } = await import("../src/http/router");
    const bad = { ...env, TIER_MODELS: "{secret-looking-value" };
    for (const [method, path, token] of [
      ["GET", "/v1/sessions/x", undefined],
      ["GET", "/v1/stats", "wrong"],
      ["POST", "/v1/resolve", undefined],
    ] as const) {
      const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
      const res = await router.fetch(new Request(`http://x${path}`, { method, headers }), bad, {} as ExecutionContext);
      const text = await res.text();
      expect(res.status).toBe(401);
      expect(text).not.toContain("secret-looking-value");
      expect(text).not.toContain("TIER_MODELS");
    }
  });

  it("an admin token equal to the API token is config_invalid, so the API token never grants admin", async () => {
    const { router } = await import("../src/http/router");
    const same = { ...env, SESSION_ADMIN_TOKEN: env.SESSION_API_TOKEN };
    for (const path of ["/v1/stats", "/v1/sessions/x"]) {
      const res = await router.fetch(
        new Request(`http://x${path}`, { headers: { authorization: `Bearer ${env.SESSION_API_TOKEN}` } }),
        same,
        {} as ExecutionContext,
      );
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({
        error: { code: "config_invalid", message: expect.stringContaining("SESSION_ADMIN_TOKEN"), var: "SESSION_ADMIN_TOKEN" },
      });
    }
    expect(() => facadeFor(same)).toThrow(/SESSION_ADMIN_TOKEN/);
  });
});

describe("registry failures", () => {
  it("never pass the platform's error text to the caller, and log it instead", async () => {
    const logged: string[] = [];
    vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(" ")));
    registryFault.readsFail = true;
    try {
      for (const [method, path] of [
        ["GET", "/v1/stats"],
        ["DELETE", "/v1/sessions"],
      ] as const) {
        const res = await call(method, path, { token: ADMIN_TOKEN });
        expectError(res, 503, "registry_unavailable");
        expect(JSON.stringify(res.json)).not.toContain("injected");
        expect(JSON.stringify(res.json)).not.toContain("storage");
      }
      const message = await rpcFailure(exports.SessionAdmin.getStats({ limit: 1 }));
      expect(message).toMatch(/^registry_unavailable: /);
      expect(message).not.toContain("injected");
    } finally {
      registryFault.readsFail = false;
      vi.restoreAllMocks();
    }
    expect(logged.some((line) => line.includes("injected registry failure"))).toBe(true);
  });
});
