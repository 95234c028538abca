/**
 * Workers RPC front door for gateways on a service binding: the same
 * operations as HTTP, with no HTTP and no token (the binding is the grant).
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import type { Env } from "./env";
import type { ResolveResult } from "./gateway/resolve-input";
import type { ClearProgress } from "./objects/registry-object";
import { SessionApi, type StatsOptions } from "./service";
import { SessionError } from "./session/errors";
import type { Stats } from "./session/stats";
import type { SessionCost, SessionView, Tier } from "./session/types";

/**
 * RPC carries only an error's message, so the code travels in it as a
 * "code: message" prefix that `SessionError.fromRpc` (client side) reads back.
 */
async function call<T>(work: (api: SessionApi) => Promise<T>, env: Env): Promise<T> {
  try {
    return await work(new SessionApi(env));
  } catch (err) {
    if (err instanceof SessionError) throw new Error(`${err.code}: ${err.message}`);
    // Like HTTP's 500: logged here, never shown to the caller.
    console.error("unhandled error", err instanceof Error ? (err.stack ?? err.message) : String(err));
    throw new Error("internal_error: internal error");
  }
}

export class SessionService extends WorkerEntrypoint<Env> {
  getSession(id: string): Promise<SessionView | null> {
    return call((api) => api.getSession(id), this.env);
  }

  setSession(id: string, model: string, tier: Tier, userExplicit = false): Promise<SessionView> {
    return call((api) => api.setSession(id, model, tier, userExplicit), this.env);
  }

  touchSession(id: string): Promise<SessionView | null> {
    return call((api) => api.touchSession(id), this.env);
  }

  /** Strikes after recording; 0 for an unknown session, as in the reference. */
  recordRequestHash(id: string, hash: string): Promise<number> {
    return call(async (api) => (await api.recordRequestHash(id, hash)) ?? 0, this.env);
  }

  escalateSession(id: string): Promise<SessionView | null> {
    return call((api) => api.escalateSession(id), this.env);
  }

  addSessionCost(id: string, micros: number): Promise<SessionCost | null> {
    return call((api) => api.addSessionCost(id, micros), this.env);
  }

  /** Session cost in USD; 0 for an unknown session, as in the reference. */
  getSessionCostUSD(id: string): Promise<number> {
    return call(async (api) => (await api.getSessionCost(id))?.costUSD ?? 0, this.env);
  }

  clearSession(id: string): Promise<void> {
    return call((api) => api.clearSession(id), this.env);
  }

  deriveSessionId(firstUserMessage: string): Promise<string> {
    return call((api) => api.deriveSessionId(firstUserMessage), this.env);
  }

  hashRequestContent(content: string, toolNames: string[] = []): Promise<string> {
    return call((api) => api.hashRequestContent(content, toolNames), this.env);
  }

  resolve(input: unknown): Promise<ResolveResult> {
    return call((api) => api.resolve(input), this.env);
  }

  getStats(options: StatsOptions = {}): Promise<Stats> {
    return call((api) => api.getStats(options), this.env);
  }

  clearAll(): Promise<ClearProgress> {
    return call((api) => api.clearAll(), this.env);
  }
}
