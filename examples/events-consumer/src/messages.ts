/**
 * The two lifecycle messages edge-session sends on its SESSION_EVENTS queue
 * (docs/events.md), checked field by field: a body that is not one of them is
 * reported and dropped, never retried, since a retry cannot mend it.
 */
import type { LifecycleMessage, SessionBudgetThreshold, SessionEnded } from "../../../src/session/lifecycle";

export type { LifecycleMessage, SessionBudgetThreshold, SessionEnded };

type Fields = Record<string, unknown>;

const isObject = (v: unknown): v is Fields => typeof v === "object" && v !== null && !Array.isArray(v);
/** Times in unix ms, counts and micro-dollars: safe non-negative integers. */
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isText = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/** The message, or why the body is not one. Fields the contract does not name are ignored. */
export function parseMessage(body: unknown): LifecycleMessage | { invalid: string } {
  if (!isObject(body)) return { invalid: "the body is not a JSON object" };
  const bad = (field: string) => ({ invalid: `${String(body.type)}: ${field} is missing or malformed` });
  if (body.type !== "session.ended" && body.type !== "session.budget_threshold") return { invalid: "type is not session.ended or session.budget_threshold" };
  for (const field of ["messageId", "sessionId"]) if (!isText(body[field])) return bad(field);
  if (typeof body.incarnation !== "string") return bad("incarnation");
  if (body.tenant !== null && !isText(body.tenant)) return bad("tenant");
  if (body.type === "session.ended") {
    if (body.reason !== "expired" && body.reason !== "cleared") return bad("reason");
    for (const field of ["createdAt", "endedAt", "requestCount", "sessionCostMicros", "escalations", "strikes"]) if (!isCount(body[field])) return bad(field);
    if (!Array.isArray(body.models) || !body.models.every(isText)) return bad("models");
    const cache = body.cache;
    if (cache !== null) {
      if (!isObject(cache) || !isCount(cache.inputTokens) || !isCount(cache.cachedInputTokens)) return bad("cache");
      if (typeof cache.hitRatio !== "number" || !(cache.hitRatio >= 0 && cache.hitRatio <= 1)) return bad("cache");
    }
    return body as unknown as SessionEnded;
  }
  if (typeof body.percent !== "number" || !(body.percent > 0 && body.percent <= 100)) return bad("percent");
  for (const field of ["at", "sessionCostMicros", "budgetMicros"]) if (!isCount(body[field])) return bad(field);
  return body as unknown as SessionBudgetThreshold;
}

/** The messages this consumer acts on: a session's end, and its spend reaching 80 or 100 percent of its budget. */
export function isAlert(message: LifecycleMessage): boolean {
  return message.type === "session.ended" || message.percent >= 80;
}

/** What the webhook receives: the message without its incarnation, the cache figures reduced to the hit ratio. */
export function alertOf(message: LifecycleMessage): Record<string, unknown> {
  const { type, messageId, tenant, sessionId } = message;
  if (message.type === "session.budget_threshold") {
    const { percent, sessionCostMicros, budgetMicros, at } = message;
    return { type, messageId, tenant, sessionId, percent, sessionCostMicros, budgetMicros, at };
  }
  const { reason, createdAt, endedAt, requestCount, sessionCostMicros, models, escalations, strikes, cache } = message;
  return {
    type,
    messageId,
    tenant,
    sessionId,
    reason,
    createdAt,
    endedAt,
    requestCount,
    sessionCostMicros,
    models,
    escalations,
    strikes,
    cacheHitRatio: cache === null ? null : cache.hitRatio,
  };
}
