/**
 * Lifecycle messages for the SESSION_EVENTS queue: a session's end, and its
 * spend crossing 50, 80 and 100 percent of its budget. Each is decided once
 * per incarnation, in the same step that changes the entry, and carries an ID
 * (`messageId`) that names that decision, so a consumer can drop the copy a
 * retried send may add.
 */
import { modelsOf } from "./entry";
import type { EventDraft } from "./journal";
import { NAMESPACE_SEPARATOR } from "./stats";
import type { Entry } from "./types";

export interface SessionRef {
  /** The session ID, without the tenant. */
  sessionId: string;
  /** The tenant of a scoped session; null for none. */
  tenant: string | null;
  /** The incarnation. */
  incarnation: string;
}

export interface SessionEnded extends SessionRef {
  type: "session.ended";
  messageId: string;
  reason: "expired" | "cleared";
  createdAt: number;
  endedAt: number;
  requestCount: number;
  sessionCostMicros: number;
  /** Models used, in order of first use. */
  models: string[];
  /** Times an escalation moved the session (up a tier, or at the top tier to its model). */
  escalations: number;
  strikes: number;
  /** Input tokens reported with settle and cost; null when none were, so no hit ratio is known. */
  cache: { inputTokens: number; cachedInputTokens: number; hitRatio: number } | null;
}

export interface SessionBudgetThreshold extends SessionRef {
  type: "session.budget_threshold";
  messageId: string;
  percent: number;
  at: number;
  sessionCostMicros: number;
  budgetMicros: number;
}

export type LifecycleMessage = SessionEnded | SessionBudgetThreshold;

/** The session ID and tenant of an object's key (see `namespacedKey`). */
export function refOf(key: string, incarnation: string): SessionRef {
  const cut = key.indexOf(NAMESPACE_SEPARATOR);
  return cut < 0 ? { sessionId: key, tenant: null, incarnation } : { sessionId: key.slice(cut + 1), tenant: key.slice(0, cut), incarnation };
}

/**
 * The ID of one decision. An incarnation's ID is a random UUID, unique across
 * sessions; a session last stored by a release without incarnations has none
 * until it ends, so its decisions are named by its tenant and ID instead (such
 * a session ends once: the next incarnation has a UUID).
 */
function messageIdOf(ref: SessionRef, decision: string): string {
  return ref.incarnation !== "" ? `${ref.incarnation}:${decision}` : `${JSON.stringify([ref.tenant, ref.sessionId])}:${decision}`;
}

export function endedMessage(ref: SessionRef, entry: Entry, reason: "expired" | "cleared", endedAt: number): SessionEnded {
  const input = entry.inputTokens ?? 0;
  const cached = entry.cachedInputTokens ?? 0;
  return {
    type: "session.ended",
    messageId: messageIdOf(ref, "ended"),
    ...ref,
    reason,
    createdAt: entry.createdAt,
    endedAt,
    requestCount: entry.requestCount,
    sessionCostMicros: entry.sessionCostMicros,
    models: modelsOf(entry),
    escalations: entry.escalations ?? 0,
    strikes: entry.strikes,
    cache: input > 0 ? { inputTokens: input, cachedInputTokens: cached, hitRatio: cached / input } : null,
  };
}

/** The `session.budget_threshold` message of each `budget_threshold` event among `events`, decided at `at`. */
export function thresholdMessages(ref: SessionRef, events: readonly EventDraft[], at: number): SessionBudgetThreshold[] {
  const messages: SessionBudgetThreshold[] = [];
  for (const e of events) {
    if (e.type !== "budget_threshold") continue;
    const { percent, sessionCostMicros, budgetMicros } = e;
    messages.push({ type: "session.budget_threshold", messageId: messageIdOf(ref, `budget:${percent}`), ...ref, percent, at, sessionCostMicros, budgetMicros });
  }
  return messages;
}
