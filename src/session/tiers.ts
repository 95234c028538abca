import { TIERS, type RoutedTier, type Tier } from "./types";

/** Rank used when a tier is `""` or unknown (reference: `tierRank` default). */
const DEFAULT_RANK = 1;

export function isRoutedTier(value: unknown): value is RoutedTier {
  return typeof value === "string" && (TIERS as readonly string[]).includes(value);
}

export function isTier(value: unknown): value is Tier {
  return value === "" || isRoutedTier(value);
}

/** SIMPLE 0, MEDIUM 1, COMPLEX 2, REASONING 3; `""` or unknown ranks 1. */
export function tierRank(tier: string): number {
  const rank = (TIERS as readonly string[]).indexOf(tier);
  return rank === -1 ? DEFAULT_RANK : rank;
}

/** One step up: rank ≤ 0 → MEDIUM, 1 → COMPLEX, 2 → REASONING; REASONING stays. */
export function nextTier(tier: Tier): RoutedTier {
  const rank = Math.max(tierRank(tier), 0);
  return TIERS[Math.min(rank + 1, TIERS.length - 1)]!;
}
