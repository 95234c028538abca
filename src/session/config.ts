import { DEFAULT_SESSION_HEADER } from "./hashing";
import { SessionError } from "./errors";
import { DEFAULT_PROVIDER_CACHE_TTLS } from "./affinity";
import { MAX_OPEN_RESERVATIONS, type BudgetMode } from "./budget";
import { isRoutedTier } from "./tiers";
import type { RoutedTier } from "./types";

/** Service configuration, parsed once from Worker vars (every var may arrive as a string). */
export interface Config {
  enabled: boolean;
  timeoutMs: number;
  sessionHeader: string;
  tierModels: Partial<Record<RoutedTier, string>>;
  strikeThreshold: number;
  routingProfiles: readonly string[];
  budgetMicros: number | undefined;
  /** At the budget: refuse (`strict`), or answer for a cheaper tier that fits (`graceful`). */
  budgetMode: BudgetMode;
  /** How long a reservation waits for its settle before it is charged in full. */
  reservationTtlMs: number;
  /** Most reservations a session holds open at once; undefined: MAX_OPEN_RESERVATIONS. */
  maxInFlight: number | undefined;
  /** Resolves a session may make a minute (a token bucket of that size); undefined: no limit. */
  ratePerMin: number | undefined;
  /** Each provider's prompt-cache TTL in ms (`default` for the rest): the defaults, overridden by PROVIDER_CACHE_TTLS. */
  providerCacheTtls: Readonly<Record<string, number>>;
  registryShards: number;
  /** When set, every session call must name its tenant in this header; sessions are scoped by it. */
  namespaceHeader: string | undefined;
  /** Secret that seals stats cursors; undefined means the key generated and kept in registry shard 0. */
  statsCursorKey: string | undefined;
  /** How long a session waits for its registry shard before answering 503 `registry_unavailable`. */
  registryTimeoutMs: number;
  /** Wall time one clear-all pass spends in a shard before the shard's alarm takes over the rest. */
  clearBudgetMs: number;
  /** Rows a clear-all pass reads from a shard at a time. */
  clearBatchSize: number;
  /** Where resolve looks, in order, for a session ID a coding agent sent, after `sessionId` and SESSION_HEADER; empty: nowhere. */
  sessionIdSources: readonly SessionIdSourceName[];
}

/** The places a coding agent's own session ID can be found (src/requests/session-sources.ts reads them). */
export const SESSION_ID_SOURCE_NAMES = ["claude-code", "codex", "prompt-cache-key"] as const;
export type SessionIdSourceName = (typeof SESSION_ID_SOURCE_NAMES)[number];
/**
 * The tool-specific formats first (a Claude Code or Codex ID is a UUID its tool made for one
 * conversation); `prompt_cache_key` last, since any client may set it to anything.
 */
export const DEFAULT_SESSION_ID_SOURCES: readonly SessionIdSourceName[] = SESSION_ID_SOURCE_NAMES;

/** Reference `DefaultConfig`: 30 minutes idle. */
export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;
/** Reference proxy escalates once strikes reach 2, i.e. on the third identical request. */
export const DEFAULT_STRIKE_THRESHOLD = 2;
export const DEFAULT_ROUTING_PROFILES = ["auto", "eco", "premium"] as const;
export const DEFAULT_REGISTRY_SHARDS = 16;
export const MAX_REGISTRY_SHARDS = 256;
/**
 * Shortest STATS_CURSOR_KEY: 32 characters of a random base64 or hex string carry at least 128 bits,
 * AES-GCM's smallest key. `openssl rand -base64 32` gives 44.
 */
export const MIN_STATS_CURSOR_KEY_LENGTH = 32;
/** Longest STATS_CURSOR_KEY: a bound on what is hashed, far above any generated secret. */
export const MAX_STATS_CURSOR_KEY_LENGTH = 1024;

/**
 * A registry write waits at most this long. A hung shard must not wedge the
 * session object, whose calls are serialised behind the write.
 */
export const DEFAULT_REGISTRY_TIMEOUT_MS = 5_000;
/** An unsettled reservation is charged in full after 10 minutes: longer than any healthy LLM call. */
export const DEFAULT_RESERVATION_TTL_MS = 10 * 60 * 1000;
/** Longest reservation TTL: a day. */
const MAX_RESERVATION_TTL_MS = 24 * 60 * 60 * 1000;
/** Highest SESSION_RATE_PER_MIN: a thousand requests a second. */
const MAX_RATE_PER_MIN = 60_000;
/** Wall time a clear request spends before handing the rest to the shard's alarm: well inside a request's limits. */
export const DEFAULT_CLEAR_BUDGET_MS = 10_000;
/** Rows a clear pass reads at a time. */
export const DEFAULT_CLEAR_BATCH_SIZE = 256;
/** Longest registry timeout and clear budget: a minute, far beyond any healthy call. */
const MAX_TUNING_MS = 60_000;
/** Most rows per clear batch: a SQLite page of rows is a few hundred; more only holds memory. */
const MAX_CLEAR_BATCH_SIZE = 10_000;

export type Vars = Record<string, unknown>;

/** RFC 7230 token: what a header name may contain. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function fail(name: string, problem: string): never {
  throw new SessionError("config_invalid", `${name} ${problem}`, { var: name });
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}

function parseBool(name: string, value: unknown, fallback: boolean): boolean {
  if (!present(value)) return fallback;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  return fail(name, `must be "true" or "false", got ${JSON.stringify(value)}`);
}

function parseInteger(name: string, value: unknown, fallback: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (!present(value)) return fallback;
  const n = typeof value === "number" ? value : typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    return fail(name, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function parseJsonish(name: string, value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return fail(name, "is not valid JSON");
  }
}

function parseTierModels(value: unknown): Config["tierModels"] {
  const name = "TIER_MODELS";
  if (!present(value)) return {};
  const parsed = parseJsonish(name, value);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return fail(name, 'must be a JSON object from tier to model, e.g. {"SIMPLE":"gemini-2.5-flash"}');
  }
  const out: Config["tierModels"] = {};
  for (const [tier, model] of Object.entries(parsed)) {
    if (!isRoutedTier(tier)) fail(name, `has unknown tier ${JSON.stringify(tier)}`);
    if (typeof model !== "string" || model === "") fail(name, `must map ${tier} to a non-empty model name`);
    out[tier] = model;
  }
  return out;
}

function parseProfiles(value: unknown): readonly string[] {
  const name = "ROUTING_PROFILES";
  if (!present(value)) return DEFAULT_ROUTING_PROFILES;
  const parsed = typeof value === "string" && !value.trim().startsWith("[") ? value.split(",").map((s) => s.trim()) : parseJsonish(name, value);
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((p) => typeof p === "string" && p !== "")) {
    return fail(name, 'must be a non-empty list of profile names, e.g. "auto,eco,premium" or ["auto"]');
  }
  return parsed as string[];
}

/** Longest prompt-cache TTL: a day, beyond any provider's. */
const MAX_CACHE_TTL_MS = 24 * 60 * 60 * 1000;
/** Most providers PROVIDER_CACHE_TTLS may name: a bound on what is parsed. */
const MAX_CACHE_TTL_PROVIDERS = 100;

function parseCacheTtls(value: unknown): Readonly<Record<string, number>> {
  const name = "PROVIDER_CACHE_TTLS";
  if (!present(value)) return DEFAULT_PROVIDER_CACHE_TTLS;
  const parsed = parseJsonish(name, value);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return fail(name, 'must be a JSON object from provider to milliseconds, e.g. {"anthropic":300000,"default":300000}');
  }
  const entries = Object.entries(parsed);
  if (entries.length > MAX_CACHE_TTL_PROVIDERS) fail(name, `must name at most ${MAX_CACHE_TTL_PROVIDERS} providers`);
  const out: Record<string, number> = { ...DEFAULT_PROVIDER_CACHE_TTLS };
  for (const [provider, ms] of entries) {
    if (provider === "" || provider.includes("/")) fail(name, `has an invalid provider name ${JSON.stringify(provider)}`);
    if (typeof ms !== "number" || !Number.isSafeInteger(ms) || ms < 1 || ms > MAX_CACHE_TTL_MS) {
      fail(name, `must map ${JSON.stringify(provider)} to an integer from 1 to ${MAX_CACHE_TTL_MS} (ms)`);
    }
    Object.defineProperty(out, provider, { value: ms, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function isSourceName(value: unknown): value is SessionIdSourceName {
  return (SESSION_ID_SOURCE_NAMES as readonly unknown[]).includes(value);
}

function parseSessionIdSources(value: unknown): readonly SessionIdSourceName[] {
  const name = "SESSION_ID_SOURCES";
  if (!present(value)) return DEFAULT_SESSION_ID_SOURCES;
  if (typeof value === "string" && value.trim() === "none") return [];
  const parsed = typeof value === "string" && !value.trim().startsWith("[") ? value.split(",").map((s) => s.trim()) : parseJsonish(name, value);
  const usage = `must be "none" or a list of ${SESSION_ID_SOURCE_NAMES.join(", ")} in the order to try them, e.g. "${SESSION_ID_SOURCE_NAMES.join(",")}"`;
  if (!Array.isArray(parsed) || parsed.length === 0) return fail(name, usage);
  for (const [i, source] of parsed.entries()) {
    if (!isSourceName(source)) return fail(name, `has unknown source ${JSON.stringify(source)}: it ${usage}`);
    if (parsed.indexOf(source) !== i) return fail(name, `names ${source} twice`);
  }
  return parsed as SessionIdSourceName[];
}

function parseBudgetMode(value: unknown): BudgetMode {
  if (!present(value)) return "strict";
  if (value === "strict" || value === "graceful") return value;
  return fail("SESSION_BUDGET_MODE", `must be "strict" or "graceful", got ${JSON.stringify(value)}`);
}

function parseHeader(name: string, value: unknown, fallback: string): string;
function parseHeader(name: string, value: unknown, fallback: undefined): string | undefined;
function parseHeader(name: string, value: unknown, fallback: string | undefined): string | undefined {
  if (!present(value)) return fallback;
  if (typeof value !== "string" || !HEADER_NAME.test(value)) return fail(name, "must be a valid HTTP header name");
  return value.toLowerCase();
}

/** A secret var: validated by shape only, and never echoed in the error. */
function parseSecret(name: string, value: unknown, min: number, max: number): string | undefined {
  if (!present(value)) return undefined;
  if (typeof value !== "string" || value.length < min || value.length > max || /\s/.test(value)) {
    return fail(name, `must be a string of ${min} to ${max} characters without whitespace (e.g. \`openssl rand -base64 32\`)`);
  }
  return value;
}

/** One token for both grants would make every API caller an admin. */
function requireDistinctTokens(vars: Vars): void {
  if (present(vars.SESSION_ADMIN_TOKEN) && vars.SESSION_ADMIN_TOKEN === vars.SESSION_API_TOKEN) {
    fail("SESSION_ADMIN_TOKEN", "must differ from SESSION_API_TOKEN");
  }
}

export function parseConfig(vars: Vars): Config {
  requireDistinctTokens(vars);
  return {
    enabled: parseBool("SESSION_ENABLED", vars.SESSION_ENABLED, true),
    timeoutMs: parseInteger("SESSION_TIMEOUT_MS", vars.SESSION_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, 1)!,
    sessionHeader: parseHeader("SESSION_HEADER", vars.SESSION_HEADER, DEFAULT_SESSION_HEADER),
    tierModels: parseTierModels(vars.TIER_MODELS),
    strikeThreshold: parseInteger("STRIKE_THRESHOLD", vars.STRIKE_THRESHOLD, DEFAULT_STRIKE_THRESHOLD, 1)!,
    routingProfiles: parseProfiles(vars.ROUTING_PROFILES),
    budgetMicros: parseInteger("SESSION_BUDGET_MICROS", vars.SESSION_BUDGET_MICROS, undefined, 0),
    budgetMode: parseBudgetMode(vars.SESSION_BUDGET_MODE),
    reservationTtlMs: parseInteger("RESERVATION_TTL_MS", vars.RESERVATION_TTL_MS, DEFAULT_RESERVATION_TTL_MS, 1, MAX_RESERVATION_TTL_MS)!,
    maxInFlight: parseInteger("SESSION_MAX_IN_FLIGHT", vars.SESSION_MAX_IN_FLIGHT, undefined, 1, MAX_OPEN_RESERVATIONS),
    ratePerMin: parseInteger("SESSION_RATE_PER_MIN", vars.SESSION_RATE_PER_MIN, undefined, 1, MAX_RATE_PER_MIN),
    providerCacheTtls: parseCacheTtls(vars.PROVIDER_CACHE_TTLS),
    registryShards: parseInteger("REGISTRY_SHARDS", vars.REGISTRY_SHARDS, DEFAULT_REGISTRY_SHARDS, 1, MAX_REGISTRY_SHARDS)!,
    namespaceHeader: parseHeader("SESSION_NAMESPACE_HEADER", vars.SESSION_NAMESPACE_HEADER, undefined),
    statsCursorKey: parseSecret("STATS_CURSOR_KEY", vars.STATS_CURSOR_KEY, MIN_STATS_CURSOR_KEY_LENGTH, MAX_STATS_CURSOR_KEY_LENGTH),
    registryTimeoutMs: parseInteger("REGISTRY_TIMEOUT_MS", vars.REGISTRY_TIMEOUT_MS, DEFAULT_REGISTRY_TIMEOUT_MS, 1, MAX_TUNING_MS)!,
    clearBudgetMs: parseInteger("CLEAR_BUDGET_MS", vars.CLEAR_BUDGET_MS, DEFAULT_CLEAR_BUDGET_MS, 1, MAX_TUNING_MS)!,
    clearBatchSize: parseInteger("CLEAR_BATCH_SIZE", vars.CLEAR_BATCH_SIZE, DEFAULT_CLEAR_BATCH_SIZE, 1, MAX_CLEAR_BATCH_SIZE)!,
    sessionIdSources: parseSessionIdSources(vars.SESSION_ID_SOURCES),
  };
}

export const defaultConfig: Config = parseConfig({});

const cache = new WeakMap<object, Config>();

/**
 * Config for a Worker `env`, parsed once per env object. Throws `config_invalid`
 * naming the var on every call while the value stays invalid: never a silent fallback.
 */
export function configFor(env: object): Config {
  let config = cache.get(env);
  if (!config) {
    config = parseConfig(env as Vars);
    cache.set(env, config);
  }
  return config;
}
