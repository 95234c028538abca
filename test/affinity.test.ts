/**
 * Prompt-cache affinity (issue 15): cache-sticky sessions, the deployment pin
 * with failover, and the cache key. Expected values come from the contract:
 * large is one message of at least 9,000 UTF-8 bytes or 15,000 in all; the
 * provider is the model ID's prefix before "/", else `default`; TTLs are
 * 5 minutes (anthropic, openai, deepseek, google, groq, default) or 10
 * (vllm, dosrouter).
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { freshId } from "./support/back-ends";
import { call, sessionPath } from "./support/http";
import { registryCaughtUp } from "./support/converge";
import { testClock } from "./support/worker";

const MINUTE = 60_000;
const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const COMPLEX = { model: "gemini-3.1-pro", tier: "COMPLEX" };

type Message = { role: string; content: string };
const user = (content: string): Message => ({ role: "user", content });

async function resolve(id: string, messages: Message[], extra: Record<string, unknown> = {}) {
  const res = await call("POST", "/v1/resolve", { body: { sessionId: id, body: { model: "auto", messages }, routed: SIMPLE, ...extra } });
  return { ...res, sticky: res.headers.get("x-session-cache-sticky") };
}

describe("a large request makes the session cache-sticky", () => {
  it("one message of 8,999 bytes is not large; 9,000 is, and the answer says so with the header", async () => {
    const small = await resolve(freshId("small"), [user("a".repeat(8_999))]);
    expect(small.json.cacheSticky).toBe(false);
    expect(small.sticky).toBeNull();
    const large = await resolve(freshId("large"), [user("a".repeat(9_000))]);
    expect(large.json.cacheSticky).toBe(true);
    expect(large.sticky).toBe("activated;provider=default;ttl=300s");
  });

  it("counts UTF-8 bytes, not characters: 3,000 euro signs are 9,000 bytes", async () => {
    expect((await resolve(freshId("euro"), [user("€".repeat(2_999) + "ab")])).json.cacheSticky).toBe(false);
    expect((await resolve(freshId("euro"), [user("€".repeat(3_000))])).json.cacheSticky).toBe(true);
  });

  it("messages of 14,999 bytes in all are not large; 15,000 are", async () => {
    const parts = (total: number) => [user("a".repeat(7_000)), { role: "assistant", content: "b".repeat(5_000) }, user("c".repeat(total - 12_000))];
    expect((await resolve(freshId("sum"), parts(14_999))).json.cacheSticky).toBe(false);
    expect((await resolve(freshId("sum"), parts(15_000))).json.cacheSticky).toBe(true);
  });

  it("counts Anthropic's system prompt and tool results, which is where coding agents' context is", async () => {
    const id = freshId("anthropic");
    const body = {
      model: "auto",
      system: [{ type: "text", text: "s".repeat(9_000) }],
      messages: [user("hi")],
    };
    const res = await call("POST", "/v1/resolve", { body: { sessionId: id, body, routed: SIMPLE } });
    expect(res.json.cacheSticky).toBe(true);
    const tool = {
      model: "auto",
      messages: [user("read it"), { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: [{ type: "text", text: "f".repeat(9_000) }] }] }],
    };
    expect((await call("POST", "/v1/resolve", { body: { sessionId: freshId("tool"), body: tool, routed: SIMPLE } })).json.cacheSticky).toBe(true);
  });

  it("names the model's provider and its TTL: the prefix before '/', routed.provider when given", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ model: "anthropic/claude-sonnet-4", tier: "SIMPLE" }, "activated;provider=anthropic;ttl=300s"],
      [{ model: "vllm/qwen3-coder", tier: "SIMPLE" }, "activated;provider=vllm;ttl=600s"],
      [{ model: "dosrouter/auto/x", tier: "SIMPLE" }, "activated;provider=dosrouter;ttl=600s"],
      [{ model: "kimi-k2.5", tier: "SIMPLE", provider: "groq" }, "activated;provider=groq;ttl=300s"],
      [{ model: "mystery/x", tier: "SIMPLE" }, "activated;provider=mystery;ttl=300s"],
    ];
    for (const [routed, header] of cases) {
      expect((await resolve(freshId("provider"), [user("x".repeat(9_000))], { routed })).sticky).toBe(header);
    }
  });

  it("says activated only on the request that activates it", async () => {
    const id = freshId("once");
    expect((await resolve(id, [user("x".repeat(9_000))])).sticky).not.toBeNull();
    const again = await resolve(id, [user("x".repeat(9_000)), user("more")]);
    expect(again.json.cacheSticky).toBe(true);
    expect(again.sticky).toBeNull();
  });
});

describe("while sticky", () => {
  it("a routed upgrade keeps the model until the session has been idle longer than the provider's TTL", async () => {
    const id = freshId("keep");
    const big = [user("x".repeat(9_000))];
    await resolve(id, big);
    testClock.advance(5 * MINUTE);
    // Idle exactly the TTL: still warm. The upgrade does not move the model.
    const kept = await resolve(id, [...big, user("harder")], { routed: COMPLEX });
    expect(kept.json).toMatchObject({ model: SIMPLE.model, tier: "SIMPLE", cacheSticky: true });
    testClock.advance(5 * MINUTE + 1);
    // Idle longer than the TTL: the cache is cold, and the upgrade moves the session.
    const moved = await resolve(id, [user("short")], { routed: COMPLEX });
    expect(moved.json).toMatchObject({ model: COMPLEX.model, tier: "COMPLEX", cacheSticky: false });
  });

  it("a loop escalation still moves the model: a stuck agent must move", async () => {
    const id = freshId("loop");
    const stuck = [user("x".repeat(9_000))];
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await resolve(id, stuck)).json);
    expect(answers[2]).toMatchObject({ escalated: true, tier: "MEDIUM", model: "kimi-k2.5" });
    // The escalated model's cache is cold, but this request is large: sticky again, for the new model.
    expect(answers[2].cacheSticky).toBe(true);
  });

  it("PROVIDER_CACHE_TTLS is read through the configuration (its parsing is in test/config.test.ts)", async () => {
    const { configFor } = await import("../src/session/config");
    expect(configFor(env).providerCacheTtls).toMatchObject({ anthropic: 300_000, vllm: 600_000, default: 300_000 });
  });
});

describe("the deployment pin", () => {
  it("the request that creates the session pins its deployment; later answers keep it whatever routed says", async () => {
    const id = freshId("dep");
    expect((await resolve(id, [user("a")], { routed: { ...SIMPLE, deployment: "us-east" } })).json).toMatchObject({ deployment: "us-east", rebound: false });
    expect((await resolve(id, [user("b")], { routed: { ...SIMPLE, deployment: "eu-west" } })).json.deployment).toBe("us-east");
    expect((await resolve(id, [user("c")])).json.deployment).toBe("us-east");
    expect((await call("GET", sessionPath(id))).json.deployment).toBe("us-east");
  });

  it("a change of model pins that request's deployment", async () => {
    const id = freshId("dep-move");
    await resolve(id, [user("a")], { routed: { ...SIMPLE, deployment: "d1" } });
    const upgraded = await resolve(id, [user("b")], { routed: { ...COMPLEX, deployment: "d2" } });
    expect(upgraded.json).toMatchObject({ model: COMPLEX.model, deployment: "d2" });
  });

  it("a failover from the pinned deployment moves the pin to routed.deployment and says rebound; any other failover does not", async () => {
    const id = freshId("failover");
    await resolve(id, [user("a")], { routed: { ...SIMPLE, deployment: "d1" } });
    const other = await resolve(id, [user("b")], { routed: { ...SIMPLE, deployment: "d2" }, failover: { deployment: "d9" } });
    expect(other.json).toMatchObject({ deployment: "d1", rebound: false });
    const moved = await resolve(id, [user("c")], { routed: { ...SIMPLE, deployment: "d2" }, failover: { deployment: "d1" } });
    expect(moved.json).toMatchObject({ deployment: "d2", rebound: true });
    expect((await resolve(id, [user("d")], { routed: { ...SIMPLE, deployment: "d3" } })).json).toMatchObject({ deployment: "d2", rebound: false });
  });

  it("a session with no deployment yet (created by PUT) pins the first one it is sent", async () => {
    const id = freshId("dep-late");
    await call("PUT", sessionPath(id), { body: { model: SIMPLE.model, tier: "SIMPLE" } });
    expect((await call("GET", sessionPath(id))).json.deployment).toBeNull();
    expect((await resolve(id, [user("a")], { routed: { ...SIMPLE, deployment: "d1" } })).json.deployment).toBe("d1");
    expect((await resolve(id, [user("b")], { routed: { ...SIMPLE, deployment: "d2" } })).json.deployment).toBe("d1");
  });

  it("a failover is the same request again: it records no loop hash, so a retried request is no strike", async () => {
    const id = freshId("failover-strike");
    const same = [user("fix the test")];
    await resolve(id, same, { routed: { ...SIMPLE, deployment: "d1" } });
    const retried = await resolve(id, same, { routed: { ...SIMPLE, deployment: "d2" }, failover: { deployment: "d1" } });
    expect(retried.json).toMatchObject({ rebound: true, strikes: 0, escalated: false });
    // The agent's own second identical request is its first strike.
    expect((await resolve(id, same, { routed: { ...SIMPLE, deployment: "d2" } })).json.strikes).toBe(1);
  });

  it("50 parallel first requests with 50 deployments are decided once: every answer is the same", async () => {
    const id = freshId("race");
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call("POST", "/v1/resolve", {
          // Distinct messages: fifty identical ones would be a loop, and escalate.
          body: {
            sessionId: id,
            body: { model: "auto", messages: [user(`go ${i}`)] },
            routed: { model: `model-${i}`, tier: "SIMPLE", deployment: `dep-${i}` },
          },
        }),
      ),
    );
    const decided = answers.map((a) => [a.json.model, a.json.deployment, a.json.cacheKey].join(" "));
    expect(new Set(decided).size).toBe(1);
    expect(answers.filter((a) => a.json.pinned === false)).toHaveLength(1);
  });

  it("rejects a failover without routed.deployment, and bad deployment names, with 400 and no change", async () => {
    const id = freshId("dep-bad");
    await resolve(id, [user("a")], { routed: { ...SIMPLE, deployment: "d1" } });
    const before = (await call("GET", sessionPath(id))).json;
    const bad: Record<string, unknown>[] = [
      { failover: { deployment: "d1" } },
      { failover: "d1", routed: { ...SIMPLE, deployment: "d2" } },
      { failover: { deployment: "" }, routed: { ...SIMPLE, deployment: "d2" } },
      { routed: { ...SIMPLE, deployment: "" } },
      { routed: { ...SIMPLE, deployment: "x".repeat(257) } },
      { routed: { ...SIMPLE, deployment: "a\nb" } },
      { routed: { ...SIMPLE, provider: 7 } },
    ];
    for (const extra of bad) {
      const res = await resolve(id, [user("b")], extra);
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.json.error.code).toBe("invalid_request");
    }
    expect((await call("GET", sessionPath(id))).json).toEqual(before);
  });
});

describe("the cache key", () => {
  it("is stable for the session, differs across sessions, and is not the session ID", async () => {
    const a = freshId("key");
    const b = freshId("key");
    const keyA = (await resolve(a, [user("1")])).json.cacheKey;
    expect(keyA).toEqual(expect.any(String));
    expect(keyA).not.toContain(a);
    expect((await resolve(a, [user("2")], { routed: COMPLEX })).json.cacheKey).toBe(keyA);
    expect((await call("GET", sessionPath(a))).json.cacheKey).toBe(keyA);
    expect((await resolve(b, [user("1")])).json.cacheKey).not.toBe(keyA);
  });

  it("is no function of the session ID: the same ID gets a new key in a new incarnation and in another tenant's scope", async () => {
    const id = freshId("reborn");
    const first = (await resolve(id, [user("1")])).json.cacheKey;
    await call("DELETE", sessionPath(id));
    const second = (await resolve(id, [user("1")])).json.cacheKey;
    expect(second).not.toBe(first);
    const rpc = (namespace: string) =>
      env.GATEWAY.fetch("http://gateway/", {
        method: "POST",
        body: JSON.stringify({ method: "resolve", namespace, args: [{ sessionId: id, body: { model: "auto", messages: [user("1")] }, routed: SIMPLE }] }),
      }).then((r) => r.json() as Promise<{ ok: { cacheKey: string } }>);
    const [t1, t2] = [await rpc("tenant-one"), await rpc("tenant-two")];
    expect(new Set([second, t1.ok.cacheKey, t2.ok.cacheKey]).size).toBe(3);
  });

  it("a resolve without a session has none", async () => {
    const res = await call("POST", "/v1/resolve", { body: { body: { model: "auto", messages: [] }, routed: { ...SIMPLE, deployment: "d" } } });
    expect(res.json).toMatchObject({ sessionId: null, cacheKey: null, cacheSticky: false, deployment: "d" });
  });
});

describe("affinity costs no write of its own", () => {
  it("a sticky session's requests that change nothing else are one storage write each, no alarm, no registry call", async () => {
    const id = freshId("hot-sticky");
    const big = [user("x".repeat(9_000))];
    await resolve(id, big, { routed: { ...SIMPLE, deployment: "d1" } });
    await registryCaughtUp();
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName(id));
    const spies = await runInDurableObject(stub, (_obj, state) => ({ put: vi.spyOn(state.storage.kv, "put"), alarm: vi.spyOn(state.storage, "setAlarm") }));
    for (let turn = 0; turn < 4; turn++) await resolve(id, [...big, user(`turn ${turn}`)], { routed: { ...COMPLEX, deployment: "d2" } });
    expect(spies.put).toHaveBeenCalledTimes(4);
    expect(spies.alarm).not.toHaveBeenCalled();
  });
});
