/**
 * The facade over each back end, as the parity and model-based tests use it:
 * the Durable Objects (what the Worker serves) and the in-memory map
 * (MemoryStore). Both are the same class, so a history calls them alike.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Sessions, type Backend } from "../../src/facade";
import { MemoryStore } from "../../src/memory";
import { objectsBackend } from "../../src/objects/backend";
import type { Env } from "../../src/env";
import { configFor } from "../../src/session/config";
import type { ModelConfig } from "../model/session-model";
import { modelSessions } from "../model/model-sessions";
import { registryCaughtUp } from "./converge";
import { testClock } from "./worker";

/**
 * The objects' back end, with stats and clear-all first letting the registry
 * deliveries in flight land: the model's registry is exact at every instant, the
 * objects' converges (test/convergence.test.ts), and these tests compare what it
 * shows once it has.
 */
function settledBackend(vars: Env): Backend {
  const backend = objectsBackend(vars);
  return {
    ...backend,
    getStats: async (options) => (await registryCaughtUp(), backend.getStats(options)),
    clearAll: async () => (await registryCaughtUp(), backend.clearAll()),
  };
}

export function objectsFacade(): Sessions {
  return new Sessions(settledBackend(env), configFor(env));
}

export function memoryFacade(): MemoryStore {
  return new MemoryStore({ config: configFor(env), sweepIntervalMs: 0 });
}

/**
 * The configuration the Worker under test runs with (wrangler.toml vars plus the
 * vitest.config.ts bindings). Read through `configFor(env)` for the VALUES only:
 * parsing vars is configuration, not a session rule, and the model applies none
 * of the code that uses them.
 */
export function testConfig(): ModelConfig {
  const { timeoutMs, strikeThreshold, tierModels, routingProfiles, budgetMicros, reservationTtlMs } = configFor(env);
  return { timeoutMs, strikeThreshold, tierModels, routingProfiles, budgetMicros, reservationTtlMs };
}

export function theModel() {
  return modelSessions(testConfig(), () => testClock.now());
}

/** Expires what is due, so stats see only live sessions: the objects' alarms, or MemoryStore's sweep. */
export async function settle(sessions: Sessions, ids: readonly string[]): Promise<void> {
  if (sessions instanceof MemoryStore) {
    sessions.sweep();
    return;
  }
  // The registry converges on expiry through each session's alarm; fire them all (a live session re-arms).
  for (const id of ids) await runDurableObjectAlarm(env.SESSIONS.get(env.SESSIONS.idFromName(id)));
  await registryCaughtUp();
}

type StatsRow = { sessionCostMicros?: unknown; strikes?: unknown; requestCount?: unknown };

/**
 * count, sessions, byModel and byTier (pagination is left to the registry tests). With `usage`
 * (a back end whose stats are exact: MemoryStore) also each row's cost, strikes and request count,
 * and the totals `cache` and `spendMicros`; without it those are left out, since the registry's
 * trail the sessions by design (docs/http-api.md "Stats and clear-all"; test/registry-rows.test.ts).
 */
export function statsView<Row extends StatsRow>(
  {
    count,
    sessions,
    byModel,
    byTier,
    cache,
    spendMicros,
  }: { count: number; sessions: Row[]; byModel: unknown; byTier: unknown; cache: unknown; spendMicros: unknown },
  usage: boolean,
) {
  if (usage) return { count, sessions, byModel, byTier, cache, spendMicros };
  const rows = sessions.map(({ sessionCostMicros: _cost, strikes: _strikes, requestCount: _requests, ...row }) => row);
  return { count, sessions: rows, byModel, byTier };
}

export type Outcome = { ok: unknown } | { error: string };

/** A call's result, or its error code (a SessionError's, or one that crossed RPC as an own `code`). */
export async function outcome(work: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: await work() };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string") return { error: code };
    throw err;
  }
}

/** Each target makes its own random cache keys: a trace shows whether a key was there, not its value (test/affinity.test.ts checks the keys). */
export function withoutKeyValues(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutKeyValues);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === "cacheKey" && typeof v === "string" ? "<cache key>" : withoutKeyValues(v)]));
}

export function freshId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

/** The facade over the objects with `vars` as the Worker's env: configuration is parsed (and may throw) here. */
export function facadeFor(vars: Env): Sessions {
  return new Sessions(settledBackend(vars), configFor(vars));
}
