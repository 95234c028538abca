/**
 * Budgets that hold under concurrency, as pure functions of (entry, input,
 * now): a resolve reserves its worst-case cost inside the session's one
 * atomic step, a settle replaces the reservation with the actual cost, and an
 * unsettled reservation is charged in full once it expires. Also the session's
 * request rate (a token bucket) and its cap on reservations in flight.
 */
import { reservedOf } from "./entry";
import { SessionError, invalidRequest } from "./errors";
import { tierRank } from "./tiers";
import { TIERS, type ClosedReservation, type Entry, type RateBucket, type Reservation, type RoutedTier, type Tier } from "./types";

/** Most reservations a session holds open at once, whatever SESSION_MAX_IN_FLIGHT says: each one is in every write of the entry. */
export const MAX_OPEN_RESERVATIONS = 256;
/** Closed reservations a session remembers, so that a repeated or late settle is recognised: a burst of the most that can be open. */
export const MAX_CLOSED_RESERVATIONS = 256;
const MS_PER_MINUTE = 60_000;

/** A resolve's worst-case cost: one amount, or one per tier (graceful mode needs the latter). */
export type ReserveMicros = number | Record<RoutedTier, number>;

export type BudgetMode = "strict" | "graceful";

/**
 * The amount to hold for a session. A model picked explicitly is not a tier's model,
 * whatever tier the session carries: it holds the largest amount.
 */
export function amountFor(reserve: ReserveMicros, tier: Tier, userExplicit: boolean): number {
  if (typeof reserve === "number") return reserve;
  if (tier !== "" && !userExplicit) return reserve[tier];
  return Math.max(...TIERS.map((t) => reserve[t]));
}

/**
 * Charges every open reservation that has expired by `now` (held for longer than
 * RESERVATION_TTL_MS, as a session expires when idle for longer than its timeout)
 * in full and closes it.
 * The same entry when none has, so a request that changes nothing writes nothing.
 */
export function expireReservations(entry: Entry, now: number): Entry {
  const open = entry.reservations;
  if (open === undefined || open.length === 0 || !open.some((r) => r.expiresAt < now)) return entry;
  const keep: Reservation[] = [];
  const closed: ClosedReservation[] = [];
  let charged = entry.sessionCostMicros;
  for (const r of open) {
    if (r.expiresAt >= now) {
      keep.push(r);
      continue;
    }
    closed.push({ id: r.id, micros: r.micros });
    // A safe integer: admission and every cost added since kept cost + reserved one.
    charged += r.micros;
  }
  return { ...entry, reservations: keep, closed: remember(entry.closed, closed), sessionCostMicros: charged };
}

function remember(closed: ClosedReservation[] | undefined, more: ClosedReservation[]): ClosedReservation[] {
  const all = closed === undefined ? more : closed.concat(more);
  return all.length > MAX_CLOSED_RESERVATIONS ? all.slice(all.length - MAX_CLOSED_RESERVATIONS) : all;
}

/**
 * Tokens are whole at rest; refills add fractions. Below this a shortfall is
 * rounding, not a missing token.
 */
const TOKEN_EPSILON = 1e-9;

/**
 * SESSION_RATE_PER_MIN as a token bucket of that many tokens, refilled at that
 * many a minute. Answers the bucket after taking one token, or throws
 * `session_rate_limited` with the whole seconds until a token is there.
 */
export function takeToken(bucket: RateBucket | undefined, now: number, perMinute: number): RateBucket {
  const elapsed = bucket === undefined ? Infinity : Math.max(0, now - bucket.at);
  const tokens = Math.min(perMinute, (bucket?.tokens ?? perMinute) + (elapsed * perMinute) / MS_PER_MINUTE);
  if (tokens < 1 - TOKEN_EPSILON) {
    const waitMs = ((1 - tokens) * MS_PER_MINUTE) / perMinute;
    const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000 - TOKEN_EPSILON));
    throw new SessionError("session_rate_limited", `more than ${perMinute} requests a minute on this session; retry in ${retryAfterSeconds} s`, {
      ratePerMin: perMinute,
      retryAfterSeconds,
    });
  }
  return { tokens: Math.max(0, tokens - 1), at: now };
}

export interface Admission {
  /** The session's own tier, or a lower one graceful mode fell back to. */
  tier: Tier;
  /** Set when graceful mode answered for a lower tier. */
  model?: string;
  micros: number;
}

export interface AdmitInput {
  /** The entry as this request leaves it, before the reservation. */
  entry: Entry;
  /** The session's cost and reservations when the request arrived. */
  spent: number;
  reserved: number;
  /** Cost this request adds (resolve's `costMicros`), when given. */
  cost: number | undefined;
  reserve: ReserveMicros | undefined;
  budget: number | undefined;
  mode: BudgetMode;
  maxInFlight: number | undefined;
  tierModels: Partial<Record<RoutedTier, string>>;
}

/**
 * The budget check, atomic because it runs inside the session's one step:
 * cost + reserved + cost added now + this reservation must stay within the
 * budget, and a session at or over its budget takes no reservation at all.
 * Strict mode refuses; graceful mode answers for the highest lower tier whose
 * reservation fits (a model picked explicitly is never moved). Throws when nothing fits.
 */
export function admit(input: AdmitInput): Admission | undefined {
  const { entry, spent, reserved, reserve, budget, mode } = input;
  const cost = input.cost ?? 0;
  if (reserve !== undefined) {
    const open = entry.reservations?.length ?? 0;
    const cap = Math.min(input.maxInFlight ?? MAX_OPEN_RESERVATIONS, MAX_OPEN_RESERVATIONS);
    if (open >= cap) {
      throw new SessionError("session_concurrency_limited", `the session already has ${open} reservations in flight, its limit`, {
        inFlight: open,
        maxInFlight: cap,
      });
    }
  }
  const fits = (micros: number | undefined) =>
    budget === undefined || (spent + reserved + cost + (micros ?? 0) <= budget && (micros === undefined || spent < budget));
  // Charged in full if never settled, a reservation must keep the total a safe integer.
  const safe = (admission: Admission) => {
    if (!Number.isSafeInteger(spent + reserved + cost + admission.micros)) {
      throw invalidRequest("reserveMicros", "would overflow the session's total cost once charged");
    }
    return admission;
  };
  const own = reserve === undefined ? undefined : amountFor(reserve, entry.tier, entry.userExplicit);
  if (fits(own)) return own === undefined ? undefined : safe({ tier: entry.tier, micros: own });

  // A model picked explicitly is the user's, and one an operator pinned is the operator's: graceful mode never answers another.
  if (mode === "graceful" && typeof reserve === "object" && entry.tier !== "" && !entry.userExplicit && !entry.adminPinned) {
    for (let rank = tierRank(entry.tier) - 1; rank >= 0; rank--) {
      const tier = TIERS[rank]!;
      const model = input.tierModels[tier];
      if (model !== undefined && fits(reserve[tier])) return safe({ tier, model, micros: reserve[tier] });
    }
  }
  const details: Record<string, unknown> = { sessionCostMicros: spent, reservedMicros: reserved, budgetMicros: budget };
  if (own !== undefined) details.reserveMicros = own;
  if (input.cost !== undefined) details.costMicros = input.cost;
  const asked = own === undefined ? `${cost} micro-USD` : `a reservation of ${own} micro-USD`;
  throw new SessionError(
    "session_budget_exceeded",
    `session cost ${spent} + reserved ${reserved} + ${asked} would exceed the budget of ${budget}` +
      (spent >= budget! ? " (the session is at its budget)" : ""),
    details,
  );
}

/** Adds an admitted reservation to the entry (a copy). */
export function hold(entry: Entry, id: string, micros: number, expiresAt: number): Entry {
  const open = entry.reservations ?? [];
  return { ...entry, reservations: [...open, { id, micros, expiresAt }] };
}

/**
 * Settles a reservation at its actual cost: an open one is released and the cost
 * added; an expired one, already charged in full, has that charge replaced by the
 * cost; a settled one is left as it is. Throws `reservation_not_found` for any other ID.
 */
export function settleReservation(entry: Entry, reservationId: string, costMicros: number): Entry {
  const open = entry.reservations ?? [];
  const at = open.findIndex((r) => r.id === reservationId);
  if (at !== -1) {
    const r = open[at]!;
    const total = entry.sessionCostMicros + costMicros;
    if (!Number.isSafeInteger(total + reservedOf(entry) - r.micros)) throw invalidRequest("costMicros", "would overflow the session's total cost");
    return {
      ...entry,
      reservations: open.filter((_, i) => i !== at),
      closed: remember(entry.closed, [{ id: r.id, micros: r.micros, costMicros }]),
      sessionCostMicros: total,
    };
  }
  const closed = entry.closed ?? [];
  const done = closed.findIndex((r) => r.id === reservationId);
  if (done === -1) throw new SessionError("reservation_not_found", "no open or recently closed reservation with this ID on this session", { reservationId });
  const r = closed[done]!;
  if (r.costMicros !== undefined) return entry;
  const total = entry.sessionCostMicros - r.micros + costMicros;
  if (!Number.isSafeInteger(total + reservedOf(entry))) throw invalidRequest("costMicros", "would overflow the session's total cost");
  const replaced = closed.slice();
  replaced[done] = { id: r.id, micros: r.micros, costMicros };
  return { ...entry, closed: replaced, sessionCostMicros: Math.max(0, total) };
}
