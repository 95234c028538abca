/**
 * The reference semantics as pure functions of (entry, input, now). Nothing
 * here touches storage or the platform: the Durable Object and MemoryStore
 * both run exactly these.
 */
import { invalidRequest } from "./errors";
import { nextTier } from "./tiers";
import type { Entry, RoutedTier, SessionCost, Tier } from "./types";

/** Reference keeps the last 3 request hashes. */
export const HASH_WINDOW = 3;
/** Identical hashes at the window's tail that count as a strike (reference: 2+). */
const STRIKE_RUN = 2;
const MICROS_PER_USD = 1_000_000;

/** Expired when idle for strictly longer than the timeout (reference `GetSession`). */
export function isExpired(entry: Entry, now: number, timeoutMs: number): boolean {
  return now - entry.lastUsedAt > timeoutMs;
}

/** The instant after which the entry is expired. */
export function expiresAt(entry: Entry, timeoutMs: number): number {
  return entry.lastUsedAt + timeoutMs;
}

export function createEntry(model: string, tier: Tier, userExplicit: boolean, now: number): Entry {
  return {
    model,
    tier,
    createdAt: now,
    lastUsedAt: now,
    requestCount: 1,
    recentHashes: [],
    strikes: 0,
    escalated: false,
    userExplicit,
    sessionCostMicros: 0,
  };
}

/** Reference `SetSession`: create, or update; model and tier move only with a new model. */
export function applySet(entry: Entry | undefined, model: string, tier: Tier, userExplicit: boolean, now: number): Entry {
  if (!entry) return createEntry(model, tier, userExplicit, now);
  const modelChanged = entry.model !== model;
  return {
    ...entry,
    model: modelChanged ? model : entry.model,
    tier: modelChanged ? tier : entry.tier,
    lastUsedAt: now,
    requestCount: entry.requestCount + 1,
    userExplicit: entry.userExplicit || userExplicit,
  };
}

/**
 * Resolve's upgrade, when the router rates a request above the pinned tier: the
 * session moves to the routed model and tier. Unlike `applySet`, the tier moves
 * even when the model is the same, so a later escalation starts from the tier the
 * router asked for.
 */
export function applyUpgrade(entry: Entry, model: string, tier: RoutedTier, now: number): Entry {
  return { ...applyTouch(entry, now), model, tier };
}

export function applyTouch(entry: Entry, now: number): Entry {
  return { ...entry, lastUsedAt: now, requestCount: entry.requestCount + 1 };
}

/** Reference `RecordRequestHash`: a,a,a,b,b gives strikes 0,1,2,2,3 (cumulative). */
export function applyRecordHash(entry: Entry, hash: string): Entry {
  const recentHashes = [...entry.recentHashes, hash].slice(-HASH_WINDOW);
  let run = 0;
  for (let i = recentHashes.length - 1; i >= 0 && recentHashes[i] === hash; i--) run++;
  return { ...entry, recentHashes, strikes: run >= STRIKE_RUN ? entry.strikes + 1 : entry.strikes };
}

/**
 * Reference `EscalateSession`: one tier up unless the user pinned the model.
 * Beyond the reference, the model follows the tier when TIER_MODELS names it.
 */
export function applyEscalate(entry: Entry, tierModels: Partial<Record<RoutedTier, string>>): Entry {
  if (entry.userExplicit) return entry;
  const tier = nextTier(entry.tier);
  return { ...entry, tier, model: tierModels[tier] ?? entry.model, escalated: true };
}

/** Adds non-negative integer micros; the total must stay a safe integer. */
export function applyAddCost(entry: Entry, micros: number): Entry {
  const total = entry.sessionCostMicros + micros;
  if (!Number.isSafeInteger(total)) throw invalidRequest("micros", "would overflow the session's total cost");
  return { ...entry, sessionCostMicros: total };
}

export function costOf(entry: Entry): SessionCost {
  return { sessionCostMicros: entry.sessionCostMicros, costUSD: entry.sessionCostMicros / MICROS_PER_USD };
}
