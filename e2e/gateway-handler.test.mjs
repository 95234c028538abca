/**
 * The example gateway's fetch handler, run in Node against a recording fake of
 * the SESSION binding and the fake upstream: what reaches the session service
 * (headers, namespace), what reaches end users (status, fixed messages), and
 * how it fails closed. No wrangler: the TypeScript is bundled in memory.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it, mock } from "node:test";
import { createServer } from "node:http";
import { build } from "esbuild";
import { HANG_BEFORE_FINISH, HANG_BEFORE_USAGE, NO_USAGE, startFakeUpstream } from "../examples/gateway/fake-upstream.mjs";

/** Bundles one TypeScript module of the gateway and imports it. */
async function load(entry) {
  const out = await build({ entryPoints: [entry], bundle: true, format: "esm", platform: "neutral", write: false, logLevel: "silent" });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString("base64")}`);
}

const KEYS = { alice: "alice-key-0123456789abcdef0123456789", bob: "bob-key-0123456789abcdef0123456789ab" };
const PRICES = { "gemini-2.5-flash": { input: 0.3, output: 2.5 } };
const TIERS = { SIMPLE: "gemini-2.5-flash", MEDIUM: "gemini-2.5-flash", COMPLEX: "gemini-2.5-flash", REASONING: "gemini-2.5-flash" };
const CHAT = { model: "auto", messages: [{ role: "user", content: "hi" }] };

/**
 * A SESSION binding that records every call; `fail` makes resolve throw that
 * error, `failSettle` settle. A resolve with reserveMicros answers a
 * reservation (r1, r2, …). The deployment is pinned as the service's contract
 * says: the first routed.deployment, moved by a failover from the pinned one;
 * `pin` sets it. Every session has the same cache key, `cacheKey`.
 */
function fakeSession() {
  const calls = [];
  const decision = {
    sessionId: "s1",
    source: "header",
    model: "gemini-2.5-flash",
    tier: "SIMPLE",
    pinned: false,
    userExplicit: false,
    strikes: 0,
    escalated: false,
    requestCount: 1,
    sessionCostMicros: 7,
    reservedMicros: 0,
    budgetMicros: null,
    downgraded: false,
    cacheSticky: false,
    rebound: false,
    cacheKey: `ck_${crypto.randomUUID()}`,
  };
  let reservations = 0;
  const binding = {
    calls,
    fail: undefined,
    failSettle: undefined,
    pin: undefined,
    cacheKey: decision.cacheKey,
    forNamespace(namespace) {
      calls.push({ method: "forNamespace", namespace });
      return {
        resolve: async (input) => {
          const call = { method: "resolve", namespace, input };
          calls.push(call);
          if (binding.fail) throw binding.fail;
          const rebound = input.failover !== undefined && input.failover.deployment === binding.pin;
          if (binding.pin === undefined || rebound) binding.pin = input.routed?.deployment;
          const answer = { ...decision, deployment: binding.pin ?? null, rebound, cacheKey: binding.cacheKey };
          if (input.reserveMicros === undefined) return answer;
          call.answer = { ...answer, reservationId: `r${++reservations}`, reservedMicros: input.reserveMicros[decision.tier] ?? input.reserveMicros };
          return call.answer;
        },
        settle: async (id, reservationId, costMicros, usage) => {
          calls.push({ method: "settle", namespace, id, reservationId, costMicros, usage });
          if (binding.failSettle) throw binding.failSettle;
          return { sessionCostMicros: 7 + costMicros, reservedMicros: 0, costUSD: (7 + costMicros) / 1e6 };
        },
      };
    },
  };
  // Unscoped methods, recorded so that a call outside any key's namespace shows up.
  for (const method of ["resolve", "getSession", "addSessionCost", "settle", "setSession", "clearSession"]) {
    binding[method] = async (...args) => {
      calls.push({ method, namespace: undefined, args, input: args[0] });
      if (method === "resolve" && binding.fail) throw binding.fail;
      return method === "resolve" ? decision : { sessionId: args[0], model: "gemini-2.5-flash", sessionCostMicros: 7 };
    };
  }
  return binding;
}

let worker;
let upstream;
let env;
let errors;
let warnings;
let upstreamCalls;
/** The ExecutionContext: what the handler hands to waitUntil. */
let ctx;
let waits;

before(async () => {
  worker = (await load("examples/gateway/src/index.ts")).default;
  upstream = await startFakeUpstream();
});
after(() => upstream?.close());
beforeEach(() => {
  env = { SESSION: fakeSession(), UPSTREAM_BASE_URL: upstream.url, TIER_MODELS: TIERS, MODEL_PRICES: PRICES, GATEWAY_KEYS: JSON.stringify(KEYS) };
  errors = mock.method(console, "error", () => {});
  warnings = mock.method(console, "warn", () => {});
  upstreamCalls = upstream.calls.length;
  waits = [];
  ctx = { waitUntil: (p) => waits.push(p), passThroughOnException() {} };
});

function post(headers = {}, body = CHAT, path = "/v1/chat/completions") {
  return new Request(`http://gateway.test${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
}
const asAlice = (headers = {}) => ({ authorization: `Bearer ${KEYS.alice}`, ...headers });
const logged = () => errors.mock.calls.map((c) => c.arguments.map(String).join(" ")).join("\n");

describe("gateway keys", () => {
  it("refuses to serve when GATEWAY_KEYS is not set: 503 with a fixed message, logged, nothing called", async () => {
    for (const unset of [undefined, ""]) {
      env.GATEWAY_KEYS = unset;
      const res = await worker.fetch(post(asAlice()), env, ctx);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { error: { message: "gateway keys are not configured", type: "server_error", code: "gateway_not_configured" } });
    }
    assert.deepEqual(env.SESSION.calls, []);
    assert.equal(upstream.calls.length, upstreamCalls, "nothing reached the upstream");
    assert.match(logged(), /GATEWAY_KEYS/);
  });

  it("refuses to serve when GATEWAY_KEYS is malformed, and logs why without logging any key", async () => {
    const bad = [
      "not json",
      "[]",
      "{}",
      JSON.stringify({ "bad id!": KEYS.alice }),
      JSON.stringify({ ["x".repeat(65)]: KEYS.alice }),
      JSON.stringify({ alice: "short-key" }),
      JSON.stringify({ alice: 12345678901234567890123456789012345 }),
      JSON.stringify({ alice: `${KEYS.alice} with spaces` }),
      JSON.stringify({ alice: KEYS.alice, bob: KEYS.alice }),
      JSON.stringify({ [KEYS.alice]: "alice" }),
    ];
    for (const value of bad) {
      env.GATEWAY_KEYS = value;
      errors.mock.resetCalls();
      const res = await worker.fetch(post(asAlice()), env, ctx);
      assert.equal(res.status, 503, value);
      assert.deepEqual(await res.json(), { error: { message: "gateway keys are not configured", type: "server_error", code: "gateway_not_configured" } });
      assert.match(logged(), /GATEWAY_KEYS/, value);
      assert.ok(!logged().includes(KEYS.alice) && !logged().includes("short-key"), logged());
    }
    assert.deepEqual(env.SESSION.calls, []);
  });

  it("answers 401 in OpenAI's shape without a key, with a wrong key, or with a key ID instead of a key", async () => {
    const attempts = [
      {},
      { authorization: "Bearer wrong-0123456789abcdef0123456789abcdef" },
      { authorization: "Bearer alice" },
      { authorization: KEYS.alice },
      { authorization: `Basic ${KEYS.alice}` },
      { "x-api-key": KEYS.alice },
    ];
    for (const headers of attempts) {
      const res = await worker.fetch(post(headers), env, ctx);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.deepEqual(await res.json(), { error: { message: "missing or invalid gateway key", type: "invalid_request_error", code: "invalid_api_key" } });
    }
    assert.deepEqual(env.SESSION.calls, []);
    assert.equal(upstream.calls.length, upstreamCalls, "nothing reached the upstream");
  });

  it("scopes every session call to the key's ID", async () => {
    const res = await worker.fetch(post({ authorization: `Bearer ${KEYS.bob}` }), env, ctx);
    assert.equal(res.status, 200);
    await res.json();
    const sessionCalls = env.SESSION.calls.filter((c) => c.method !== "forNamespace");
    assert.deepEqual(
      sessionCalls.map((c) => [c.method, c.namespace]),
      [
        ["resolve", "bob"],
        ["settle", "bob"],
      ],
    );
  });
});

describe("what the session service receives", () => {
  it("only the session header, never Authorization, Cookie or anything else", async () => {
    const res = await worker.fetch(
      post(
        asAlice({
          cookie: "sid=secret",
          "x-session-id": "conv-1",
          "x-forwarded-for": "10.0.0.1",
          "x-tenant-id": "someone-else",
          "openai-organization": "org-1",
        }),
      ),
      env,
      ctx,
    );
    assert.equal(res.status, 200);
    await res.body?.cancel();
    const resolve = env.SESSION.calls.find((c) => c.method === "resolve");
    assert.deepEqual(resolve.input.headers, { "x-session-id": "conv-1" });
  });

  it("no headers at all when the request has no session header", async () => {
    const res = await worker.fetch(post(asAlice({ cookie: "sid=secret" })), env, ctx);
    await res.body?.cancel();
    assert.deepEqual(env.SESSION.calls.find((c) => c.method === "resolve").input.headers, {});
  });

  it("the configured session header (SESSION_HEADER), under the name the service reads", async () => {
    env.SESSION_HEADER = "X-Conversation-Id";
    const res = await worker.fetch(post(asAlice({ "x-session-id": "ignored", "x-conversation-id": "conv-2" })), env, ctx);
    await res.body?.cancel();
    assert.deepEqual(env.SESSION.calls.find((c) => c.method === "resolve").input.headers, { "x-conversation-id": "conv-2" });
  });

  it("an invalid SESSION_HEADER fails closed with a fixed message", async () => {
    env.SESSION_HEADER = "not a header";
    const res = await worker.fetch(post(asAlice()), env, ctx);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: { message: "gateway is misconfigured", type: "server_error", code: "gateway_misconfigured" } });
    assert.match(logged(), /SESSION_HEADER/);
    assert.deepEqual(env.SESSION.calls, []);
  });
});

describe("what end users see of session-service errors", () => {
  const SECRET = "shard 7 at /internal/registry-7 refused";
  // Over RPC the service's code arrives as the error's own `code` property (docs/rpc.md, "Errors").
  const cases = [
    ["session_budget_exceeded", 429, "rate_limit_exceeded", "session_budget_exceeded", "session budget exceeded"],
    ["session_concurrency_limited", 429, "rate_limit_exceeded", "session_concurrency_limited", "too many requests in flight for this session"],
    ["session_rate_limited", 429, "rate_limit_exceeded", "session_rate_limited", "session rate limit exceeded"],
    ["invalid_session_id", 400, "invalid_request_error", "invalid_session_id", "invalid session ID"],
    ["invalid_request", 400, "invalid_request_error", "invalid_request", "invalid request"],
    ["invalid_json", 400, "invalid_request_error", "invalid_request", "invalid request"],
    ["payload_too_large", 413, "invalid_request_error", "payload_too_large", "request body too large"],
    ["internal_error", 502, "server_error", "session_unavailable", "session service unavailable"],
    ["registry_unavailable", 502, "server_error", "session_unavailable", "session service unavailable"],
    ["config_invalid", 502, "server_error", "session_unavailable", "session service unavailable"],
    [undefined, 502, "server_error", "session_unavailable", "session service unavailable"],
    // A message in the old "code: message" form is not a code.
    ["invalid_request: bad", 502, "server_error", "session_unavailable", "session service unavailable"],
  ];
  for (const [thrownCode, status, type, code, message] of cases) {
    it(`${thrownCode ?? "no code"} → ${status} "${message}"`, async () => {
      env.SESSION.fail = thrownCode === undefined ? new Error(SECRET) : Object.assign(new Error(SECRET), { code: thrownCode });
      const res = await worker.fetch(post(asAlice()), env, ctx);
      const text = await res.text();
      assert.equal(res.status, status);
      assert.deepEqual(JSON.parse(text), { error: { message, type, code } });
      assert.ok(!text.includes("shard 7"), text);
      assert.equal(upstream.calls.length, upstreamCalls, "nothing reached the upstream");
    });
  }

  it("passes session_rate_limited's retryAfterSeconds on as Retry-After, in whole seconds rounded up", async () => {
    const cases = [
      ["session_rate_limited", { retryAfterSeconds: 7 }, "7"],
      ["session_rate_limited", { retryAfterSeconds: 2.5 }, "3"],
      ["session_rate_limited", {}, null],
      ["session_rate_limited", { retryAfterSeconds: "soon" }, null],
      ["session_rate_limited", { retryAfterSeconds: -1 }, null],
      ["session_budget_exceeded", { retryAfterSeconds: 7 }, null],
      ["session_concurrency_limited", { retryAfterSeconds: 7 }, null],
    ];
    for (const [code, details, retryAfter] of cases) {
      env.SESSION.fail = Object.assign(new Error(SECRET), { code, details });
      const res = await worker.fetch(post(asAlice()), env, ctx);
      assert.equal(res.status, 429);
      assert.equal(res.headers.get("retry-after"), retryAfter, `${code} ${JSON.stringify(details)}`);
      assert.equal((await res.json()).error.code, code);
    }
  });

  it("logs the service's own message for a 502, where operators can read it", async () => {
    env.SESSION.fail = new Error(`internal_error: ${SECRET}`);
    await (await worker.fetch(post(asAlice()), env, ctx)).text();
    assert.match(logged(), /shard 7/);
  });

  it("still returns the completion when settling its cost fails, and logs the failure", async () => {
    env.SESSION.failSettle = new Error(`internal_error: ${SECRET}`);
    const res = await worker.fetch(post(asAlice()), env, ctx);
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(text).choices[0].message.content, "echo from gemini-2.5-flash");
    assert.ok(!text.includes("shard 7"));
    assert.match(logged(), /shard 7/);
  });

  it("an unreachable upstream is a 500 with a fixed message", async () => {
    const closed = await startFakeUpstream();
    await closed.close();
    env.UPSTREAM_BASE_URL = closed.url;
    const res = await worker.fetch(post(asAlice()), env, ctx);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: { message: "internal error", type: "server_error", code: "internal_error" } });
    assert.ok(logged().length > 0);
    assert.deepEqual(settled(), [0], "no answer: the reservation is released at no cost");
  });

  it("a non-Error rejection is a 502 too", async () => {
    env.SESSION.fail = { toString: () => SECRET };
    const res = await worker.fetch(post(asAlice()), env, ctx);
    assert.equal(res.status, 502);
    assert.ok(!(await res.text()).includes("shard 7"));
  });
});

describe("routes", () => {
  it("has no session debug route, even with a valid key", async () => {
    const res = await worker.fetch(new Request("http://gateway.test/sessions/s1", { headers: asAlice() }), env, ctx);
    assert.equal(res.status, 404);
    assert.deepEqual(env.SESSION.calls, []);
  });

  it("asks for a key before saying whether a route exists", async () => {
    const res = await worker.fetch(new Request("http://gateway.test/sessions/s1"), env, ctx);
    assert.equal(res.status, 401);
  });

  it("serves /health without a key", async () => {
    const res = await worker.fetch(new Request("http://gateway.test/health"), env, ctx);
    assert.equal(res.status, 200);
  });
});

describe("authenticate (pure)", () => {
  it("returns the ID of the matching key among several, for any case of the Bearer scheme", async () => {
    const { authenticate, gatewayKeys } = await load("examples/gateway/src/auth.ts");
    const keys = await gatewayKeys(JSON.stringify(KEYS));
    assert.equal(await authenticate(`Bearer ${KEYS.bob}`, keys), "bob");
    assert.equal(await authenticate(`bearer  ${KEYS.alice} `, keys), "alice");
    assert.equal(await authenticate(`Bearer ${KEYS.alice}x`, keys), undefined);
    assert.equal(await authenticate(`Bearer ${KEYS.alice.slice(0, -1)}`, keys), undefined);
    assert.equal(await authenticate(`Bearer ${KEYS.alice} ${KEYS.bob}`, keys), undefined);
    assert.equal(await authenticate(null, keys), undefined);
  });
});

describe("sessionHeaders (pure)", () => {
  it("picks the one named header, case-insensitively, and nothing else", async () => {
    const { sessionHeaders } = await load("examples/gateway/src/session-rpc.ts");
    const headers = new Headers({ authorization: "Bearer k", cookie: "a=b", "X-Session-Id": "s", "proxy-authorization": "p" });
    assert.deepEqual(sessionHeaders(headers, "x-session-id"), { "x-session-id": "s" });
    assert.deepEqual(sessionHeaders(headers, "X-SESSION-ID"), { "x-session-id": "s" });
    assert.deepEqual(sessionHeaders(new Headers({ cookie: "a=b" }), "x-session-id"), {});
  });

  it("also passes the session headers Claude Code and Codex send, and only those", async () => {
    const { sessionHeaders } = await load("examples/gateway/src/session-rpc.ts");
    const agents = {
      "X-Claude-Code-Session-Id": "7c1e9b3a-4d2f-4a8e-b6c0-1f5d8a2e9b4c",
      "Thread-Id": "0199a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
      "session-id": "0199a1b2-c3d4-7e5f-8a6b-000000000001",
      session_id: "0199a1b2-c3d4-7e5f-8a6b-000000000002",
      conversation_id: "0199a1b2-c3d4-7e5f-8a6b-000000000003",
    };
    const headers = new Headers({
      ...agents,
      authorization: "Bearer k",
      cookie: "a=b",
      "x-tenant-id": "forged",
      "x-client-request-id": "r",
      "X-Session-Id": "s",
    });
    assert.deepEqual(sessionHeaders(headers, "X-Session-Id"), {
      "x-session-id": "s",
      "x-claude-code-session-id": agents["X-Claude-Code-Session-Id"],
      "thread-id": agents["Thread-Id"],
      "session-id": agents["session-id"],
      session_id: agents.session_id,
      conversation_id: agents.conversation_id,
    });
    assert.deepEqual(sessionHeaders(new Headers({ session_id: "c" }), "x-session-id"), { session_id: "c" });
  });
});

describe("request bodies", () => {
  /** A body that streams `total` bytes of a JSON string with no Content-Length, or a lying one. */
  function streamed(total, headers = {}) {
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    let sent = 0;
    const stream = new ReadableStream({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"model":"auto","x":"'));
        if (sent >= total) return controller.close();
        controller.enqueue(chunk);
        sent += chunk.length;
      },
    });
    return new Request("http://gateway.test/v1/chat/completions", { method: "POST", headers: asAlice(headers), body: stream, duplex: "half" });
  }

  it("counts the bytes that arrive: a body over 4 MiB with no Content-Length is 413 and reaches no one", async () => {
    const res = await worker.fetch(streamed(5 * 1024 * 1024), env, ctx);
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, "payload_too_large");
    assert.equal(env.SESSION.calls.length, 0);
    assert.equal(upstream.calls.length, upstreamCalls);
  });

  it("does not trust a Content-Length that understates the body", async () => {
    const res = await worker.fetch(streamed(5 * 1024 * 1024, { "content-length": "100" }), env, ctx);
    assert.equal(res.status, 413);
    assert.equal(env.SESSION.calls.length, 0);
  });
});

/** The costMicros of every settle so far; each must name a reservation resolve answered, once. */
function settled() {
  const settles = env.SESSION.calls.filter((c) => c.method === "settle");
  const held = env.SESSION.calls.filter((c) => c.method === "resolve").map((c) => c.answer?.reservationId);
  for (const c of settles) assert.deepEqual([c.namespace, c.id, held.includes(c.reservationId)], ["alice", "s1", true]);
  assert.equal(new Set(settles.map((c) => c.reservationId)).size, settles.length, "a reservation is settled once");
  return settles.map((c) => c.costMicros);
}
const reserved = () => env.SESSION.calls.find((c) => c.method === "resolve").input.reserveMicros;
const bytes = (body) => Buffer.byteLength(JSON.stringify(body));
/** The worst case: output tokens × output price + ceil(request bytes / 4) × input price, rounded up. */
const worst = (price, body, outputTokens) => Math.ceil(outputTokens * price.output + Math.ceil(bytes(body) / 4) * price.input);
/** USD per million tokens × tokens, rounded: what a settle charges for a usage. */
const charge = (price, usage) => Math.round(usage.prompt_tokens * price.input + usage.completion_tokens * price.output);
const FLASH = PRICES["gemini-2.5-flash"];
/** Everything handed to waitUntil, settled within 5 s. */
const drained = () =>
  Promise.race([Promise.all(waits), new Promise((_, reject) => setTimeout(() => reject(new Error("waitUntil work still pending after 5 s")), 5000).unref())]);

describe("reservations", () => {
  const TIER_PRICES = { a: { input: 0.3, output: 2.5 }, b: { input: 0.6, output: 2.5 }, c: { input: 2, output: 12 } };
  beforeEach(() => {
    // REASONING's model has no price: it reserves 0.
    env.TIER_MODELS = { SIMPLE: "a", MEDIUM: "b", COMPLEX: "c", REASONING: "unpriced" };
    env.MODEL_PRICES = JSON.stringify(TIER_PRICES);
  });

  it("prices a profile request's worst case at each tier's model", async () => {
    const body = { model: "auto", max_tokens: 100, messages: [{ role: "user", content: "hello there" }] };
    await (await worker.fetch(post(asAlice(), body), env, ctx)).text();
    assert.deepEqual(reserved(), {
      SIMPLE: worst(TIER_PRICES.a, body, 100),
      MEDIUM: worst(TIER_PRICES.b, body, 100),
      COMPLEX: worst(TIER_PRICES.c, body, 100),
      REASONING: 0,
    });
    assert.equal(reserved().COMPLEX, Math.ceil(100 * 12 + Math.ceil(bytes(body) / 4) * 2));
  });

  it("prices an explicit model's worst case at that model on all four tiers", async () => {
    const body = { model: "b", max_tokens: 33, messages: [{ role: "user", content: "hi" }] };
    await (await worker.fetch(post(asAlice(), body), env, ctx)).text();
    const amount = worst(TIER_PRICES.b, body, 33);
    assert.deepEqual(reserved(), { SIMPLE: amount, MEDIUM: amount, COMPLEX: amount, REASONING: amount });
  });

  it("rounds up: a fraction of a micro-USD reserves a whole one", async () => {
    env.MODEL_PRICES = JSON.stringify({ b: { input: 0.01, output: 0.01 } });
    const body = { model: "b", max_tokens: 1, messages: [] };
    await (await worker.fetch(post(asAlice(), body), env, ctx)).text();
    assert.equal(reserved().SIMPLE, 1);
  });

  it("reserves max_completion_tokens, or the larger of it and max_tokens, times n", async () => {
    const cases = [
      [{ max_completion_tokens: 30 }, 30],
      [{ max_tokens: 10, max_completion_tokens: 30 }, 30],
      [{ max_tokens: 50, n: 3 }, 150],
    ];
    for (const [limits, tokens] of cases) {
      env.SESSION.calls.length = 0;
      const body = { model: "c", ...limits, messages: [{ role: "user", content: "hi" }] };
      await (await worker.fetch(post(asAlice(), body), env, ctx)).text();
      assert.equal(reserved().SIMPLE, worst(TIER_PRICES.c, body, tokens), JSON.stringify(limits));
      assert.equal(upstream.calls.at(-1).max_tokens, body.max_tokens, "a request's own limit goes upstream untouched");
    }
  });

  it("without max_tokens reserves DEFAULT_MAX_TOKENS (4096 unless set) and sends it upstream as max_tokens", async () => {
    const body = { model: "c", messages: [{ role: "user", content: "hi" }] };
    await (await worker.fetch(post(asAlice(), body), env, ctx)).text();
    assert.equal(reserved().SIMPLE, worst(TIER_PRICES.c, body, 4096));
    assert.equal(upstream.calls.at(-1).max_tokens, 4096);

    env.SESSION.calls.length = 0;
    env.DEFAULT_MAX_TOKENS = "64";
    await (await worker.fetch(post(asAlice(), { ...body, n: 2 }), env, ctx)).text();
    assert.equal(reserved().SIMPLE, worst(TIER_PRICES.c, { ...body, n: 2 }, 128));
    assert.equal(upstream.calls.at(-1).max_tokens, 64);
  });

  it("an invalid DEFAULT_MAX_TOKENS fails closed with a fixed message", async () => {
    for (const bad of ["0", "-5", "1.5", "lots"]) {
      env.DEFAULT_MAX_TOKENS = bad;
      const res = await worker.fetch(post(asAlice()), env, ctx);
      assert.equal(res.status, 500, bad);
      assert.deepEqual(await res.json(), { error: { message: "gateway is misconfigured", type: "server_error", code: "gateway_misconfigured" } });
    }
    assert.match(logged(), /DEFAULT_MAX_TOKENS/);
    assert.deepEqual(env.SESSION.calls, []);
  });
});

describe("settling", () => {
  /** Reads a streamed answer until its text contains `marker`, then cancels it as a client that hangs up does. */
  async function cutAt(res, marker) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes(marker)) {
      const { done, value } = await reader.read();
      assert.ok(!done, `the stream ended before ${marker}`);
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
    return text;
  }
  async function untilCut(call) {
    for (const deadline = Date.now() + 5000; !call.cut; await new Promise((r) => setTimeout(r, 10))) {
      assert.ok(Date.now() < deadline, "the upstream stream was never cut");
    }
  }
  /** The text the fake upstream streams: its content deltas. */
  const streamedBytes = (model) => Buffer.byteLength(["", "echo ", "from ", `${model} `].join(""));

  it("settles a completion at the upstream's usage before answering", async () => {
    const res = await worker.fetch(post(asAlice()), env, ctx);
    assert.deepEqual(settled(), [charge(FLASH, upstream.calls.at(-1).usage)]);
    assert.ok(settled()[0] > 0);
    assert.equal((await res.json()).choices[0].message.content, "echo from gemini-2.5-flash");
    assert.equal(waits.length, 1);
    await drained();
  });

  it("settles a stream at its usage chunk before the client sees the end", async () => {
    // A slow settle: the end must wait for it to finish, not only to start.
    const finished = [];
    const scoped = env.SESSION.forNamespace.bind(env.SESSION);
    env.SESSION.forNamespace = (namespace) => {
      const scope = scoped(namespace);
      return { ...scope, settle: async (...args) => (await scope.settle(...args), await new Promise((r) => setTimeout(r, 50)), finished.push(args)) };
    };
    const res = await worker.fetch(post(asAlice(), { ...CHAT, stream: true }), env, ctx);
    const reader = res.body.getReader();
    while (!(await reader.read()).done) assert.equal(finished.length, 0, "no settle before the upstream ended");
    assert.equal(finished.length, 1, "the settle finished before the client saw the end");
    assert.deepEqual(settled(), [charge(FLASH, upstream.calls.at(-1).usage)]);
    await drained();
  });

  it("settles at 0 when the upstream answers an error: nothing was produced", async () => {
    env.UPSTREAM_BASE_URL = `${upstream.url}/missing`;
    for (const stream of [false, true]) {
      env.SESSION.calls.length = 0;
      const res = await worker.fetch(post(asAlice(), { ...CHAT, stream }), env, ctx);
      assert.equal(res.status, 404, "the upstream's answer passes through");
      await res.text();
      assert.deepEqual(settled(), [0]);
    }
  });

  it("a client that cuts a stream mid-answer is charged the prompt estimate and the text streamed to it, and the upstream is cut", async () => {
    const body = { ...CHAT, stream: true, messages: [{ role: "user", content: `hi ${HANG_BEFORE_FINISH}` }] };
    const res = await worker.fetch(post(asAlice(), body), env, ctx);
    await cutAt(res, '"content":"gemini-2.5-flash "');
    assert.equal(waits.length, 1, "the settle is kept alive past the response");
    await drained();
    const expected = charge(FLASH, { prompt_tokens: Math.ceil(bytes(body) / 4), completion_tokens: Math.ceil(streamedBytes("gemini-2.5-flash") / 4) });
    assert.deepEqual(settled(), [expected]);
    await untilCut(upstream.calls.at(-1));
  });

  it("a client that cuts a stream right after its finish_reason chunk, before the usage chunk, is charged", async () => {
    const body = { ...CHAT, stream: true, messages: [{ role: "user", content: `hi ${HANG_BEFORE_USAGE}` }] };
    const res = await worker.fetch(post(asAlice(), body), env, ctx);
    await cutAt(res, '"finish_reason":"stop"');
    await drained();
    const expected = charge(FLASH, { prompt_tokens: Math.ceil(bytes(body) / 4), completion_tokens: Math.ceil(streamedBytes("gemini-2.5-flash") / 4) });
    assert.ok(expected > 0);
    assert.deepEqual(settled(), [expected]);
    await untilCut(upstream.calls.at(-1));
  });

  it("settles an answer without usage at the prompt estimate and the text produced, streaming or not", async () => {
    for (const stream of [false, true]) {
      env.SESSION.calls.length = 0;
      const body = { ...CHAT, stream, messages: [{ role: "user", content: `hi ${NO_USAGE}` }] };
      const res = await worker.fetch(post(asAlice(), body), env, ctx);
      await res.text();
      await drained();
      const produced = stream ? streamedBytes("gemini-2.5-flash") : Buffer.byteLength("echo from gemini-2.5-flash");
      assert.deepEqual(
        settled(),
        [charge(FLASH, { prompt_tokens: Math.ceil(bytes(body) / 4), completion_tokens: Math.ceil(produced / 4) })],
        `stream: ${stream}`,
      );
    }
  });

  it("settles a 2xx answer that is not JSON at the prompt estimate, and answers 500", async () => {
    const server = createServer((req, res) => req.resume().on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("not json")));
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    try {
      env.UPSTREAM_BASE_URL = `http://127.0.0.1:${server.address().port}/v1`;
      const body = CHAT;
      const res = await worker.fetch(post(asAlice(), body), env, ctx);
      assert.equal(res.status, 500);
      assert.deepEqual(settled(), [charge(FLASH, { prompt_tokens: Math.ceil(bytes(body) / 4), completion_tokens: 0 })]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("settles an unpriced model at 0, which releases its reservation, and never prices from Object.prototype", async () => {
    // The session service pins the model; make it pin "constructor".
    const scoped = env.SESSION.forNamespace.bind(env.SESSION);
    env.SESSION.forNamespace = (namespace) => {
      const scope = scoped(namespace);
      return { ...scope, resolve: async (input) => ({ ...(await scope.resolve(input)), model: "constructor" }) };
    };
    const res = await worker.fetch(post(asAlice(), { model: "constructor", messages: [{ role: "user", content: "hi" }] }), env, ctx);
    assert.equal(res.status, 200);
    await res.text();
    assert.deepEqual(reserved(), { SIMPLE: 0, MEDIUM: 0, COMPLEX: 0, REASONING: 0 });
    assert.deepEqual(settled(), [0]);
    assert.equal(logged(), "");
  });

  it("settles nothing when resolve answered no reservation (no session)", async () => {
    const scoped = env.SESSION.forNamespace.bind(env.SESSION);
    env.SESSION.forNamespace = (namespace) => {
      const scope = scoped(namespace);
      return { ...scope, resolve: async (input) => ({ ...(await scope.resolve(input)), sessionId: null, reservationId: undefined }) };
    };
    const res = await worker.fetch(post(asAlice()), env, ctx);
    assert.equal(res.status, 200);
    await res.text();
    assert.deepEqual(settled(), []);
    await drained();
  });
});

describe("deployments and failover", () => {
  let a;
  let b;
  /** Both deployments' calls, in order. */
  const calls = [];
  before(async () => {
    a = await startFakeUpstream({ name: "a", calls });
    b = await startFakeUpstream({ name: "b", calls });
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });
  beforeEach(() => {
    calls.length = 0;
    a.failStatus = b.failStatus = undefined;
    env.UPSTREAM_DEPLOYMENTS = JSON.stringify([
      { id: "a", baseUrl: a.url },
      { id: "b", baseUrl: b.url },
    ]);
  });
  const resolves = () => env.SESSION.calls.filter((c) => c.method === "resolve").map((c) => c.input);
  const settles = () => env.SESSION.calls.filter((c) => c.method === "settle").map((c) => [c.reservationId, c.costMicros]);
  const send = async (body = CHAT) => {
    const res = await worker.fetch(post(asAlice(), body), env, ctx);
    await res.text();
    await drained();
    return res;
  };

  it("proposes the deployments in turn, and sends every call to the one the session pinned", async () => {
    for (let i = 0; i < 4; i++) assert.equal((await send()).status, 200);
    const proposed = resolves().map((input) => input.routed.deployment);
    assert.deepEqual(proposed.slice(2), proposed.slice(0, 2), "round-robin");
    assert.notEqual(proposed[0], proposed[1]);
    assert.deepEqual(
      calls.map((c) => c.deployment),
      Array(4).fill(proposed[0]),
      "every turn reaches the deployment the first one pinned",
    );
  });

  it("sends routed.deployment for an explicit model too, with the body's model as routed.model", async () => {
    await send({ model: "my-own-model", messages: [{ role: "user", content: "hi" }] });
    const { routed } = resolves()[0];
    assert.equal(routed.model, "my-own-model");
    assert.ok(["a", "b"].includes(routed.deployment));
    assert.equal(calls[0].deployment, routed.deployment);
  });

  for (const status of [503, 429, 500]) {
    it(`fails over once on ${status}: releases the first reservation, resolves with failover, calls the answer's deployment, and stays there`, async () => {
      env.SESSION.pin = "a";
      a.failStatus = status;
      const res = await worker.fetch(post(asAlice()), env, ctx);
      assert.equal(res.status, 200);
      assert.equal((await res.json()).choices[0].message.content, "echo from gemini-2.5-flash");
      await drained();
      assert.deepEqual(
        calls.map((c) => [c.deployment, c.status]),
        [
          ["a", status],
          ["b", 200],
        ],
      );
      const [, failover] = resolves();
      assert.deepEqual(failover.failover, { deployment: "a" });
      assert.equal(failover.routed.deployment, "b");
      assert.deepEqual(settles(), [
        ["r1", 0],
        ["r2", charge(FLASH, calls[1].usage)],
      ]);
      assert.match(warnings.mock.calls.map((c) => c.arguments.join(" ")).join("\n"), new RegExp(`deployment a answered ${status}; failing over to b`));

      a.failStatus = undefined;
      await send();
      await send();
      assert.deepEqual(
        calls.slice(2).map((c) => c.deployment),
        ["b", "b"],
        "later turns stay on the new pin",
      );
    });
  }

  it("fails over when the pinned deployment does not answer at all", async () => {
    const closed = await startFakeUpstream();
    await closed.close();
    env.UPSTREAM_DEPLOYMENTS = JSON.stringify([
      { id: "a", baseUrl: closed.url },
      { id: "b", baseUrl: b.url },
    ]);
    env.SESSION.pin = "a";
    assert.equal((await send()).status, 200);
    assert.deepEqual(
      calls.map((c) => c.deployment),
      ["b"],
    );
    assert.deepEqual(resolves()[1].failover, { deployment: "a" });
    assert.deepEqual(settled(), [0, charge(FLASH, calls[0].usage)]);
  });

  it("streams from the deployment it failed over to", async () => {
    env.SESSION.pin = "b";
    b.failStatus = 503;
    const res = await worker.fetch(post(asAlice(), { ...CHAT, stream: true }), env, ctx);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /echo /);
    await drained();
    assert.deepEqual(
      calls.map((c) => [c.deployment, c.status]),
      [
        ["b", 503],
        ["a", 200],
      ],
    );
    assert.deepEqual(settled(), [0, charge(FLASH, calls[1].usage)]);
  });

  it("does not fail over on a client error: a 4xx other than 429 passes through, settled at 0", async () => {
    env.SESSION.pin = "a";
    a.failStatus = 400;
    assert.equal((await send()).status, 400);
    assert.deepEqual(
      calls.map((c) => c.deployment),
      ["a"],
    );
    assert.equal(resolves().length, 1);
    assert.deepEqual(settled(), [0]);
  });

  it("fails over at most once: when the second deployment fails too, its answer passes through", async () => {
    env.SESSION.pin = "a";
    a.failStatus = 503;
    b.failStatus = 502;
    assert.equal((await send()).status, 502);
    assert.deepEqual(
      calls.map((c) => [c.deployment, c.status]),
      [
        ["a", 503],
        ["b", 502],
      ],
    );
    assert.deepEqual(settled(), [0, 0]);
  });

  it("fails over from a pinned deployment that is no longer configured, without calling it", async () => {
    env.SESSION.pin = "gone";
    assert.equal((await send()).status, 200);
    const [first, second] = resolves();
    assert.deepEqual(second.failover, { deployment: "gone" });
    assert.notEqual(second.routed.deployment, "gone");
    assert.deepEqual(
      calls.map((c) => c.deployment),
      [second.routed.deployment],
    );
    assert.ok(first.routed.deployment);
    assert.deepEqual(settled(), [0, charge(FLASH, calls[0].usage)]);
  });

  it("answers the session service's refusal of the failover's resolve, with the first reservation released", async () => {
    env.SESSION.pin = "a";
    a.failStatus = 503;
    const scoped = env.SESSION.forNamespace.bind(env.SESSION);
    env.SESSION.forNamespace = (namespace) => {
      const scope = scoped(namespace);
      return {
        ...scope,
        resolve: async (input) => {
          if (input.failover) throw Object.assign(new Error("budget"), { code: "session_budget_exceeded" });
          return scope.resolve(input);
        },
      };
    };
    const res = await send();
    assert.equal(res.status, 429);
    assert.deepEqual(
      calls.map((c) => c.deployment),
      ["a"],
    );
    assert.deepEqual(settled(), [0]);
  });

  it("with one deployment (UPSTREAM_BASE_URL), an upstream failure passes through without a failover", async () => {
    delete env.UPSTREAM_DEPLOYMENTS;
    env.UPSTREAM_BASE_URL = a.url;
    a.failStatus = 503;
    assert.equal((await send()).status, 503);
    assert.equal(resolves().length, 1);
    assert.equal(resolves()[0].routed.deployment, "default");
    assert.deepEqual(settled(), [0]);
  });

  it("fails closed on a malformed UPSTREAM_DEPLOYMENTS, or a missing upstream", async () => {
    const bad = [
      "not json",
      "[]",
      "{}",
      JSON.stringify([{ id: "a" }]),
      JSON.stringify([{ id: "", baseUrl: a.url }]),
      JSON.stringify([{ id: "a\nb", baseUrl: a.url }]),
      JSON.stringify([{ id: "a\u0085b", baseUrl: a.url }]),
      JSON.stringify([{ id: "x".repeat(257), baseUrl: a.url }]),
      JSON.stringify([{ id: "a", baseUrl: "ftp://example.com/v1" }]),
      JSON.stringify([
        { id: "a", baseUrl: a.url },
        { id: "a", baseUrl: b.url },
      ]),
    ];
    for (const value of bad) {
      env.UPSTREAM_DEPLOYMENTS = value;
      const res = await worker.fetch(post(asAlice()), env, ctx);
      assert.equal(res.status, 500, value);
      assert.deepEqual(await res.json(), { error: { message: "gateway is misconfigured", type: "server_error", code: "gateway_misconfigured" } });
    }
    assert.match(logged(), /UPSTREAM_DEPLOYMENTS/);
    delete env.UPSTREAM_DEPLOYMENTS;
    delete env.UPSTREAM_BASE_URL;
    assert.equal((await worker.fetch(post(asAlice()), env, ctx)).status, 500);
    assert.match(logged(), /UPSTREAM_BASE_URL/);
    assert.deepEqual(env.SESSION.calls, []);
    assert.deepEqual(calls, []);
  });
});

describe("prompt_cache_key", () => {
  const lastKey = () => upstream.calls.at(-1).prompt_cache_key;

  it("sends the session's cache key upstream, over one the client sent", async () => {
    await (await worker.fetch(post(asAlice()), env, ctx)).text();
    assert.equal(lastKey(), env.SESSION.cacheKey);
    await (await worker.fetch(post(asAlice(), { ...CHAT, prompt_cache_key: "the-clients-key" }), env, ctx)).text();
    assert.equal(lastKey(), env.SESSION.cacheKey);
  });

  it("without a session: a client's key passes through, and none is added", async () => {
    const scoped = env.SESSION.forNamespace.bind(env.SESSION);
    env.SESSION.forNamespace = (namespace) => {
      const scope = scoped(namespace);
      return { ...scope, resolve: async (input) => ({ ...(await scope.resolve(input)), sessionId: null, reservationId: undefined, cacheKey: null }) };
    };
    await (await worker.fetch(post(asAlice(), { ...CHAT, prompt_cache_key: "the-clients-key" }), env, ctx)).text();
    assert.equal(lastKey(), "the-clients-key");
    await (await worker.fetch(post(asAlice()), env, ctx)).text();
    assert.equal(lastKey(), undefined);
  });
});

describe("cache accounting: usage → settle's usage", () => {
  let budget;
  before(async () => {
    budget = await load("examples/gateway/src/budget.ts");
  });

  it("maps OpenAI's usage: prompt_tokens, prompt_tokens_details.cached_tokens", () => {
    const { cacheUsage } = budget;
    assert.deepEqual(cacheUsage({ prompt_tokens: 1200, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 1024 } }), {
      inputTokens: 1200,
      cachedInputTokens: 1024,
    });
    assert.deepEqual(cacheUsage({ prompt_tokens: 30, completion_tokens: 5 }), { inputTokens: 30, cachedInputTokens: 0 });
    assert.deepEqual(cacheUsage({ prompt_tokens: 30, prompt_tokens_details: null }), { inputTokens: 30, cachedInputTokens: 0 });
    assert.deepEqual(cacheUsage({ prompt_tokens: 30, prompt_tokens_details: { cached_tokens: 30 } }), { inputTokens: 30, cachedInputTokens: 30 });
  });

  it("maps Anthropic-shaped usage: input = input + cache read + cache creation, cached = cache read", () => {
    const { cacheUsage } = budget;
    assert.deepEqual(cacheUsage({ input_tokens: 10, cache_read_input_tokens: 800, cache_creation_input_tokens: 300, output_tokens: 5 }), {
      inputTokens: 1110,
      cachedInputTokens: 800,
    });
    assert.deepEqual(cacheUsage({ input_tokens: 10, output_tokens: 5 }), { inputTokens: 10, cachedInputTokens: 0 });
    assert.deepEqual(cacheUsage({ input_tokens: 0, cache_creation_input_tokens: 40 }), { inputTokens: 40, cachedInputTokens: 0 });
  });

  it("passes no usage for a usage that is neither shape or holds no counts: settle then adds no tokens", () => {
    const { cacheUsage } = budget;
    const bad = [
      undefined,
      null,
      {},
      { completion_tokens: 5 },
      { prompt_tokens: -1 },
      { prompt_tokens: 1.5 },
      { prompt_tokens: "30" },
      { prompt_tokens: 30, prompt_tokens_details: { cached_tokens: 31 } },
      { prompt_tokens: 30, prompt_tokens_details: { cached_tokens: -1 } },
      { prompt_tokens: 30, prompt_tokens_details: { cached_tokens: "5" } },
      { input_tokens: 10, cache_read_input_tokens: -5 },
      { input_tokens: 10, cache_read_input_tokens: 2 ** 53 },
    ];
    for (const usage of bad) assert.equal(cacheUsage(usage), undefined, JSON.stringify(usage));
  });

  it("prices all input tokens of either shape, and a bad cache count does not change the cost", () => {
    const { costMicros } = budget;
    const price = { input: 2, output: 10 };
    assert.equal(costMicros(price, { input_tokens: 10, cache_read_input_tokens: 800, cache_creation_input_tokens: 300, output_tokens: 5 }), 1110 * 2 + 50);
    assert.equal(costMicros(price, { prompt_tokens: 30, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 31 } }), 30 * 2 + 50);
    assert.equal(costMicros(price, { prompt_tokens: 30, completion_tokens: "5" }), 0);
  });

  /** The usage of every settle so far. */
  const usages = () => env.SESSION.calls.filter((c) => c.method === "settle").map((c) => c.usage);

  for (const stream of [false, true]) {
    it(`settles a ${stream ? "stream" : "completion"} with the cached tokens the upstream reported`, async () => {
      const body = { ...CHAT, stream, messages: [{ role: "user", content: `cache me ${crypto.randomUUID()}` }] };
      for (let turn = 0; turn < 2; turn++) {
        const res = await worker.fetch(post(asAlice(), body), env, ctx);
        await res.text();
        await drained();
      }
      const [first, second] = upstream.calls.slice(-2).map((c) => c.usage);
      assert.ok(second.prompt_tokens_details.cached_tokens > 0, "the fake upstream's cache is warm on the second call");
      assert.deepEqual(usages(), [
        { inputTokens: first.prompt_tokens, cachedInputTokens: 0 },
        { inputTokens: second.prompt_tokens, cachedInputTokens: second.prompt_tokens_details.cached_tokens },
      ]);
      assert.deepEqual(settled(), [charge(FLASH, first), charge(FLASH, second)]);
    });
  }

  it("settles an estimate with no usage: an estimate says nothing of the cache", async () => {
    for (const stream of [false, true]) {
      const res = await worker.fetch(post(asAlice(), { ...CHAT, stream, messages: [{ role: "user", content: `hi ${NO_USAGE}` }] }), env, ctx);
      await res.text();
    }
    await drained();
    assert.deepEqual(usages(), [undefined, undefined]);
    assert.ok(settled().every((micros) => micros > 0));
  });

  it("reads an Anthropic-shaped usage from a stream's final usage chunk", async () => {
    const usage = { input_tokens: 7, cache_read_input_tokens: 900, cache_creation_input_tokens: 100, output_tokens: 3 };
    const server = createServer((req, res) =>
      req.resume().on("end", () => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: "ok" }, finish_reason: "stop" }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ choices: [], usage })}\n\n`);
        res.end("data: [DONE]\n\n");
      }),
    );
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    try {
      env.UPSTREAM_BASE_URL = `http://127.0.0.1:${server.address().port}/v1`;
      const res = await worker.fetch(post(asAlice(), { ...CHAT, stream: true }), env, ctx);
      await res.text();
      await drained();
      assert.deepEqual(usages(), [{ inputTokens: 1007, cachedInputTokens: 900 }]);
      assert.deepEqual(settled(), [Math.round(1007 * FLASH.input + 3 * FLASH.output)]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
