/**
 * Each session command's rule: a pure step from the live entry and the
 * command's validated input to the next entry and the result, plus the
 * effects that follow from a step (what to persist, what the registry must
 * learn, whether to arm expiry). The command table (src/commands.ts) names
 * each rule once; both back ends run them the same way.
 */
import type { Config } from "./config";
import { tierRank } from "./tiers";
import { cacheTtlMs, providerOf, stickyAt } from "./affinity";
import { admit, expireReservations, hold, settleReservation, takeToken, type ReserveMicros } from "./budget";
import {
  applyAddCost,
  applyEscalate,
  applyPin,
  applyRecordHash,
  applySet,
  applyTouch,
  applyUpgrade,
  applyUsage,
  budgetOf,
  costOf,
  expiresAt,
  isExpired,
  reservedOf,
  withField,
} from "./entry";
import { SessionError } from "./errors";
import type { Entry, RoutedTier, SessionCost, SettleResult, Tier, Usage } from "./types";

export interface RuleContext {
  now: number;
  config: Config;
  /** A fresh random key after `prefix`, for a reservation or a cache key: given by the back end, so that a step stays pure and pays for randomness only when it needs a key. */
  newKey: (prefix: string) => string;
}

export interface Step<R> {
  /** The entry after the step; the same object when nothing changed. */
  next: Entry | undefined;
  result: R;
}

export type Rule<I, R> = (live: Entry | undefined, input: I, ctx: RuleContext) => Step<R>;

/** What the session layer decided for one gateway request (see resolve). */
export interface ResolveDecision {
  model: string;
  tier: Tier;
  /** The session existed before this request, so its pin applied. */
  pinned: boolean;
  userExplicit: boolean;
  strikes: number;
  /** True when this request escalated the session. */
  escalated: boolean;
  requestCount: number;
  sessionCostMicros: number;
  /** Held by the session's open reservations, this request's included. */
  reservedMicros: number;
  /** The session's effective budget; null for none. */
  budgetMicros: number | null;
  /** Set when this request reserved: the ID its settle names. */
  reservationId?: string;
  /** True when graceful mode answered for a tier below the session's, to fit the budget; the pin is unchanged. */
  downgraded: boolean;
  /** The session keeps its model for its warm prompt cache. */
  cacheSticky: boolean;
  /** Set when this request made the session cache-sticky: the provider and its cache TTL. */
  cacheStickyActivated?: { provider: string; ttlMs: number };
  /** The pinned deployment; null for none. */
  deployment: string | null;
  /** True when this request's failover moved the deployment pin. */
  rebound: boolean;
  /** The session's prompt-cache key. */
  cacheKey: string;
}

/** One gateway request, already parsed and validated by the caller. */
export interface ResolveRequest {
  choice: { kind: "explicit"; model: string } | { kind: "profile"; model: string; tier: RoutedTier };
  /** hashRequestContent of the last user message and tool calls; absent when there is no user message. */
  hash?: string;
  costMicros?: number;
  /** The worst-case cost to reserve against the budget. */
  reserveMicros?: ReserveMicros;
  /** The request is large enough to warm a prompt cache (src/session/affinity.ts). */
  large?: boolean;
  /** The routed model's provider, when the router names it. */
  provider?: string;
  /** The routed deployment. */
  deployment?: string;
  /** The deployment the gateway's call failed on. */
  failover?: string;
}

const unchanged = <R>(live: Entry | undefined, result: R): Step<R> => ({ next: live, result });

/** No input beyond the session ID. */
export type NoInput = Record<string, never>;

export const getSession: Rule<NoInput, Entry | null> = (live) => unchanged(live, live ?? null);

export const setSession: Rule<{ model: string; tier: Tier; userExplicit: boolean }, Entry> = (live, { model, tier, userExplicit }, { now }) => {
  if (live?.adminPinned && live.model !== model) throw pinnedError(live);
  const next = applySet(live, model, tier, userExplicit, now);
  return { next, result: next };
};

export const touchSession: Rule<NoInput, Entry | null> = (live, _input, { now }) => {
  if (!live) return unchanged(live, null);
  const next = applyTouch(live, now);
  return { next, result: next };
};

/** Strikes after recording, or null for an unknown session. */
export const recordRequestHash: Rule<{ hash: string }, number | null> = (live, { hash }) => {
  if (!live) return unchanged(live, null);
  const next = applyRecordHash(live, hash);
  return { next, result: next.strikes };
};

export const escalateSession: Rule<NoInput, Entry | null> = (live, _input, { config }) => {
  if (!live) return unchanged(live, null);
  const next = applyEscalate(live, config.tierModels);
  return { next, result: next };
};

/** Adds a cost, and with `usage` the call's input tokens to the session's totals. */
export const addSessionCost: Rule<{ micros: number; usage?: Usage }, SessionCost | null> = (live, { micros, usage }) => {
  if (!live) return unchanged(live, null);
  let next = applyAddCost(live, micros);
  if (usage !== undefined) next = applyUsage(next, usage);
  return { next, result: costOf(next) };
};

export const getSessionCost: Rule<NoInput, SessionCost | null> = (live) => unchanged(live, live ? costOf(live) : null);

export const clearSession: Rule<NoInput, null> = () => ({ next: undefined, result: null });

/**
 * Settles a reservation (see src/session/budget.ts); null for no live session. A
 * call that just finished is activity: the session's idle time restarts (its
 * request count does not move). `usage` is added with the cost, exactly when
 * the cost is: by the first settle of an open reservation, or by a late one of
 * an expired reservation (whose expiry charged its cost but reported no tokens).
 * A repeat changes nothing, its usage included.
 */
export const settle: Rule<{ reservationId: string; costMicros: number; usage?: Usage }, SettleResult | null> = (
  live,
  { reservationId, costMicros, usage },
  { now },
) => {
  if (!live) return unchanged(live, null);
  let settled = settleReservation(live, reservationId, costMicros);
  if (settled === live) return unchanged(live, { ...costOf(live), reservedMicros: reservedOf(live) });
  if (usage !== undefined) settled = applyUsage(settled, usage);
  const next = settled.lastUsedAt === now ? settled : { ...settled, lastUsedAt: Math.max(settled.lastUsedAt, now) };
  return { next, result: { ...costOf(next), reservedMicros: reservedOf(next) } };
};

/** Sets the session's own budget, or with null returns it to SESSION_BUDGET_MICROS. */
export const setBudget: Rule<{ budgetMicros: number | null }, Entry | null> = (live, { budgetMicros }) => {
  if (!live) return unchanged(live, null);
  if ((live.budgetMicros ?? null) === budgetMicros) return unchanged(live, live);
  const next: Entry = { ...live, budgetMicros: budgetMicros ?? undefined };
  return { next, result: next };
};

function pinnedError(live: Entry): SessionError {
  return new SessionError("session_pinned", "an operator pinned this session's model; it moves only when the pin is lifted", {
    model: live.model,
    tier: live.tier,
  });
}

/** An operator stops a session's resolves (423 `session_paused`) without ending it; settles, costs and reads go on. */
export const pauseSession: Rule<NoInput, Entry | null> = (live, _input, { now }) => {
  if (!live) return unchanged(live, null);
  if (live.paused !== undefined) return unchanged(live, live);
  const next = withField(live, "paused", now);
  return { next, result: next };
};

export const resumeSession: Rule<NoInput, Entry | null> = (live) => {
  if (!live) return unchanged(live, null);
  if (live.paused === undefined) return unchanged(live, live);
  const next = withField(live, "paused", undefined);
  return { next, result: next };
};

/** An operator forces the model and tier; resolve, setSession and escalation keep them until `unpinSession`. */
export const pinSession: Rule<{ model: string; tier: Tier }, Entry | null> = (live, { model, tier }) => {
  if (!live) return unchanged(live, null);
  if (live.adminPinned && live.model === model && live.tier === tier) return unchanged(live, live);
  const next = applyPin(live, model, tier);
  return { next, result: next };
};

export const unpinSession: Rule<NoInput, Entry | null> = (live) => {
  if (!live) return unchanged(live, null);
  if (live.adminPinned === undefined) return unchanged(live, live);
  const next = withField(live, "adminPinned", undefined);
  return { next, result: next };
};

/**
 * The whole session decision for one gateway request, in one step: rate,
 * pin or upgrade, loop check and escalation, then the budget (in-flight cap,
 * reservation, cost). A refused request throws and records nothing.
 */
export const resolve: Rule<ResolveRequest, ResolveDecision> = (live, req, { now, config, newKey }) => {
  if (live?.paused !== undefined) {
    throw new SessionError("session_paused", "an operator paused this session; resolve answers 423 until it is resumed", { pausedAt: live.paused });
  }
  const rate = config.ratePerMin === undefined ? undefined : takeToken(live?.rate, now, config.ratePerMin);

  const { choice } = req;
  const ttls = config.providerCacheTtls;
  // A warm prompt cache is worth more than a routed upgrade: while it lasts, the model stays.
  const wasSticky = live !== undefined && stickyAt(live.sticky, live.lastUsedAt, now, ttls);
  let next: Entry;
  if (live?.adminPinned) {
    // An operator's pin outranks the gateway's choice, explicit or routed.
    next = applyTouch(live, now);
  } else if (choice.kind === "explicit") {
    next = applySet(live, choice.model, "", true, now);
  } else if (!live) {
    next = applySet(undefined, choice.model, choice.tier, false, now);
  } else if (!live.userExplicit && !wasSticky && tierRank(choice.tier) > tierRank(live.tier)) {
    // A trivial first message must not trap a later hard request in a cheap tier; tiers never go down.
    next = applyUpgrade(live, choice.model, choice.tier, now);
  } else {
    next = applyTouch(live, now);
  }
  if (rate !== undefined) next.rate = rate;

  let escalated = false;
  // A failover is the same request again, on another deployment: not a repeat by the agent.
  if (req.hash !== undefined && req.failover === undefined) {
    const before = next.strikes;
    next = applyRecordHash(next, req.hash);
    if (next.strikes > before && next.strikes >= config.strikeThreshold && !next.userExplicit && !next.adminPinned) {
      next = applyEscalate(next, config.tierModels);
      escalated = true;
    }
  }

  // The deployment is pinned with the model: at creation, on a change of model, and on a failover from the pinned one.
  const modelChanged = live === undefined || next.model !== live.model;
  const rebound = live?.deployment !== undefined && req.failover === live.deployment;
  // A session that has no deployment yet (created by PUT, or before its gateway sent one) takes the first it is sent.
  const unpinned = next.deployment === undefined && req.deployment !== undefined;
  if (modelChanged || rebound || unpinned) next.deployment = req.deployment;
  // A cache warmed for another model, or one that has gone cold, no longer holds the session.
  const stillSticky = wasSticky && !modelChanged;
  if (!stillSticky && next.sticky !== undefined) next.sticky = undefined;
  let cacheStickyActivated: ResolveDecision["cacheStickyActivated"];
  if (req.large === true) {
    const provider = (choice.kind === "profile" && next.model === choice.model ? req.provider : undefined) ?? providerOf(next.model);
    if (!stillSticky || next.sticky !== provider) cacheStickyActivated = { provider, ttlMs: cacheTtlMs(provider, ttls) };
    next.sticky = provider;
  }
  if (next.cacheKey === undefined) next.cacheKey = newKey("ck_");

  const budget = budgetOf(live, config.budgetMicros);
  const admission = admit({
    entry: next,
    spent: live?.sessionCostMicros ?? 0,
    reserved: live ? reservedOf(live) : 0,
    cost: req.costMicros,
    reserve: req.reserveMicros,
    budget,
    mode: config.budgetMode,
    maxInFlight: config.maxInFlight,
    tierModels: config.tierModels,
  });
  const reservationId = admission === undefined ? undefined : newKey("rsv_");
  if (admission !== undefined) {
    next = hold(next, reservationId!, admission.micros, now + config.reservationTtlMs);
  }
  if (req.costMicros !== undefined) next = applyAddCost(next, req.costMicros);

  const decision: ResolveDecision = {
    model: admission?.model ?? next.model,
    tier: admission?.model === undefined ? next.tier : admission.tier,
    pinned: live !== undefined,
    userExplicit: next.userExplicit,
    strikes: next.strikes,
    escalated,
    requestCount: next.requestCount,
    sessionCostMicros: next.sessionCostMicros,
    reservedMicros: reservedOf(next),
    budgetMicros: budget ?? null,
    downgraded: admission?.model !== undefined,
    cacheSticky: next.sticky !== undefined,
    deployment: next.deployment ?? null,
    rebound,
    cacheKey: next.cacheKey!,
  };
  if (reservationId !== undefined) decision.reservationId = reservationId;
  if (cacheStickyActivated !== undefined) decision.cacheStickyActivated = cacheStickyActivated;
  return { next, result: decision };
};

/** What the registry must learn from a transition. */
export type RegistryEffect = { kind: "upsert"; entry: Entry } | { kind: "remove" } | undefined;

export interface Effects {
  /** The entry to keep, undefined to delete; only meaningful when `changed`. */
  next: Entry | undefined;
  changed: boolean;
  /** A new incarnation: arm its expiry alarm. */
  created: boolean;
  registry: RegistryEffect;
}

/**
 * The live entry: what is stored, unless it has expired (an expired entry is gone
 * on sight), with its expired reservations charged.
 */
export function liveEntry(stored: Entry | undefined, now: number, timeoutMs: number): Entry | undefined {
  return stored && !isExpired(stored, now, timeoutMs) ? expireReservations(stored, now) : undefined;
}

/**
 * Effects of a step that saw `live` (the stored entry unless expired) and
 * produced `next`. The registry hears of creation, a model or tier change
 * (its rows feed byModel and byTier), a pause or resume, and removal; never of
 * touches, hashes or cost, so the hot path stays one storage write. (Token totals,
 * cost, strikes and request count are reported by the session object, at most once
 * a minute: `reportsUsage`, src/session/registry.ts.)
 */
export function effectsOf(stored: Entry | undefined, live: Entry | undefined, next: Entry | undefined, now: number, timeoutMs: number): Effects {
  if (next === stored) return { next, changed: false, created: false, registry: undefined };
  // A step that closes the reservation that kept an idle session alive can leave it past its deadline: it ends now.
  if (next && isExpired(next, now, timeoutMs)) next = undefined;
  if (!next) return { next, changed: true, created: false, registry: stored ? { kind: "remove" } : undefined };
  const created = live === undefined;
  const moved = created || live.model !== next.model || live.tier !== next.tier;
  // The registry's row holds the deadline as a hint that only checks move later: an earlier one must be told.
  const sooner = !created && expiresAt(next, timeoutMs) < expiresAt(live, timeoutMs);
  // Whether it is paused shows in stats, where an operator acts on it: told at once, not with the next report.
  const paused = !created && (live.paused !== undefined) !== (next.paused !== undefined);
  const registry = moved || sooner || paused ? ({ kind: "upsert", entry: next } as const) : undefined;
  return { next, changed: true, created, registry };
}
