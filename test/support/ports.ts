/**
 * One interface over the independent model (test/model/) and the two back ends,
 * MemoryStore and the real objects through Workers RPC, so the same history runs
 * against all three. Errors become `{ error: code }`.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import { configFor } from "../../src/session/config";
import { SessionError } from "../../src/session/errors";
import { MemoryStore } from "../../src/session/memory-store";
import type { Tier } from "../../src/session/types";
import { modelHash } from "../model/hash";
import { SessionModel, type ModelConfig } from "../model/session-model";
import { testClock } from "./worker";

export interface SessionPort {
  getSession(id: string): Promise<unknown>;
  setSession(id: string, model: string, tier: Tier, userExplicit?: boolean): Promise<unknown>;
  touchSession(id: string): Promise<unknown>;
  recordRequestHash(id: string, hash: string): Promise<unknown>;
  escalateSession(id: string): Promise<unknown>;
  addSessionCost(id: string, micros: number): Promise<unknown>;
  getSessionCostUSD(id: string): Promise<unknown>;
  clearSession(id: string): Promise<unknown>;
  resolve(input: ResolveCall): Promise<unknown>;
  /** Expires what is due (the objects' alarms, MemoryStore's sweep), so stats see only live sessions. */
  settle(ids: readonly string[]): Promise<void>;
  /** count, sessions, byModel and byTier (pagination is left to the registry tests). */
  getStats(): Promise<unknown>;
  /** How many sessions clear-all removed. */
  clearAll(): Promise<number>;
}

/**
 * The resolve inputs the histories send: a named session, a body with one user
 * message and at most one assistant tool call after it, and the router's choice.
 */
export interface ResolveCall {
  sessionId: string;
  body: { model: string; messages: ({ role: "user"; content: string } | { role: "assistant"; content: null; tool_calls: { id: string; type: "function"; function: { name: string; arguments: string } }[] })[] };
  routed?: { model: string; tier: Exclude<Tier, ""> };
  costMicros?: number;
}

export type Outcome = { ok: unknown } | { error: string };

/** Runs a call and returns its result or its error code, identically for every implementation. */
export async function outcome(work: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: await work() };
  } catch (err) {
    if (err instanceof SessionError) return { error: err.code };
    const match = /^([a-z_]+): /.exec((err as Error).message);
    if (match) return { error: match[1]! };
    throw err;
  }
}

/**
 * The configuration the Worker under test runs with (wrangler.toml vars plus the
 * vitest.config.ts bindings). Read through `configFor(env)` for the VALUES only:
 * parsing vars is configuration, not a session rule, and the model applies none
 * of the code that uses them.
 */
export function testConfig(): ModelConfig {
  const { timeoutMs, strikeThreshold, tierModels, routingProfiles, budgetMicros } = configFor(env);
  return { timeoutMs, strikeThreshold, tierModels, routingProfiles, budgetMicros };
}

export function modelPort(): SessionPort & { model: SessionModel } {
  const model = new SessionModel(testConfig(), () => testClock.now());
  return {
    model,
    getSession: async (id) => model.get(id),
    setSession: async (id, m, tier, userExplicit) => model.set(id, m, tier, userExplicit),
    touchSession: async (id) => model.touch(id),
    recordRequestHash: async (id, hash) => model.recordHash(id, hash),
    escalateSession: async (id) => model.escalate(id),
    addSessionCost: async (id, micros) => model.addCost(id, micros),
    getSessionCostUSD: async (id) => model.getCostUSD(id),
    clearSession: async (id) => model.clear(id),
    resolve: async (input) => {
      // README Gateway flow step 4: the last user message's text with the tools the last assistant message called.
      const messages = input.body.messages;
      const user = messages.findLast((m) => m.role === "user")!;
      const assistant = messages.findLast((m) => m.role === "assistant");
      const tools = assistant?.role === "assistant" ? assistant.tool_calls.map((c) => c.function.name) : [];
      const hash = await modelHash(user.content, tools);
      return model.resolve({ sessionId: input.sessionId, model: input.body.model, routed: input.routed, hash, costMicros: input.costMicros });
    },
    settle: async () => undefined,
    getStats: async () => model.stats(),
    clearAll: async () => model.clearAll().cleared,
  };
}

export function memoryPort(): SessionPort & { store: MemoryStore } {
  const store = new MemoryStore({ config: configFor(env), clock: () => testClock.now(), sweepIntervalMs: 0 });
  return {
    store,
    getSession: async (id) => store.getSession(id),
    setSession: async (id, model, tier, userExplicit) => store.setSession(id, model, tier, userExplicit),
    touchSession: async (id) => store.touchSession(id),
    recordRequestHash: async (id, hash) => store.recordRequestHash(id, hash),
    escalateSession: async (id) => store.escalateSession(id),
    addSessionCost: async (id, micros) => store.addSessionCost(id, micros),
    getSessionCostUSD: async (id) => store.getSessionCostUSD(id),
    clearSession: async (id) => store.clearSession(id),
    resolve: (input) => store.resolve(input),
    settle: async () => void store.sweep(),
    getStats: async () => statsView(store.getStats()),
    clearAll: async () => store.clearAll().cleared,
  };
}

export function rpcPort(): SessionPort {
  const svc = exports.SessionService;
  const admin = exports.SessionAdmin;
  return {
    getSession: (id) => svc.getSession(id),
    setSession: (id, model, tier, userExplicit) => svc.setSession(id, model, tier, userExplicit),
    touchSession: (id) => svc.touchSession(id),
    recordRequestHash: (id, hash) => svc.recordRequestHash(id, hash),
    escalateSession: (id) => svc.escalateSession(id),
    addSessionCost: (id, micros) => svc.addSessionCost(id, micros),
    getSessionCostUSD: (id) => svc.getSessionCostUSD(id),
    clearSession: (id) => svc.clearSession(id),
    resolve: (input) => svc.resolve(input),
    settle: async (ids) => {
      // The registry converges on expiry through each session's alarm; fire them all (a live session re-arms).
      for (const id of ids) await runDurableObjectAlarm(env.SESSIONS.get(env.SESSIONS.idFromName(id)));
    },
    getStats: async () => {
      // The stats path reads the system clock for `age`; point it at the test clock the objects use.
      const now = vi.spyOn(Date, "now").mockImplementation(() => testClock.now());
      try {
        return statsView(await admin.getStats());
      } finally {
        now.mockRestore();
      }
    },
    clearAll: async () => (await admin.clearAll()).cleared,
  };
}

function statsView({ count, sessions, byModel, byTier }: { count: number; sessions: unknown; byModel: unknown; byTier: unknown }) {
  return { count, sessions, byModel, byTier };
}

export function freshId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}
