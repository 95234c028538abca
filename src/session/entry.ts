/**
 * A session's entry and how each reference operation changes it, as pure
 * functions of (entry, input, now). Nothing here touches storage or the
 * platform: both back ends, the Durable Objects and the in-memory map, run
 * exactly these through src/session/rules.ts.
 */
import { invalidRequest } from "./errors";
import { nextTier } from "./tiers";
import type { Entry, RoutedTier, SessionCost, SessionView, Tier, Usage } from "./types";

/** Reference keeps the last 3 request hashes. */
export const HASH_WINDOW = 3;
/** Identical hashes at the window's tail that count as a strike (reference: 2+). */
const STRIKE_RUN = 2;
const MICROS_PER_USD = 1_000_000;

/**
 * Expired when idle for strictly longer than the timeout (reference `GetSession`).
 * An open reservation is a request still in flight: the session lives at least
 * until the reservation would expire.
 */
export function isExpired(entry: Entry, now: number, timeoutMs: number): boolean {
  return now > expiresAt(entry, timeoutMs);
}

/** The instant after which the entry is expired. */
export function expiresAt(entry: Entry, timeoutMs: number): number {
  let deadline = entry.lastUsedAt + timeoutMs;
  const open = entry.reservations;
  if (open !== undefined) for (let i = 0; i < open.length; i++) if (open[i]!.expiresAt > deadline) deadline = open[i]!.expiresAt;
  return deadline;
}

/** Optional fields, copied only when present: a stored entry carries no key for a feature it never used. */
const OPTIONAL_FIELDS = [
  "reservations",
  "closed",
  "budgetMicros",
  "rate",
  "sticky",
  "deployment",
  "cacheKey",
  "inputTokens",
  "cachedInputTokens",
  "paused",
  "adminPinned",
  "alerted",
  "models",
  "escalations",
] as const satisfies readonly (keyof Entry)[];

/**
 * A field-by-field copy. The hot operations copy an entry on every request; an
 * object literal of fixed shape is several times faster than a spread.
 */
function copyOf(e: Entry): Entry {
  const next: Entry = {
    model: e.model,
    tier: e.tier,
    createdAt: e.createdAt,
    lastUsedAt: e.lastUsedAt,
    requestCount: e.requestCount,
    recentHashes: e.recentHashes,
    strikes: e.strikes,
    escalated: e.escalated,
    userExplicit: e.userExplicit,
    sessionCostMicros: e.sessionCostMicros,
  };
  for (let i = 0; i < OPTIONAL_FIELDS.length; i++) {
    const field = OPTIONAL_FIELDS[i]!;
    if (e[field] !== undefined) (next as unknown as Record<string, unknown>)[field] = e[field];
  }
  return next;
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
  const next = applyTouch(entry, now);
  if (entry.model !== model) {
    moveModel(next, model);
    next.tier = tier;
  }
  next.userExplicit = entry.userExplicit || userExplicit;
  return next;
}

/**
 * Moves a copy to another model. What was pinned with the old model goes with it:
 * its deployment, and the prompt cache it warmed (the next resolve pins its own).
 */
function moveModel(next: Entry, model: string): void {
  if (next.model === model) return;
  next.models = modelsUsed(next, model);
  next.model = model;
  next.deployment = undefined;
  next.sticky = undefined;
}

/** Distinct models a session remembers having used, for its end-of-session summary. */
export const MAX_MODELS_USED = 32;

/** The models used, `model` added: in order of first use, at most MAX_MODELS_USED (the first ones kept). */
function modelsUsed(entry: Entry, model: string): string[] | undefined {
  const used = entry.models ?? [entry.model];
  if (used.includes(model) || used.length >= MAX_MODELS_USED) return entry.models;
  return [...used, model];
}

/** The models a session has used, in order of first use. */
export function modelsOf(entry: Entry): string[] {
  return entry.models ?? [entry.model];
}

/**
 * Resolve's upgrade, when the router rates a request above the pinned tier: the
 * session moves to the routed model and tier. Unlike `applySet`, the tier moves
 * even when the model is the same, so a later escalation starts from the tier the
 * router asked for.
 */
export function applyUpgrade(entry: Entry, model: string, tier: RoutedTier, now: number): Entry {
  const next = applyTouch(entry, now);
  moveModel(next, model);
  next.tier = tier;
  return next;
}

/** An operator's pin: the model and tier are forced, and held until the pin is lifted. Not activity: the idle time runs on. */
export function applyPin(entry: Entry, model: string, tier: Tier): Entry {
  const next = copyOf(entry);
  moveModel(next, model);
  next.tier = tier;
  next.adminPinned = true;
  return next;
}

/** A copy with one optional field set, or removed when `value` is undefined. */
export function withField<K extends (typeof OPTIONAL_FIELDS)[number]>(entry: Entry, field: K, value: Entry[K]): Entry {
  const next = copyOf(entry);
  if (value === undefined) delete next[field];
  else next[field] = value;
  return next;
}

export function applyTouch(entry: Entry, now: number): Entry {
  const next = copyOf(entry);
  next.lastUsedAt = now;
  next.requestCount = entry.requestCount + 1;
  return next;
}

/** Reference `RecordRequestHash`: a,a,a,b,b gives strikes 0,1,2,2,3 (cumulative). */
export function applyRecordHash(entry: Entry, hash: string): Entry {
  const recentHashes = [...entry.recentHashes, hash].slice(-HASH_WINDOW);
  let run = 0;
  for (let i = recentHashes.length - 1; i >= 0 && recentHashes[i] === hash; i--) run++;
  const next = copyOf(entry);
  next.recentHashes = recentHashes;
  if (run >= STRIKE_RUN) next.strikes = entry.strikes + 1;
  return next;
}

/**
 * Reference `EscalateSession`: one tier up unless the user pinned the model.
 * Beyond the reference, the model follows the tier when TIER_MODELS names it.
 */
export function applyEscalate(entry: Entry, tierModels: Partial<Record<RoutedTier, string>>): Entry {
  if (entry.userExplicit || entry.adminPinned) return entry;
  const tier = nextTier(entry.tier);
  const next = copyOf(entry);
  next.tier = tier;
  moveModel(next, tierModels[tier] ?? entry.model);
  next.escalated = true;
  // Counted when the escalation moved the session: at REASONING with its model already, it moves nothing.
  if (tier !== entry.tier || next.model !== entry.model) next.escalations = (entry.escalations ?? 0) + 1;
  return next;
}

/**
 * Adds non-negative integer micros. The total must stay a safe integer even once
 * every open reservation is charged in full, so an expiry never overflows.
 */
export function applyAddCost(entry: Entry, micros: number): Entry {
  const total = entry.sessionCostMicros + micros;
  if (!Number.isSafeInteger(total + reservedOf(entry))) throw invalidRequest("micros", "would overflow the session's total cost");
  const next = copyOf(entry);
  next.sessionCostMicros = total;
  return next;
}

/**
 * Adds one call's reported input tokens to the session's totals (a copy). The
 * totals must stay safe integers; the caller's schema has checked that the
 * cached tokens are at most the input tokens, so the cached total never exceeds the input total.
 */
export function applyUsage(entry: Entry, usage: Usage): Entry {
  const inputTokens = (entry.inputTokens ?? 0) + usage.inputTokens;
  const cachedInputTokens = (entry.cachedInputTokens ?? 0) + usage.cachedInputTokens;
  if (!Number.isSafeInteger(inputTokens)) throw invalidRequest("usage.inputTokens", "would overflow the session's total input tokens");
  if (!Number.isSafeInteger(cachedInputTokens)) throw invalidRequest("usage.cachedInputTokens", "would overflow the session's total cached input tokens");
  const next = copyOf(entry);
  next.inputTokens = inputTokens;
  next.cachedInputTokens = cachedInputTokens;
  return next;
}

export function costOf(entry: Entry): SessionCost {
  return { sessionCostMicros: entry.sessionCostMicros, costUSD: entry.sessionCostMicros / MICROS_PER_USD };
}

/** Micros held by the entry's open reservations. */
export function reservedOf(entry: Entry): number {
  const open = entry.reservations;
  let sum = 0;
  if (open !== undefined) for (let i = 0; i < open.length; i++) sum += open[i]!.micros;
  return sum;
}

/** The budget that applies to the entry: its own, else the configured default; undefined for none. */
export function budgetOf(entry: Entry | undefined, defaultBudget: number | undefined): number | undefined {
  return entry?.budgetMicros ?? defaultBudget;
}

/** An entry as the API answers it: with its ID, and a copy of the hash window the caller may keep. */
export function viewOf(id: string, entry: Entry, defaultBudget: number | undefined): SessionView {
  return {
    id,
    model: entry.model,
    tier: entry.tier,
    createdAt: entry.createdAt,
    lastUsedAt: entry.lastUsedAt,
    requestCount: entry.requestCount,
    recentHashes: entry.recentHashes.slice(),
    strikes: entry.strikes,
    escalated: entry.escalated,
    userExplicit: entry.userExplicit,
    sessionCostMicros: entry.sessionCostMicros,
    budgetMicros: budgetOf(entry, defaultBudget) ?? null,
    reservedMicros: reservedOf(entry),
    inFlight: entry.reservations?.length ?? 0,
    cacheKey: entry.cacheKey ?? null,
    deployment: entry.deployment ?? null,
    inputTokens: entry.inputTokens ?? 0,
    cachedInputTokens: entry.cachedInputTokens ?? 0,
    paused: entry.paused !== undefined,
    adminPinned: entry.adminPinned === true,
  };
}
