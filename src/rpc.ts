/**
 * Workers RPC front doors on service bindings: the same operations as HTTP,
 * with no HTTP and no token (the binding is the grant). SessionService holds
 * the per-session operations a gateway needs; SessionAdmin holds the ones that
 * reach every tenant, so a deployment binds it only where operators need it.
 */
import { RpcTarget, WorkerEntrypoint } from "cloudflare:workers";
import type { Env } from "./env";
import type { ResolveResult } from "./gateway/resolve-input";
import type { ClearProgress } from "./objects/registry-object";
import { SessionApi, type StatsOptions } from "./service";
import { SessionError } from "./session/errors";
import type { Stats } from "./session/stats";
import { systemClock, type SessionCost, type SessionView, type Tier } from "./session/types";

/**
 * RPC carries only an error's message, so the code travels in it as a
 * "code: message" prefix. Unexpected errors are logged and hidden, as HTTP's 500.
 */
async function call<T>(work: (api: SessionApi) => Promise<T>, env: Env, namespace?: string): Promise<T> {
  try {
    return await work(new SessionApi(env, systemClock, namespace));
  } catch (err) {
    if (err instanceof SessionError) throw new Error(`${err.code}: ${err.message}`);
    console.error("unhandled error", err instanceof Error ? (err.stack ?? err.message) : String(err));
    throw new Error("internal_error: internal error");
  }
}

/** The per-session operations, optionally scoped to one tenant's namespace. */
export class SessionScope extends RpcTarget {
  constructor(
    private readonly env: Env,
    private readonly namespace?: string,
  ) {
    super();
  }

  /** `#`-private: Workers RPC exposes every method on the prototype, TypeScript's `private` included. */
  #call<T>(work: (api: SessionApi) => Promise<T>): Promise<T> {
    return call(work, this.env, this.namespace);
  }

  resolve(input: unknown): Promise<ResolveResult> {
    return this.#call((api) => api.resolve(input));
  }

  getSession(id: string): Promise<SessionView | null> {
    return this.#call((api) => api.getSession(id));
  }

  setSession(id: string, model: string, tier: Tier, userExplicit = false): Promise<SessionView> {
    return this.#call((api) => api.setSession(id, model, tier, userExplicit));
  }

  touchSession(id: string): Promise<SessionView | null> {
    return this.#call((api) => api.touchSession(id));
  }

  /** Strikes after recording; 0 for an unknown session, as in the reference. */
  recordRequestHash(id: string, hash: string): Promise<number> {
    return this.#call(async (api) => (await api.recordRequestHash(id, hash)) ?? 0);
  }

  escalateSession(id: string): Promise<SessionView | null> {
    return this.#call((api) => api.escalateSession(id));
  }

  addSessionCost(id: string, micros: number): Promise<SessionCost | null> {
    return this.#call((api) => api.addSessionCost(id, micros));
  }

  /** Session cost in USD; 0 for an unknown session, as in the reference. */
  getSessionCostUSD(id: string): Promise<number> {
    return this.#call(async (api) => (await api.getSessionCost(id))?.costUSD ?? 0);
  }

  clearSession(id: string): Promise<void> {
    return this.#call((api) => api.clearSession(id));
  }
}

export class SessionService extends WorkerEntrypoint<Env> {
  /** Every call through the returned scope works on `namespace`'s sessions only (see SECURITY.md). */
  forNamespace(namespace: string): SessionScope {
    return new SessionScope(this.env, namespace);
  }

  /** `#`-private, so RPC callers cannot reach it (see SessionScope#call). */
  get #scope(): SessionScope {
    return new SessionScope(this.env);
  }

  resolve(input: unknown): Promise<ResolveResult> {
    return this.#scope.resolve(input);
  }

  getSession(id: string): Promise<SessionView | null> {
    return this.#scope.getSession(id);
  }

  setSession(id: string, model: string, tier: Tier, userExplicit = false): Promise<SessionView> {
    return this.#scope.setSession(id, model, tier, userExplicit);
  }

  touchSession(id: string): Promise<SessionView | null> {
    return this.#scope.touchSession(id);
  }

  recordRequestHash(id: string, hash: string): Promise<number> {
    return this.#scope.recordRequestHash(id, hash);
  }

  escalateSession(id: string): Promise<SessionView | null> {
    return this.#scope.escalateSession(id);
  }

  addSessionCost(id: string, micros: number): Promise<SessionCost | null> {
    return this.#scope.addSessionCost(id, micros);
  }

  getSessionCostUSD(id: string): Promise<number> {
    return this.#scope.getSessionCostUSD(id);
  }

  clearSession(id: string): Promise<void> {
    return this.#scope.clearSession(id);
  }

  deriveSessionId(firstUserMessage: string): Promise<string> {
    return call((api) => api.deriveSessionId(firstUserMessage), this.env);
  }

  hashRequestContent(content: string, toolNames: string[] = []): Promise<string> {
    return call((api) => api.hashRequestContent(content, toolNames), this.env);
  }
}

/** Stats and clear-all across every tenant: the admin token's routes, for operators' Workers only. */
export class SessionAdmin extends WorkerEntrypoint<Env> {
  getStats(options: StatsOptions = {}): Promise<Stats> {
    return call((api) => api.getStats(options), this.env);
  }

  clearAll(): Promise<ClearProgress> {
    return call((api) => api.clearAll(), this.env);
  }
}
