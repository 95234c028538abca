import type { RegistryObject } from "./objects/registry-object";
import type { SessionObject } from "./objects/session-object";

/** Bindings and vars. Vars may arrive as strings (--var, .dev.vars, dashboard) or as TOML values. */
export interface Env {
  SESSIONS: DurableObjectNamespace<SessionObject>;
  REGISTRY: DurableObjectNamespace<RegistryObject>;
  SESSION_API_TOKEN?: string;
  SESSION_ADMIN_TOKEN?: string;
  SESSION_ENABLED?: string | boolean;
  SESSION_TIMEOUT_MS?: string | number;
  SESSION_HEADER?: string;
  TIER_MODELS?: string | Record<string, string>;
  STRIKE_THRESHOLD?: string | number;
  ROUTING_PROFILES?: string | string[];
  SESSION_BUDGET_MICROS?: string | number;
  REGISTRY_SHARDS?: string | number;
  SESSION_NAMESPACE_HEADER?: string;
  /** Secret: the stats cursor key; without it one is generated and kept in registry shard 0. */
  STATS_CURSOR_KEY?: string;
}
