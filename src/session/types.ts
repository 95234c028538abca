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
}

/** An entry as the API returns it. */
export interface SessionView extends Entry {
  id: string;
}

export interface SessionCost {
  sessionCostMicros: number;
  costUSD: number;
}
