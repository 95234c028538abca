/**
 * Review of issue 15 (prompt-cache affinity and the session IDs coding agents
 * send), in the main project: wrangler.toml's TIER_MODELS, the default
 * PROVIDER_CACHE_TTLS and SESSION_ID_SOURCES. Expected values come from the
 * contract (issue 15; docs/http-api.md "Resolve", "Prompt-cache affinity",
 * "Session IDs coding agents send"; docs/configuration.md; SECURITY.md).
 *
 * Tests marked DEFECT fail on the code they were written against, each with a
 * proposed fix; tests marked "holds" confirm a property the existing tests do
 * not cover.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { freshId } from "./support/back-ends";
import { parseConfig } from "../src/session/config";
import { cacheTtlMs } from "../src/session/affinity";
import { call, sessionPath } from "./support/http";
import { testClock } from "./support/worker";

const MINUTE = 60_000;
const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const COMPLEX = { model: "gemini-3.1-pro", tier: "COMPLEX" };

type Message = Record<string, unknown>;
const user = (content: unknown): Message => ({ role: "user", content });
const big = () => [user("x".repeat(9_000))];

async function resolve(id: string | undefined, messages: Message[], extra: Record<string, unknown> = {}, bodyExtra: Record<string, unknown> = {}) {
  const input: Record<string, unknown> = { body: { model: "auto", messages, ...bodyExtra }, routed: SIMPLE, ...extra };
  if (id !== undefined) input.sessionId = id;
  const res = await call("POST", "/v1/resolve", { body: input });
  return { ...res, sticky: res.headers.get("x-session-cache-sticky") };
}
const read = async (id: string) => (await call("GET", sessionPath(id))).json;

/** A resolve over RPC, through the test gateway's SessionService binding. */
async function rpcResolve(input: Record<string, unknown>, namespace?: string) {
  const res = await env.GATEWAY.fetch("http://gateway/", { method: "POST", body: JSON.stringify({ method: "resolve", namespace, args: [input] }) });
  return { status: res.status, json: (await res.json()) as any };
}

describe("review 15: the size of a request", () => {
  it("holds: a surrogate pair is 4 bytes and a lone surrogate 3 (as TextEncoder's U+FFFD)", async () => {
    // 2,249 emoji (8,996 bytes) + "abc" = 8,999 bytes; + "abcd" = 9,000.
    const emoji = "😀".repeat(2_249);
    expect((await resolve(freshId("r15-emoji"), [user(emoji + "abc")])).json.cacheSticky).toBe(false);
    expect((await resolve(freshId("r15-emoji"), [user(emoji + "abcd")])).json.cacheSticky).toBe(true);
    // 3,000 lone high surrogates: 9,000 bytes once encoded.
    expect((await resolve(freshId("r15-lone"), [user("\ud800".repeat(2_999) + "ab")])).json.cacheSticky).toBe(false);
    expect((await resolve(freshId("r15-lone"), [user("\ud800".repeat(3_000))])).json.cacheSticky).toBe(true);
  });
});

describe("review 15: provider names reach the header safely", () => {
  // DEFECT: a provider with a lone surrogate half answers 500 internal_error.
  // The `model` and `opaqueName` schemas reject only control characters, so
  // `body.model: "\uD800x/claude"` or `routed.provider: "\uDC00"` passes
  // validation; on a large request the rule activates stickiness for that
  // provider, and the header builder's encodeURIComponent throws URIError
  // ("URI malformed") on the lone surrogate. The contract: every bad input is
  // 4xx, never 5xx.
  // Proposed fix: reject ill-formed UTF-16 in `opaqueName` (and in `model`,
  // whose prefix is the provider), with the LONE_SURROGATE check that
  // sessionIdProblem already applies (400 invalid_request); or, at least,
  // encode `activated.provider.toWellFormed()` in src/commands.ts.
  it("DEFECT: a lone surrogate in the provider (from the model, or routed.provider) answers 4xx or a valid header, never 500", async () => {
    const fromModel = await call("POST", "/v1/resolve", { body: { sessionId: freshId("r15-lone-model"), body: { model: "\ud800x/claude", messages: big() } } });
    expect(fromModel.status, JSON.stringify(fromModel.json)).toBeLessThan(500);
    const fromRouted = await resolve(freshId("r15-lone-routed"), big(), { routed: { ...SIMPLE, provider: "\udc00" } });
    expect(fromRouted.status, JSON.stringify(fromRouted.json)).toBeLessThan(500);
  });

  it("holds: a non-Latin-1 provider is percent-encoded in the header; CR/LF in routed.provider is 400 and stores nothing", async () => {
    const ok = await resolve(freshId("r15-utf8"), big(), { routed: { ...SIMPLE, provider: "prövider 東" } });
    expect(ok.status).toBe(200);
    expect(ok.sticky).toBe("activated;provider=pr%C3%B6vider%20%E6%9D%B1;ttl=300s");
    const explicit = await call("POST", "/v1/resolve", { body: { sessionId: freshId("r15-utf8"), body: { model: "東/x", messages: big() } } });
    expect(explicit.headers.get("x-session-cache-sticky")).toBe("activated;provider=%E6%9D%B1;ttl=300s");
    const id = freshId("r15-crlf");
    const bad = await resolve(id, big(), { routed: { ...SIMPLE, provider: "p\r\nx-evil: 1" } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-evil")).toBeNull();
    expect((await call("GET", sessionPath(id))).status).toBe(404);
  });

  it("holds: __proto__ and constructor as providers take the default TTL, and PROVIDER_CACHE_TTLS can name them without touching any prototype", async () => {
    for (const model of ["__proto__/x", "constructor/x", "toString/x"]) {
      const res = await call("POST", "/v1/resolve", { body: { sessionId: freshId("r15-proto"), body: { model, messages: big() } } });
      expect(res.headers.get("x-session-cache-sticky"), model).toBe(`activated;provider=${model.split("/")[0]};ttl=300s`);
    }
    const ttls = parseConfig({ PROVIDER_CACHE_TTLS: '{"__proto__": 1000, "constructor": 2000}' }).providerCacheTtls;
    expect(cacheTtlMs("__proto__", ttls)).toBe(1000);
    expect(cacheTtlMs("constructor", ttls)).toBe(2000);
    expect(cacheTtlMs("anthropic", ttls)).toBe(5 * MINUTE);
    expect(cacheTtlMs("hasOwnProperty", ttls)).toBe(5 * MINUTE);
    expect(({} as Record<string, unknown>).constructor).toBe(Object);
  });
});

describe("review 15: stickiness and the pin when the model moves outside resolve", () => {
  // DEFECT: POST /v1/sessions/{id}/escalate (and PUT /v1/sessions/{id} with a
  // new model) move the session's model but keep the deployment pinned for the
  // old model and the old model's stickiness. The next resolve sees no change of
  // model (it compares with the stored entry), so: it answers the old model's
  // deployment for the new model, against "until the model changes" (the GET
  // view after the escalate already shows model kimi-k2.5 with deployment d1);
  // and it answers cacheSticky: true for a model whose cache was never warmed,
  // suppressing a routed upgrade, against "the new model's cache is cold, so the
  // session stays sticky only if that request is large".
  // Proposed fix: in src/session/entry.ts, clear `sticky` and `deployment` in
  // applyEscalate and applySet whenever they change the model; and in the resolve
  // rule pin `req.deployment` when the live entry has no pin (so the first
  // resolve after such a change pins its own deployment, as the request that
  // changed the model would have).
  it("DEFECT: after the escalate command moves the model, the next resolve is not sticky for the old model's cache and does not carry its deployment", async () => {
    const id = freshId("r15-esc");
    await resolve(id, big(), { routed: { ...SIMPLE, deployment: "d1" } });
    const escalated = await call("POST", sessionPath(id, "/escalate"));
    expect(escalated.json).toMatchObject({ model: "kimi-k2.5", tier: "MEDIUM" });
    const next = await resolve(id, [user("small")], { routed: { ...COMPLEX, deployment: "d2" } });
    expect(next.json.cacheSticky).toBe(false);
    expect(next.json.deployment).not.toBe("d1");
    // Not sticky, so the routed upgrade moves the session, and the change of model pins this request's deployment.
    expect(next.json).toMatchObject({ model: COMPLEX.model, tier: "COMPLEX", deployment: "d2" });
  });

  it("DEFECT: after PUT moves the model, the next resolve is not sticky for the old model's cache and does not carry its deployment", async () => {
    const id = freshId("r15-put");
    await resolve(id, big(), { routed: { ...SIMPLE, deployment: "d1" } });
    expect((await call("PUT", sessionPath(id), { body: { model: "kimi-k2.5", tier: "MEDIUM" } })).json).toMatchObject({
      model: "kimi-k2.5",
      userExplicit: false,
    });
    const next = await resolve(id, [user("small")], { routed: { ...COMPLEX, deployment: "d2" } });
    expect(next.json.cacheSticky).toBe(false);
    expect(next.json.deployment).not.toBe("d1");
    expect(next.json).toMatchObject({ model: COMPLEX.model, tier: "COMPLEX", deployment: "d2" });
  });

  it("holds: an explicit model switch in resolve drops the old stickiness and pins that request's deployment", async () => {
    const id = freshId("r15-switch");
    await resolve(id, big(), { routed: { ...SIMPLE, deployment: "d1" } });
    const res = await call("POST", "/v1/resolve", {
      body: { sessionId: id, body: { model: "claude-sonnet-4", messages: [user("s")] }, routed: { ...SIMPLE, deployment: "d2" } },
    });
    expect(res.json).toMatchObject({ model: "claude-sonnet-4", cacheSticky: false, deployment: "d2", rebound: false });
  });
});

describe("review 15: stickiness at the TTL boundary", () => {
  it("holds: vllm (10 minutes) is sticky idle exactly 10 minutes and not 1 ms later; a cleared session starts cold", async () => {
    const routed = { ...SIMPLE, provider: "vllm" };
    const id = freshId("r15-vllm");
    expect((await resolve(id, big(), { routed })).sticky).toBe("activated;provider=vllm;ttl=600s");
    testClock.advance(10 * MINUTE);
    expect((await resolve(id, [user("s")], { routed: { ...COMPLEX, provider: "vllm" } })).json).toMatchObject({ model: SIMPLE.model, cacheSticky: true });
    testClock.advance(10 * MINUTE + 1);
    expect((await resolve(id, [user("t")], { routed: { ...COMPLEX, provider: "vllm" } })).json).toMatchObject({ model: COMPLEX.model, cacheSticky: false });
    const cleared = freshId("r15-clear");
    await resolve(cleared, big());
    await call("DELETE", sessionPath(cleared));
    expect((await resolve(cleared, [user("s")], { routed: COMPLEX })).json).toMatchObject({ pinned: false, cacheSticky: false });
  });
});

describe("review 15: failover", () => {
  // DEFECT (contract wording): the issue says "If it matches the pin, the pin
  // moves to routed.deployment and the answer says rebound: true", with no
  // exception. When the same request also changes the model (here a routed
  // upgrade), the pin moves to routed.deployment but the answer says
  // rebound: false, so a gateway that watches `rebound` to stop sending traffic
  // to a failed deployment misses this one.
  // Proposed fix: in the resolve rule, compute
  // `rebound = live?.deployment !== undefined && req.failover === live.deployment`
  // independently of modelChanged (the pin moves in both cases).
  it("DEFECT: a failover that matches the pin says rebound: true even when the same request changes the model", async () => {
    const id = freshId("r15-fo-move");
    await resolve(id, [user("a")], { routed: { ...SIMPLE, deployment: "d1" } });
    const res = await resolve(id, [user("b")], { routed: { ...COMPLEX, deployment: "d2" }, failover: { deployment: "d1" } });
    expect(res.json).toMatchObject({ model: COMPLEX.model, deployment: "d2" });
    expect(res.json.rebound).toBe(true);
  });

  it("holds: a failover with no pin rebinds nothing (the session takes the deployment it is sent, as any unpinned one does); a sticky session rebinds its deployment and keeps its model and stickiness", async () => {
    const none = freshId("r15-fo-none");
    await resolve(none, [user("a")]);
    const res = await resolve(none, [user("b")], { routed: { ...SIMPLE, deployment: "d2" }, failover: { deployment: "d1" } });
    expect(res.json).toMatchObject({ deployment: "d2", rebound: false });
    const sticky = freshId("r15-fo-sticky");
    await resolve(sticky, big(), { routed: { ...SIMPLE, deployment: "d1" } });
    const moved = await resolve(sticky, [user("b")], { routed: { ...COMPLEX, deployment: "d2" }, failover: { deployment: "d1" } });
    expect(moved.json).toMatchObject({ model: SIMPLE.model, cacheSticky: true, deployment: "d2", rebound: true });
    expect((await read(sticky)).deployment).toBe("d2");
  });
});

describe("review 15: the cache key", () => {
  it("holds: a session created with PUT gets its key on its first resolve, and keeps it", async () => {
    const id = freshId("r15-put-key");
    await call("PUT", sessionPath(id), { body: { model: "kimi-k2.5", tier: "MEDIUM" } });
    expect((await read(id)).cacheKey).toBeNull();
    const a = (await resolve(id, [user("a")])).json.cacheKey;
    expect(a).toMatch(/^ck_[A-Za-z0-9_-]{16}$/);
    expect((await resolve(id, [user("b")])).json.cacheKey).toBe(a);
    expect((await read(id)).cacheKey).toBe(a);
  });
});

describe("review 15: session IDs coding agents send", () => {
  it("holds: one Codex UUID in two tenants is two sessions with two cache keys", async () => {
    const uuid = crypto.randomUUID();
    const input = { headers: { session_id: uuid }, body: { model: "auto", messages: [user("hi")] }, routed: SIMPLE };
    const [a, b] = [await rpcResolve(input, "r15-t-one"), await rpcResolve(input, "r15-t-two")];
    expect(a.json.ok).toMatchObject({ sessionId: uuid, source: "header", pinned: false });
    expect(b.json.ok).toMatchObject({ sessionId: uuid, source: "header", pinned: false });
    expect(a.json.ok.cacheKey).not.toBe(b.json.ok.cacheKey);
  });

  it("holds: with a user named, one value from two sources, or from two users, is four sessions", async () => {
    const uuid = crypto.randomUUID();
    const ids = new Set<string>();
    for (const who of ["alice", "bob"]) {
      const codex = await resolve(undefined, [user("hi")], { headers: { "thread-id": uuid } }, { user: who });
      const key = await resolve(undefined, [user("hi")], {}, { user: who, prompt_cache_key: uuid });
      expect(codex.json.source).toBe("header");
      expect(key.json.source).toBe("body");
      ids.add(codex.json.sessionId).add(key.json.sessionId);
    }
    expect(ids.size).toBe(4);
    expect(ids.has(uuid)).toBe(false);
  });

  it("holds: malformed Claude Code and Codex values, a 65-character prompt_cache_key and a 1 MB header fall through to derivation with 200", async () => {
    const hex = "a".repeat(64);
    const junk: [Record<string, unknown>, Record<string, string>][] = [
      [{ metadata: { user_id: "{" } }, {}],
      [{ metadata: { user_id: JSON.stringify({ device_id: hex, session_id: "not-a-uuid" }) } }, {}],
      [{ metadata: { user_id: JSON.stringify({ device_id: hex, account_uuid: null, session_id: crypto.randomUUID() }) } }, {}],
      [{ metadata: { user_id: `user_${hex}_account__session_${crypto.randomUUID()}x` } }, {}],
      [{ metadata: { user_id: "{" + '"a":['.repeat(40) } }, {}],
      [{ prompt_cache_key: "k".repeat(65) }, {}],
      [{ prompt_cache_key: "a\u200bb" }, {}],
      [{}, { "x-claude-code-session-id": "x".repeat(1_000_000) }],
      [{}, { session_id: ` ${crypto.randomUUID()}x ` }],
    ];
    for (const [bodyExtra, headers] of junk) {
      const res = await resolve(undefined, [user(`first ${crypto.randomUUID()}`)], { headers }, bodyExtra);
      expect(res.status, JSON.stringify(bodyExtra)).toBe(200);
      expect(res.json.source, JSON.stringify(bodyExtra)).toBe("derived");
    }
  });
});
