/**
 * A session's journal: what happened to it, as events derived from each step
 * (the entry before and after, and the step's result). Pure: the session
 * object numbers and stores the events, and a step that changes nothing
 * notable yields none, so the hot path writes no journal.
 */
import { expiresAt } from "./entry";
import type { Entry, Tier } from "./types";

/** Events a session keeps: the most recent ones. */
export const JOURNAL_LIMIT = 256;

/** Who asked for a change made by a command: an operator (the admin grant) or a gateway (the API grant). */
export type Actor = "admin" | "api";

export type ModelChangeReason = "upgrade" | "escalation" | "explicit" | "failover";

/** An event before the session object numbers it. */
export type EventDraft =
  | { type: "created"; model: string; tier: Tier; actor?: Actor }
  | {
      type: "model_changed";
      model: string;
      tier: Tier;
      from: { model: string; tier: Tier };
      reason: ModelChangeReason;
      deployment?: string | null;
      actor?: Actor;
    }
  | { type: "escalated"; strikes: number; model: string; tier: Tier; actor?: Actor }
  | { type: "cache_sticky"; provider: string; ttlMs: number }
  | { type: "budget_threshold"; percent: number; sessionCostMicros: number; budgetMicros: number }
  | { type: "paused"; actor?: Actor }
  | { type: "resumed"; actor?: Actor }
  | { type: "pinned"; model: string; tier: Tier; actor?: Actor }
  | { type: "unpinned"; actor?: Actor }
  | { type: "budget_changed"; budgetMicros: number | null; actor?: Actor }
  | { type: "ended"; reason: "expired" | "cleared"; actor?: Actor };

/** A journal event: numbered (strictly increasing per session object) and timed (unix ms). */
export type JournalEvent = EventDraft & { seq: number; at: number };

/** Percents of its budget at which a session's spend is announced, once each per incarnation. */
export const BUDGET_THRESHOLDS = [50, 80, 100] as const;

/** The highest threshold `spent` has reached of `budget`, or 0. */
function thresholdOf(spent: number, budget: number | undefined): number {
  if (budget === undefined || spent <= 0) return 0;
  let reached = 0;
  for (const percent of BUDGET_THRESHOLDS) if (spent * 100 >= percent * budget) reached = percent;
  return reached;
}

/**
 * The entry with the thresholds its spend has reached marked as announced. The
 * same entry when none is new, so a step that spends nothing notable writes nothing more.
 */
export function markThresholds(next: Entry, budget: number | undefined): Entry {
  const reached = thresholdOf(next.sessionCostMicros, budget);
  return reached > (next.alerted ?? 0) ? { ...next, alerted: reached } : next;
}

/**
 * The thresholds an incarnation reaches as it ends: its last entry (expired
 * reservations charged) may have spent past one its steps never announced.
 */
export function thresholdsAtEnd(last: Entry, budget: number | undefined, announced: number): ThresholdEvent[] {
  return budget === undefined ? [] : thresholdEvents(announced, thresholdOf(last.sessionCostMicros, budget), last.sessionCostMicros, budget);
}

type ThresholdEvent = Extract<EventDraft, { type: "budget_threshold" }>;

/** An event for each threshold above `before` up to `reached`, lowest first. */
function thresholdEvents(before: number, reached: number, sessionCostMicros: number, budgetMicros: number): ThresholdEvent[] {
  const events: ThresholdEvent[] = [];
  for (const percent of BUDGET_THRESHOLDS)
    if (percent > before && percent <= reached) events.push({ type: "budget_threshold", percent, sessionCostMicros, budgetMicros });
  return events;
}

/** What the journal needs of a step, beyond the entries. */
export interface StepFacts {
  /** The command, or "resolve". */
  name: string;
  /** Who asked, for a command; absent for resolve (the gateway's request). */
  actor?: Actor | undefined;
  /** Resolve's decision, when the step was a resolve. */
  decision?: {
    rebound: boolean;
    explicit: boolean;
    cacheStickyActivated?: { provider: string; ttlMs: number } | undefined;
  };
  /** The effective budget after the step. */
  budgetMicros: number | undefined;
}

/**
 * The events of one step: `stored` is what the object held, `live` the same
 * unless it had expired, `next` what it keeps (undefined: the session ended).
 */
export function eventsOf(stored: Entry | undefined, live: Entry | undefined, next: Entry | undefined, facts: StepFacts): EventDraft[] {
  if (next === live && stored === live) return [];
  const events: EventDraft[] = [];
  const by = facts.actor === undefined ? {} : { actor: facts.actor };
  if (stored !== undefined && live === undefined) events.push({ type: "ended", reason: "expired" });
  if (next === undefined) {
    if (live !== undefined) events.push({ type: "ended", reason: facts.name === "clearSession" ? "cleared" : "expired", ...by });
    return events;
  }
  if (live === undefined) {
    events.push({ type: "created", model: next.model, tier: next.tier, ...by });
  } else if (next !== live) {
    changesOf(live, next, facts, by, events);
  }
  const sticky = facts.decision?.cacheStickyActivated;
  if (sticky !== undefined) events.push({ type: "cache_sticky", provider: sticky.provider, ttlMs: sticky.ttlMs });
  if (facts.budgetMicros !== undefined) {
    events.push(...thresholdEvents(live?.alerted ?? 0, next.alerted ?? 0, next.sessionCostMicros, facts.budgetMicros));
  }
  return events;
}

function changesOf(live: Entry, next: Entry, facts: StepFacts, by: { actor?: Actor }, events: EventDraft[]): void {
  if (live.paused === undefined && next.paused !== undefined) events.push({ type: "paused", ...by });
  if (live.paused !== undefined && next.paused === undefined) events.push({ type: "resumed", ...by });
  // An escalation that moved the session counts itself (`escalations`); one at the top tier with its model moves nothing.
  const escalated = (next.escalations ?? 0) > (live.escalations ?? 0);
  if (escalated) events.push({ type: "escalated", strikes: next.strikes, model: next.model, tier: next.tier, ...by });
  if (live.model !== next.model || live.tier !== next.tier) {
    events.push({
      type: "model_changed",
      model: next.model,
      tier: next.tier,
      from: { model: live.model, tier: live.tier },
      reason: reasonOf(facts, escalated),
      ...by,
    });
  } else if (facts.decision?.rebound === true) {
    events.push({
      type: "model_changed",
      model: next.model,
      tier: next.tier,
      from: { model: live.model, tier: live.tier },
      reason: "failover",
      deployment: next.deployment ?? null,
    });
  }
  if (live.adminPinned === undefined && next.adminPinned !== undefined) events.push({ type: "pinned", model: next.model, tier: next.tier, ...by });
  if (live.adminPinned !== undefined && next.adminPinned === undefined) events.push({ type: "unpinned", ...by });
  if (live.budgetMicros !== next.budgetMicros) events.push({ type: "budget_changed", budgetMicros: next.budgetMicros ?? null, ...by });
}

function reasonOf(facts: StepFacts, escalated: boolean): ModelChangeReason {
  if (escalated) return "escalation";
  if (facts.name === "resolve") return facts.decision?.explicit === true ? "explicit" : "upgrade";
  return "explicit";
}

/** When a session that ended by expiry ended: its deadline, not the moment it was found. */
export function endedAt(entry: Entry, now: number, timeoutMs: number): number {
  return Math.min(now, expiresAt(entry, timeoutMs));
}
