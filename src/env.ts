/**
 * The Worker's bindings: `WranglerEnv`, generated from wrangler.toml by
 * `npm run types` (worker-configuration.d.ts), with an overlay for the vars.
 * wrangler types a var by its wrangler.toml value, but a var may also arrive as
 * a string (--var, .dev.vars, the dashboard) or be absent, and optional ones
 * are not in wrangler.toml at all. src/session/config.ts parses every one.
 */

import type { LifecycleMessage } from "./session/lifecycle";

/** A var as it may arrive: a string, or the TOML value wrangler.toml gives it. */
export type VarValue = string | number | boolean | object;

/** Every var and secret the service reads (docs/configuration.md). */
type VarName =
  | "SESSION_API_TOKEN"
  | "SESSION_ADMIN_TOKEN"
  | "SESSION_ENABLED"
  | "SESSION_TIMEOUT_MS"
  | "SESSION_HEADER"
  | "TIER_MODELS"
  | "STRIKE_THRESHOLD"
  | "ROUTING_PROFILES"
  | "SESSION_BUDGET_MICROS"
  | "SESSION_BUDGET_MODE"
  | "RESERVATION_TTL_MS"
  | "SESSION_MAX_IN_FLIGHT"
  | "SESSION_RATE_PER_MIN"
  | "PROVIDER_CACHE_TTLS"
  | "REGISTRY_SHARDS"
  | "SESSION_NAMESPACE_HEADER"
  | "STATS_CURSOR_KEY"
  | "REGISTRY_TIMEOUT_MS"
  | "CLEAR_BUDGET_MS"
  | "CLEAR_BATCH_SIZE"
  | "SESSION_ID_SOURCES";

export type Env = Omit<WranglerEnv, VarName> & { readonly [K in VarName]?: VarValue } & {
  /** Secrets: tokens compare as strings; any other type counts as not configured. */
  readonly SESSION_API_TOKEN?: string;
  readonly SESSION_ADMIN_TOKEN?: string;
  /** Optional Queue producer for lifecycle messages (docs/events.md); without it none are sent. */
  readonly SESSION_EVENTS?: Queue<LifecycleMessage>;
};
