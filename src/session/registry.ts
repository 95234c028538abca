/**
 * The registry as a derived index: what a session tells its shard, and the
 * pure rules a shard applies to it. A session is the truth; a shard row is a
 * versioned copy of it that deliveries, reconciliation and clear-all keep true.
 */
import { expireReservations } from "./budget";
import { expiresAt } from "./entry";
import type { Entry, Tier } from "./types";

/** What a session's shard row should say: sent by the session (outbox delivery) or read from it (reconciliation). */
export interface RowState {
  /** The session's key: its ID, or the tenant-scoped key. */
  id: string;
  /** The incarnation: random, new each time the session is created. */
  inc: string;
  createdAt: number;
  /**
   * Counts the session object's creations and the changes it reports (model or tier, an
   * earlier deadline, a pause or resume, usage), across incarnations for as long as the object
   * remembers the last one: a later version always wins.
   */
  version: number;
  model: string;
  tier: Tier;
  /** The session's deadline when this was sent. Use only moves it later, so the real deadline is never earlier. */
  expiresAt: number;
  /**
   * The session's token totals when this was sent (absent from a session of an earlier
   * release: 0). They only grow within an incarnation, so the larger of two is the later.
   */
  inputTokens?: number;
  cachedInputTokens?: number;
  /**
   * The session's cost, strikes and request count when this was sent (absent from a session
   * of an earlier release: 0), reported with the token totals. Strikes and requests only grow
   * within an incarnation; the cost does too, but for a late settle of an expired reservation,
   * which a later report or check carries.
   */
  sessionCostMicros?: number;
  strikes?: number;
  requestCount?: number;
  /** Whether an operator has paused the session (absent: not paused). A change is reported at once, with a new version. */
  paused?: boolean;
}

/** The row a session's shard should hold for `entry`, at `now`: its cost as a read shows it, with expired reservations charged. */
export function rowOf(id: string, inc: string, version: number, entry: Entry, timeoutMs: number, now: number): RowState {
  const { model, tier, createdAt, inputTokens = 0, cachedInputTokens = 0, strikes, requestCount, paused } = entry;
  const { sessionCostMicros } = expireReservations(entry, now);
  return {
    id,
    inc,
    createdAt,
    version,
    model,
    tier,
    expiresAt: expiresAt(entry, timeoutMs),
    inputTokens,
    cachedInputTokens,
    sessionCostMicros,
    strikes,
    requestCount,
    paused: paused !== undefined,
  };
}

/** One effect from a session's outbox: its row as it is now, or the end of an incarnation. */
export type Delivery = { kind: "upsert"; row: RowState } | { kind: "remove"; id: string; inc: string };

/** What a shard holds for one session ID. */
export interface HeldRow {
  inc: string;
  createdAt: number;
  version: number;
  expiresAt: number;
}

export type UpsertDecision =
  /** No row: add it. */
  | { kind: "insert" }
  /** Same incarnation, later version: take everything. */
  | { kind: "update" }
  /** Same incarnation and version: only the deadline and the reported totals (tokens, cost, strikes, requests) may have moved on (each only grows: the larger wins). */
  | { kind: "refresh" }
  /** A later incarnation: it replaces the row, and the row's incarnation is over. */
  | { kind: "replace"; retire: string }
  /** Older than what the shard knows, or of an incarnation that is over: ignored. */
  | { kind: "stale"; retire?: string };

/**
 * How a shard takes a session's row. Late and repeated deliveries never win:
 * an incarnation that is over (`retired`) stays over, and the higher version
 * wins, within an incarnation and across them. A session object numbers a new
 * incarnation after the last one it still has to report; once it has reported
 * one ended and forgotten it, that incarnation is retired here.
 *
 * `authoritative` is for what the session answered when its shard asked
 * (reconciliation), taken only while the row is still the one the shard asked
 * about: the truth at that moment, whatever its version says. It still never
 * brings back a retired incarnation, whose end reached the shard after.
 */
export function decideUpsert(held: HeldRow | undefined, retired: boolean, incoming: RowState, authoritative = false): UpsertDecision {
  if (retired) return { kind: "stale" };
  if (!held) return { kind: "insert" };
  if (held.inc === incoming.inc) {
    if (authoritative) return { kind: "update" };
    if (incoming.version === held.version) return { kind: "refresh" };
    return incoming.version > held.version ? { kind: "update" } : { kind: "stale" };
  }
  const newer = incoming.version > held.version || (incoming.version === held.version && incoming.createdAt >= held.createdAt);
  return newer || authoritative ? { kind: "replace", retire: held.inc } : { kind: "stale", retire: incoming.inc };
}

/**
 * A session reports a change of its usage (token totals, cost, strikes, request count) to
 * its shard at most this often, so that resolves, settles and costs stay off the registry:
 * a change within this long of its last report travels with its next report, or its
 * shard's next check of its row.
 */
export const USAGE_REPORT_INTERVAL_MS = 60_000;

/** Whether a step that changed the entry from `before` to `after` reports its usage: a figure moved, and the last report is old enough. */
export function reportsUsage(before: Entry | undefined, after: Entry | undefined, lastReportAt: number | undefined, now: number): boolean {
  if (!before || !after) return false;
  if (lastReportAt !== undefined && now - lastReportAt < USAGE_REPORT_INTERVAL_MS) return false;
  return (
    (after.inputTokens ?? 0) !== (before.inputTokens ?? 0) ||
    (after.cachedInputTokens ?? 0) !== (before.cachedInputTokens ?? 0) ||
    after.sessionCostMicros !== before.sessionCostMicros ||
    after.strikes !== before.strikes ||
    after.requestCount !== before.requestCount
  );
}

/** How long before a row's deadline hint its shard asks the session whether it is still in use. */
export const CHECK_LEAD_MS = 60_000;
/**
 * How long a shard remembers that an incarnation is over, to turn away a delivery
 * that lands late. One that lands later still is undone by reconciliation.
 */
export const RETIRED_TTL_MS = 60 * 60_000;

/**
 * When a shard next checks a row whose deadline hint is `expiresAt`: shortly
 * before it, so a session in use keeps a current hint and stays counted; and
 * else just after it, when the session has either been used since (the hint
 * moves on) or has expired (the row goes).
 */
export function checkAt(expiresAt: number, now: number): number {
  const early = expiresAt - CHECK_LEAD_MS;
  return early > now ? early : Math.max(now, expiresAt + 1);
}
