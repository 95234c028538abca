/** Routing tiers, cheapest first. `""` marks an explicit pin that carries no tier. */
export const TIERS = ["SIMPLE", "MEDIUM", "COMPLEX", "REASONING"] as const;
export type RoutedTier = (typeof TIERS)[number];
export type Tier = RoutedTier | "";

/** One session's state. Field names and meaning follow the reference Go `session.Entry`. */
export interface Entry {
  model: string;
  tier: Tier;
  /** unix ms */
  createdAt: number;
  /** unix ms */
  lastUsedAt: number;
  requestCount: number;
  /** Sliding window of the most recent request hashes, oldest first. */
  recentHashes: string[];
  strikes: number;
  escalated: boolean;
  /** True once the user picked a model explicitly; sticky for the session's life. */
  userExplicit: boolean;
  /** Integer micro-USD (1 USD = 1,000,000). */
  sessionCostMicros: number;
  /** Open budget reservations, oldest first. Absent on entries stored before budgets: none. */
  reservations?: Reservation[];
  /** The most recently closed reservations, oldest first: what makes a repeated or late settle safe. */
  closed?: ClosedReservation[];
  /** This session's own budget, set with setBudget; absent: SESSION_BUDGET_MICROS. */
  budgetMicros?: number;
  /** SESSION_RATE_PER_MIN's bucket; absent: full. */
  rate?: RateBucket;
  /** The provider whose prompt cache a large request warmed; sticky while idle within its TTL. */
  sticky?: string;
  /** The deployment pinned with the model: an endpoint, region or key ID, opaque. */
  deployment?: string;
  /** The session's prompt-cache key: random, made when the session is. */
  cacheKey?: string;
  /** Input tokens its callers reported (settle, cost), cached ones included; absent: 0. */
  inputTokens?: number;
  /** Of those, the ones the provider read from its prompt cache; absent: 0. */
  cachedInputTokens?: number;
  /** unix ms when an operator paused the session: resolve answers 423 until it is resumed. */
  paused?: number;
  /** An operator forced the model and tier: resolve, setSession and escalation keep them until the pin is lifted. */
  adminPinned?: true;
  /** The highest budget threshold (50, 80, 100 percent of spend) already announced: each fires once per incarnation. */
  alerted?: number;
  /** Every model the session has used, in order of first use, when it used more than one; absent: only `model`. */
  models?: string[];
  /** How many times the session moved up a tier by escalation. */
  escalations?: number;
}

/** One call's input tokens, as a settle or a cost reports them: all of them, and how many of those came from the provider's prompt cache. */
export interface Usage {
  inputTokens: number;
  cachedInputTokens: number;
}

/** A token bucket: `tokens` (fractional) as of `at` (unix ms). */
export interface RateBucket {
  tokens: number;
  at: number;
}

/** Worst-case cost held against the budget between a resolve and its settle. */
export interface Reservation {
  id: string;
  micros: number;
  /** unix ms: unsettled after then, it is charged in full. */
  expiresAt: number;
}

/** A reservation no longer open: settled at `costMicros`, or, with no `costMicros`, expired and charged its full `micros`. */
export interface ClosedReservation {
  id: string;
  micros: number;
  costMicros?: number;
}

/** An entry as the API returns it. */
export interface SessionView extends Pick<
  Entry,
  "model" | "tier" | "createdAt" | "lastUsedAt" | "requestCount" | "recentHashes" | "strikes" | "escalated" | "userExplicit" | "sessionCostMicros"
> {
  id: string;
  /** The session's effective budget: its own, else SESSION_BUDGET_MICROS; null for none. */
  budgetMicros: number | null;
  /** Held by open reservations. */
  reservedMicros: number;
  /** Open reservations. */
  inFlight: number;
  /** The prompt-cache key gateways send upstream (OpenAI `prompt_cache_key`); null until a resolve made one. */
  cacheKey: string | null;
  /** The pinned deployment; null for none. */
  deployment: string | null;
  /** Input tokens reported with settle and cost, cached ones included; 0 when none were. */
  inputTokens: number;
  /** Of those, the ones read from the provider's prompt cache. */
  cachedInputTokens: number;
  /** An operator paused the session: resolve answers 423 `session_paused`. */
  paused: boolean;
  /** An operator pinned the model and tier. */
  adminPinned: boolean;
}

export interface SessionCost {
  sessionCostMicros: number;
  costUSD: number;
}

/** What settle answers. */
export interface SettleResult extends SessionCost {
  reservedMicros: number;
}
