/**
 * One interface over the two implementations of the session operations, so
 * the same scenario runs against MemoryStore (the model) and the real objects
 * through Workers RPC (the system). Errors become `{ error: code }`.
 */
import { env, exports } from "cloudflare:workers";
import { configFor } from "../../src/session/config";
import { SessionError } from "../../src/session/errors";
import { MemoryStore } from "../../src/session/memory-store";
import type { Tier } from "../../src/session/types";
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
  resolve(input: unknown): Promise<unknown>;
}

export type Outcome = { ok: unknown } | { error: string };

/** Runs a call and returns its result or its error code, identically for both implementations. */
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
  };
}

export function rpcPort(): SessionPort {
  const svc = exports.SessionService;
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
  };
}

export function freshId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}
