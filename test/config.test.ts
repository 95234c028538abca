import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/session/config";
import type { SessionError } from "../src/session/errors";

function configError(vars: Record<string, unknown>): SessionError {
  try {
    parseConfig(vars);
  } catch (err) {
    return err as SessionError;
  }
  throw new Error("expected config_invalid");
}

describe("config", () => {
  it("has the documented defaults", () => {
    expect(parseConfig({})).toEqual({
      enabled: true,
      timeoutMs: 1_800_000,
      sessionHeader: "x-session-id",
      tierModels: {},
      strikeThreshold: 2,
      routingProfiles: ["auto", "eco", "premium"],
      budgetMicros: undefined,
      budgetMode: "strict",
      reservationTtlMs: 600_000,
      maxInFlight: undefined,
      ratePerMin: undefined,
      providerCacheTtls: {
        anthropic: 300_000,
        openai: 300_000,
        deepseek: 300_000,
        google: 300_000,
        groq: 300_000,
        vllm: 600_000,
        dosrouter: 600_000,
        default: 300_000,
      },
      registryShards: 16,
      namespaceHeader: undefined,
      statsCursorKey: undefined,
      registryTimeoutMs: 5000,
      clearBudgetMs: 10_000,
      clearBatchSize: 256,
      sessionIdSources: ["claude-code", "codex", "prompt-cache-key"],
    });
  });

  it("parses string vars as --var, .dev.vars and the dashboard give them", () => {
    const c = parseConfig({
      SESSION_ENABLED: "false",
      SESSION_TIMEOUT_MS: "5000",
      SESSION_HEADER: "X-Conversation-Id",
      TIER_MODELS: '{"SIMPLE":"a","REASONING":"d"}',
      STRIKE_THRESHOLD: "3",
      ROUTING_PROFILES: "auto, smart",
      SESSION_BUDGET_MICROS: "1000000",
      SESSION_BUDGET_MODE: "graceful",
      RESERVATION_TTL_MS: "30000",
      SESSION_MAX_IN_FLIGHT: "8",
      SESSION_RATE_PER_MIN: "120",
      PROVIDER_CACHE_TTLS: '{"anthropic":3600000,"my-vllm":900000}',
      REGISTRY_SHARDS: "256",
      SESSION_NAMESPACE_HEADER: "X-Tenant-Id",
      STATS_CURSOR_KEY: "k".repeat(32),
      REGISTRY_TIMEOUT_MS: "250",
      CLEAR_BUDGET_MS: "1",
      CLEAR_BATCH_SIZE: "2",
      SESSION_ID_SOURCES: " codex , claude-code",
    });
    expect(c).toEqual({
      enabled: false,
      timeoutMs: 5000,
      sessionHeader: "x-conversation-id",
      tierModels: { SIMPLE: "a", REASONING: "d" },
      strikeThreshold: 3,
      routingProfiles: ["auto", "smart"],
      budgetMicros: 1_000_000,
      budgetMode: "graceful",
      reservationTtlMs: 30_000,
      maxInFlight: 8,
      ratePerMin: 120,
      providerCacheTtls: {
        anthropic: 3_600_000,
        openai: 300_000,
        deepseek: 300_000,
        google: 300_000,
        groq: 300_000,
        vllm: 600_000,
        dosrouter: 600_000,
        default: 300_000,
        "my-vllm": 900_000,
      },
      registryShards: 256,
      namespaceHeader: "x-tenant-id",
      statsCursorKey: "k".repeat(32),
      registryTimeoutMs: 250,
      clearBudgetMs: 1,
      clearBatchSize: 2,
      sessionIdSources: ["codex", "claude-code"],
    });
  });

  it("accepts TIER_MODELS as an object (a wrangler.toml table) and ROUTING_PROFILES as JSON", () => {
    const c = parseConfig({ TIER_MODELS: { MEDIUM: "kimi-k2.5" }, ROUTING_PROFILES: '["auto"]', SESSION_ENABLED: true, SESSION_TIMEOUT_MS: 10 });
    expect(c.tierModels).toEqual({ MEDIUM: "kimi-k2.5" });
    expect(c.routingProfiles).toEqual(["auto"]);
    expect(c.enabled).toBe(true);
    expect(c.timeoutMs).toBe(10);
  });

  it.each([
    ["SESSION_ENABLED", "yes"],
    ["SESSION_TIMEOUT_MS", "0"],
    ["SESSION_TIMEOUT_MS", "30m"],
    ["SESSION_TIMEOUT_MS", "1e3"],
    ["SESSION_HEADER", "bad header"],
    ["TIER_MODELS", "{not json"],
    ["TIER_MODELS", '["SIMPLE"]'],
    ["TIER_MODELS", '{"TINY":"x"}'],
    ["TIER_MODELS", '{"SIMPLE":""}'],
    ["STRIKE_THRESHOLD", "0"],
    ["ROUTING_PROFILES", "[]"],
    ["SESSION_BUDGET_MICROS", "-1"],
    ["SESSION_BUDGET_MODE", "soft"],
    ["SESSION_BUDGET_MODE", "STRICT"],
    ["RESERVATION_TTL_MS", "0"],
    ["RESERVATION_TTL_MS", "86400001"],
    ["SESSION_MAX_IN_FLIGHT", "0"],
    // Each open reservation is in every write of its session: at most 256.
    ["SESSION_MAX_IN_FLIGHT", "257"],
    ["SESSION_RATE_PER_MIN", "0"],
    ["SESSION_RATE_PER_MIN", "1.5"],
    ["SESSION_RATE_PER_MIN", "60001"],
    ["PROVIDER_CACHE_TTLS", "{not json"],
    ["PROVIDER_CACHE_TTLS", "[300000]"],
    ["PROVIDER_CACHE_TTLS", '{"anthropic":0}'],
    ["PROVIDER_CACHE_TTLS", '{"anthropic":"300000"}'],
    ["PROVIDER_CACHE_TTLS", '{"anthropic":86400001}'],
    ["PROVIDER_CACHE_TTLS", '{"a/b":1000}'],
    ["PROVIDER_CACHE_TTLS", '{"":1000}'],
    ["REGISTRY_SHARDS", "0"],
    ["REGISTRY_SHARDS", "257"],
    ["SESSION_NAMESPACE_HEADER", "x tenant"],
    ["REGISTRY_TIMEOUT_MS", "0"],
    ["CLEAR_BUDGET_MS", "-1"],
    // A pass starts a batch only while its budget lasts: 0 would never clear anything.
    ["CLEAR_BUDGET_MS", "0"],
    ["CLEAR_BATCH_SIZE", "0"],
    ["STATS_CURSOR_KEY", "k".repeat(31)],
    ["STATS_CURSOR_KEY", "k".repeat(1025)],
    ["STATS_CURSOR_KEY", "k".repeat(32) + " k"],
    ["SESSION_ID_SOURCES", "claude"],
    ["SESSION_ID_SOURCES", "codex,Codex"],
    ["SESSION_ID_SOURCES", "codex,codex"],
    ["SESSION_ID_SOURCES", "codex,"],
    ["SESSION_ID_SOURCES", "none,codex"],
    ["SESSION_ID_SOURCES", "[]"],
    ["SESSION_ID_SOURCES", '["codex",1]'],
    ["SESSION_ID_SOURCES", "[codex]"],
  ])("rejects %s=%s with config_invalid naming the var", (name, value) => {
    const err = configError({ [name]: value });
    expect(err.code).toBe("config_invalid");
    expect(err.message).toContain(name);
  });

  it("PROVIDER_CACHE_TTLS overrides the defaults one provider at a time, and a provider named __proto__ is a provider", () => {
    const c = parseConfig({ PROVIDER_CACHE_TTLS: '{"default":60000,"__proto__":1000}' });
    expect(c.providerCacheTtls.default).toBe(60_000);
    expect(c.providerCacheTtls.anthropic).toBe(300_000);
    expect(Object.getOwnPropertyDescriptor(c.providerCacheTtls, "__proto__")?.value).toBe(1000);
  });

  it("reads SESSION_ID_SOURCES as a comma list, a JSON array or a wrangler.toml array, and none as off", () => {
    expect(parseConfig({ SESSION_ID_SOURCES: "prompt-cache-key" }).sessionIdSources).toEqual(["prompt-cache-key"]);
    expect(parseConfig({ SESSION_ID_SOURCES: '["codex", "prompt-cache-key"]' }).sessionIdSources).toEqual(["codex", "prompt-cache-key"]);
    expect(parseConfig({ SESSION_ID_SOURCES: ["claude-code"] }).sessionIdSources).toEqual(["claude-code"]);
    expect(parseConfig({ SESSION_ID_SOURCES: "none" }).sessionIdSources).toEqual([]);
    expect(parseConfig({ SESSION_ID_SOURCES: "" }).sessionIdSources).toEqual(["claude-code", "codex", "prompt-cache-key"]);
    expect(configError({ SESSION_ID_SOURCES: ["codex", "x-session-id"] }).message).toContain("SESSION_ID_SOURCES");
  });

  it("rejects an admin token equal to the API token, and names neither value", () => {
    const err = configError({ SESSION_API_TOKEN: "same-secret", SESSION_ADMIN_TOKEN: "same-secret" });
    expect(err.code).toBe("config_invalid");
    expect(err.message).toContain("SESSION_ADMIN_TOKEN");
    expect(JSON.stringify(err.toBody())).not.toContain("same-secret");
    expect(parseConfig({ SESSION_API_TOKEN: "one", SESSION_ADMIN_TOKEN: "two" }).enabled).toBe(true);
  });
});
