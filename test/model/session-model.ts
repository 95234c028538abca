/**
 * An independent model of the session service, written from the contract: the
 * docs (docs/http-api.md: Session IDs, Resolve, Stats and clear-all;
 * docs/design.md: Tiers, Differences from the reference Go package; docs/rpc.md:
 * No live session) and the reference godoc (shared/reference). It imports only
 * types from src/session, never a rule, so the model-based and parity tests
 * compare the back ends with a second reading of the contract instead of with
 * the code they run.
 *
 * Where the docs are silent, the rule is the one the rule tests name
 * (test/rules.test.ts), which record the wording:
 * - set on an existing session moves model and tier only when the model differs
 *   (reference SetSession), and counts a request;
 * - the strike rule is cumulative: a,a,a,b,b gives 0,1,2,2,3;
 * - a tier of "" ranks as MEDIUM (reference tierRank default), so escalating it
 *   gives COMPLEX; REASONING stays REASONING.
 *
 * Results are plain values; a rejected call throws `ModelError`, whose message
 * starts with the error code, as `rpcFailure` (test/support/rpc.ts) reports an RPC error.
 */
import type { Entry, RoutedTier, SessionCost, SessionView, Tier } from "../../src/session/types";

/** The configuration values the model needs. */
export interface ModelConfig {
  timeoutMs: number;
  strikeThreshold: number;
  tierModels: Partial<Record<RoutedTier, string>>;
  routingProfiles: readonly string[];
  budgetMicros: number | undefined;
  /** RESERVATION_TTL_MS. The model runs strict mode with no in-flight cap and no rate limit: the defaults. */
  reservationTtlMs: number;
}

export class ModelError extends Error {
  constructor(
    readonly code: string,
    detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

/** docs/design.md "Tiers": cheapest first. */
const TIER_ORDER: readonly RoutedTier[] = ["SIMPLE", "MEDIUM", "COMPLEX", "REASONING"];
/** Reference tierRank: "" (an explicit pin) ranks like MEDIUM. */
const EMPTY_TIER_RANK = 1;
/** Godoc Entry.RecentHashes "sliding window": the reference keeps the last 3. */
const HASH_WINDOW = 3;
/** Godoc RecordRequestHash: "2+ consecutive identical hashes" make a strike. */
const STRIKE_RUN = 2;
/** Godoc SessionCostMicros: 1 USD = 1_000_000 micros. */
const MICROS_PER_USD = 1_000_000;
/** docs/http-api.md "Session IDs": IDs are 1–256 characters. */
const MAX_ID_LENGTH = 256;
/** docs/http-api.md "Stats and clear-all": stats show the first 8 code points of an ID, plus "..." when longer. */
const SHOWN_ID_CODE_POINTS = 8;
/** docs/http-api.md "Stats and clear-all": byModel lists at most 100 models, the rest under "(other)". */
const LISTED_MODELS = 100;
const OTHER = "(other)";
/** docs/http-api.md "Session IDs": no control characters (C0, DEL, C1), no lone surrogate halves, no format (Cf) characters. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const FORMAT = /\p{Cf}/u;

export interface ModelResolveInput {
  sessionId: string;
  /** body.model: a routing profile or an explicit model. */
  model: string;
  /** The router's choice; docs/http-api.md "Resolve": required when `model` is a routing profile. */
  routed?: { model: string; tier: RoutedTier };
  /** The last user message's text and the tool the last assistant message called, already hashed. */
  hash: string;
  costMicros?: number;
  /** The "reserveMicros": a worst-case cost held against the budget until settled. */
  reserveMicros?: number;
}

/** Issue 15's `usage`: a call's input tokens, cached ones included, and how many of them were cached. */
export interface ModelUsage {
  inputTokens: number;
  cachedInputTokens: number;
}

/** A reservation as the budget issue describes it: open until settled, or charged in full once RESERVATION_TTL_MS has passed. */
interface Hold {
  id: string;
  micros: number;
  expiresAt: number;
}

/** The model's session: the reference entry, plus what the budget issue adds. */
type ModelEntry = Entry & {
  holds: Hold[];
  /** Reservations no longer open: settled at `cost`, or charged in full on expiry (`cost` undefined). */
  done: Map<string, { micros: number; cost: number | undefined }>;
  ownBudget: number | undefined;
  /** Issue 15: the input tokens reported with settle and cost, and the cached ones among them. */
  tokens: number;
  cached: number;
};

export interface ModelDecision {
  sessionId: string;
  source: "explicit";
  model: string;
  tier: Tier;
  pinned: boolean;
  userExplicit: boolean;
  strikes: number;
  escalated: boolean;
  requestCount: number;
  sessionCostMicros: number;
  reservedMicros: number;
  budgetMicros: number | null;
  reservationId?: string;
  downgraded: boolean;
  cacheSticky: boolean;
  deployment: string | null;
  rebound: boolean;
  cacheKey: string;
}

/** docs/http-api.md "Stats and clear-all": one row of the sessions list. */
export interface ModelStatsRow {
  id: string;
  sessionId: string;
  model: string;
  tier: Tier;
  age: number;
  sessionCostMicros: number;
  strikes: number;
  requestCount: number;
  paused: boolean;
}

export interface ModelStats {
  count: number;
  sessions: ModelStatsRow[];
  byModel: Record<string, number>;
  byTier: Record<string, number>;
  /** Issue 15: the token totals of the live sessions and cached / input, null when input is 0. */
  cache: { inputTokens: number; cachedInputTokens: number; hitRatio: number | null };
  /** Issue 16: sessionCostMicros summed over the live sessions. */
  spendMicros: number;
}

const rank = (tier: Tier): number => (tier === "" ? EMPTY_TIER_RANK : TIER_ORDER.indexOf(tier));

/** Code point order (docs/http-api.md "Stats and clear-all": ties and the sessions list sort "in code point order"). */
export function byCodePoints(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

export class SessionModel {
  private readonly entries = new Map<string, ModelEntry>();
  private reservations = 0;
  private cacheKeys = 0;

  constructor(
    readonly config: ModelConfig,
    private readonly now: () => number,
  ) {}

  /**
   * The entry if it is live: expired when idle strictly longer than the timeout (godoc
   * GetSession), unless a reservation is still open (a request in flight keeps its
   * session). A reservation unsettled for longer than RESERVATION_TTL_MS is charged in full and closed.
   */
  private live(id: string): ModelEntry | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    const now = this.now();
    const lastHold = Math.max(-Infinity, ...e.holds.map((h) => h.expiresAt));
    if (now - e.lastUsedAt > this.config.timeoutMs && now > lastHold) {
      this.entries.delete(id);
      return undefined;
    }
    for (const h of e.holds.filter((h) => h.expiresAt < now)) {
      e.sessionCostMicros += h.micros;
      e.done.set(h.id, { micros: h.micros, cost: undefined });
    }
    e.holds = e.holds.filter((h) => h.expiresAt >= now);
    return e;
  }

  private reserved(e: ModelEntry): number {
    return e.holds.reduce((sum, h) => sum + h.micros, 0);
  }

  private budget(e: ModelEntry | undefined): number | undefined {
    return e?.ownBudget ?? this.config.budgetMicros;
  }

  private view(id: string, e: ModelEntry): SessionView {
    const { holds: _holds, done: _done, ownBudget: _own, tokens, cached, ...base } = copyOf(e);
    return {
      id,
      ...base,
      budgetMicros: this.budget(e) ?? null,
      reservedMicros: this.reserved(e),
      inFlight: e.holds.length,
      // Issue 15: a resolve gives the session a cache key; histories name no deployment.
      cacheKey: e.cacheKey ?? null,
      deployment: null,
      inputTokens: tokens,
      cachedInputTokens: cached,
      // Issue 16: histories hold no operator actions.
      paused: false,
      adminPinned: false,
    };
  }

  /** Issue 15: usage is two non-negative safe integers, the cached ones at most the input ones (which count them). */
  private checkUsage(usage: ModelUsage | undefined): void {
    if (usage === undefined) return;
    const ok = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
    if (typeof usage !== "object" || usage === null || !ok(usage.inputTokens) || !ok(usage.cachedInputTokens) || usage.cachedInputTokens > usage.inputTokens)
      throw new ModelError("invalid_request", "usage");
  }

  /** Totals stay safe integers; nothing changes otherwise. */
  private usageAfter(e: ModelEntry, usage: ModelUsage | undefined): { tokens: number; cached: number } {
    const tokens = e.tokens + (usage?.inputTokens ?? 0);
    const cached = e.cached + (usage?.cachedInputTokens ?? 0);
    if (!Number.isSafeInteger(tokens) || !Number.isSafeInteger(cached)) throw new ModelError("invalid_request", "usage overflow");
    return { tokens, cached };
  }

  private checkId(id: string): void {
    if (id === "" || id.length > MAX_ID_LENGTH || CONTROL.test(id) || LONE_SURROGATE.test(id) || FORMAT.test(id))
      throw new ModelError("invalid_session_id", id);
  }

  /** Set on a live entry or none, as a new entry: nothing is stored until the whole call succeeds. */
  private pin(live: ModelEntry | undefined, model: string, tier: Tier, userExplicit: boolean): ModelEntry {
    const now = this.now();
    if (!live)
      return {
        holds: [],
        done: new Map(),
        ownBudget: undefined,
        tokens: 0,
        cached: 0,
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
    const e = copyOf(live);
    this.use(e);
    if (e.model !== model) {
      e.model = model;
      e.tier = tier;
    }
    e.userExplicit ||= userExplicit;
    return e;
  }

  /** Counts one request on the entry (godoc TouchSession). */
  private use(e: ModelEntry): void {
    e.lastUsedAt = this.now();
    e.requestCount++;
  }

  private hash(e: ModelEntry, hash: string): void {
    e.recentHashes = [...e.recentHashes, hash].slice(-HASH_WINDOW);
    const tail = e.recentHashes.slice(-STRIKE_RUN);
    if (tail.length === STRIKE_RUN && tail.every((h) => h === hash)) e.strikes++;
  }

  /** One tier up, to the new tier's TIER_MODELS model (docs/design.md, differences from the reference); explicit pins never move. */
  private bump(e: ModelEntry): void {
    if (e.userExplicit) return;
    const tier = TIER_ORDER[Math.min(Math.max(rank(e.tier), 0) + 1, TIER_ORDER.length - 1)]!;
    e.tier = tier;
    e.model = this.config.tierModels[tier] ?? e.model;
    e.escalated = true;
  }

  get(id: string): SessionView | null {
    this.checkId(id);
    const e = this.live(id);
    return e ? this.view(id, e) : null;
  }

  set(id: string, model: string, tier: Tier, userExplicit = false): SessionView {
    this.checkId(id);
    if (model === "") throw new ModelError("invalid_request", "model");
    if (tier !== "" && !TIER_ORDER.includes(tier)) throw new ModelError("invalid_request", "tier");
    const e = this.pin(this.live(id), model, tier, userExplicit);
    this.entries.set(id, e);
    return this.view(id, e);
  }

  touch(id: string): SessionView | null {
    this.checkId(id);
    const e = this.live(id);
    if (!e) return null;
    this.use(e);
    return this.view(id, e);
  }

  /** Strikes after recording; 0 for an unknown session (docs/rpc.md "No live session"). */
  recordHash(id: string, hash: string): number {
    this.checkId(id);
    if (hash === "") throw new ModelError("invalid_request", "hash");
    const e = this.live(id);
    if (!e) return 0;
    this.hash(e, hash);
    return e.strikes;
  }

  escalate(id: string): SessionView | null {
    this.checkId(id);
    const e = this.live(id);
    if (!e) return null;
    this.bump(e);
    return this.view(id, e);
  }

  /** docs/design.md, differences from the reference: costs are non-negative safe integers, and totals stay safe integers. */
  addCost(id: string, micros: number, usage?: ModelUsage): SessionCost | null {
    this.checkId(id);
    if (!Number.isSafeInteger(micros) || micros < 0) throw new ModelError("invalid_request", "micros");
    this.checkUsage(usage);
    const e = this.live(id);
    if (!e) return null;
    // The budget issue: a reservation is charged in full if never settled, so the total counts it.
    if (!Number.isSafeInteger(e.sessionCostMicros + this.reserved(e) + micros)) throw new ModelError("invalid_request", "micros overflow");
    const { tokens, cached } = this.usageAfter(e, usage);
    e.sessionCostMicros += micros;
    e.tokens = tokens;
    e.cached = cached;
    return this.costOf(e);
  }

  private costOf(e: ModelEntry): SessionCost {
    return { sessionCostMicros: e.sessionCostMicros, costUSD: e.sessionCostMicros / MICROS_PER_USD };
  }

  /** 0 for an unknown session (docs/rpc.md "No live session"). */
  getCostUSD(id: string): number {
    this.checkId(id);
    const e = this.live(id);
    return e ? this.costOf(e).costUSD : 0;
  }

  clear(id: string): void {
    this.checkId(id);
    this.entries.delete(id);
  }

  /** docs/http-api.md "Resolve", steps 2 to 6, for a request that names its session. */
  resolve(input: ModelResolveInput): ModelDecision {
    this.checkId(input.sessionId);
    const id = input.sessionId;
    const profile = this.config.routingProfiles.includes(input.model);
    const routed = input.routed;
    if (profile && !routed) throw new ModelError("invalid_request", "routed is required when body.model is a routing profile");
    const before = this.live(id);
    const spent = before?.sessionCostMicros ?? 0;
    const reserved = before ? this.reserved(before) : 0;
    const cost = input.costMicros ?? 0;
    const reserve = input.reserveMicros;
    const budget = this.budget(before);
    // The budget issue: spent + reserved + this request's cost and reservation must stay within
    // the budget, and a session at its budget takes no reservation. A refused request records nothing.
    if (budget !== undefined && (spent + reserved + cost + (reserve ?? 0) > budget || (reserve !== undefined && spent >= budget))) {
      throw new ModelError("session_budget_exceeded", `${spent} + ${reserved} + ${cost} + ${reserve}`);
    }
    const pinned = before !== undefined;
    let e: ModelEntry;
    if (!profile || !routed) {
      // docs/http-api.md "Resolve" step 2: any other body.model is an explicit choice, pinned like set(id, model, "", true).
      e = this.pin(before, input.model, "", true);
    } else if (!before) {
      e = this.pin(undefined, routed.model, routed.tier, false);
    } else {
      e = copyOf(before);
      this.use(e);
      // Upgrade only to a strictly higher tier, even with the same model; never down; explicit pins keep their model.
      if (!e.userExplicit && rank(routed.tier) > rank(e.tier)) {
        e.model = routed.model;
        e.tier = routed.tier;
      }
    }
    const strikesBefore = e.strikes;
    this.hash(e, input.hash);
    let escalated = false;
    if (e.strikes > strikesBefore && e.strikes >= this.config.strikeThreshold && !e.userExplicit) {
      this.bump(e);
      escalated = true;
    }
    // Totals stay safe integers even once every open reservation, this one included, is charged.
    if (!Number.isSafeInteger(e.sessionCostMicros + this.reserved(e) + cost + (reserve ?? 0))) throw new ModelError("invalid_request", "costMicros overflow");
    e.sessionCostMicros += cost;
    let reservationId: string | undefined;
    if (reserve !== undefined) {
      reservationId = `model-reservation-${++this.reservations}`;
      e.holds.push({ id: reservationId, micros: reserve, expiresAt: this.now() + this.config.reservationTtlMs });
    }
    this.entries.set(id, e);
    const { model, tier, userExplicit, strikes, requestCount, sessionCostMicros } = e;
    const decision: ModelDecision = {
      sessionId: id,
      source: "explicit",
      model,
      tier,
      pinned,
      userExplicit,
      strikes,
      escalated,
      requestCount,
      sessionCostMicros,
      reservedMicros: this.reserved(e),
      budgetMicros: budget ?? null,
      downgraded: false,
      // Issue 15: histories send no large request, deployment or failover.
      cacheSticky: false,
      deployment: null,
      rebound: false,
      cacheKey: (e.cacheKey ??= `model-cache-key-${++this.cacheKeys}`),
    };
    if (reservationId !== undefined) decision.reservationId = reservationId;
    return decision;
  }

  /** The budget issue's settle: releases an open reservation and adds the cost; replaces an expired one's full charge; a repeat changes nothing. */
  settle(id: string, reservationId: string, cost: number, usage?: ModelUsage): { sessionCostMicros: number; costUSD: number; reservedMicros: number } | null {
    this.checkId(id);
    if (reservationId === "") throw new ModelError("invalid_request", "reservationId");
    if (!Number.isSafeInteger(cost) || cost < 0) throw new ModelError("invalid_request", "costMicros");
    this.checkUsage(usage);
    const e = this.live(id);
    if (!e) return null;
    const open = e.holds.find((h) => h.id === reservationId);
    const done = e.done.get(reservationId);
    const wasSettled = done?.cost !== undefined;
    const after = open
      ? e.sessionCostMicros + cost + this.reserved(e) - open.micros
      : done && done.cost === undefined
        ? e.sessionCostMicros - done.micros + cost + this.reserved(e)
        : 0;
    if (!Number.isSafeInteger(after)) throw new ModelError("invalid_request", "costMicros overflow");
    if (!open && !done) throw new ModelError("reservation_not_found", reservationId);
    // Issue 15: usage is added with the cost, once: a repeated settle adds nothing; a late settle of an expired reservation adds it.
    if (open || !wasSettled) Object.assign(e, this.usageAfter(e, usage));
    if (open) {
      e.holds = e.holds.filter((h) => h !== open);
      e.done.set(reservationId, { micros: open.micros, cost });
      e.sessionCostMicros += cost;
    } else if (done && done.cost === undefined) {
      e.sessionCostMicros += cost - done.micros;
      done.cost = cost;
    }
    // docs/http-api.md "Budgets": a settle that settles something restarts the idle time; a repeat changes nothing.
    if (open || !wasSettled) e.lastUsedAt = this.now();
    return { ...this.costOf(e), reservedMicros: this.reserved(e) };
  }

  /** The budget issue's PUT budget: the session's own budget, or null for SESSION_BUDGET_MICROS. */
  setBudget(id: string, budget: number | null): SessionView | null {
    this.checkId(id);
    if (budget !== null && (!Number.isSafeInteger(budget) || budget < 0)) throw new ModelError("invalid_request", "budgetMicros");
    const e = this.live(id);
    if (!e) return null;
    e.ownBudget = budget ?? undefined;
    return this.view(id, e);
  }

  /** docs/http-api.md "Stats and clear-all": totals over live sessions, the list sorted by ID with truncated IDs and ages in whole seconds. */
  stats(): ModelStats {
    const now = this.now();
    const rows = [...this.entries.keys()]
      .flatMap((id) => {
        const e = this.live(id);
        return e ? [{ id, e }] : [];
      })
      .sort((a, b) => byCodePoints(a.id, b.id));
    const models = new Map<string, number>();
    const tiers: Record<string, number> = {};
    // Exact sums, rounded once: a total of safe integers need not be one.
    let inputTokens = 0n;
    let cachedInputTokens = 0n;
    let spendMicros = 0n;
    for (const { e } of rows) {
      models.set(e.model, (models.get(e.model) ?? 0) + 1);
      define(tiers, e.tier, (tiers[e.tier] ?? 0) + 1);
      inputTokens += BigInt(e.tokens);
      cachedInputTokens += BigInt(e.cached);
      spendMicros += BigInt(e.sessionCostMicros);
    }
    const ranked = [...models].filter(([m]) => m !== OTHER).sort(([a, m], [b, n]) => n - m || byCodePoints(a, b));
    const byModel: Record<string, number> = {};
    for (const [m, n] of ranked.slice(0, LISTED_MODELS)) define(byModel, m, n);
    const other = ranked.slice(LISTED_MODELS).reduce((sum, [, n]) => sum + n, models.get(OTHER) ?? 0);
    if (other > 0) define(byModel, OTHER, other);
    return {
      count: rows.length,
      // Issue 16: the full ID, the tier, cost, strikes, requests, and paused (the model has no pause: false).
      sessions: rows.map(({ id, e }) => ({
        id: shownId(id),
        sessionId: id,
        model: e.model,
        tier: e.tier,
        age: Math.floor((now - e.createdAt) / 1000),
        sessionCostMicros: e.sessionCostMicros,
        strikes: e.strikes,
        requestCount: e.requestCount,
        paused: false,
      })),
      byModel,
      byTier: tiers,
      cache: {
        inputTokens: Number(inputTokens),
        cachedInputTokens: Number(cachedInputTokens),
        hitRatio: inputTokens > 0n ? Number(cachedInputTokens) / Number(inputTokens) : null,
      },
      spendMicros: Number(spendMicros),
    };
  }

  /** docs/http-api.md "Stats and clear-all": removes every session; answers how many there were. */
  clearAll(): { cleared: number } {
    const cleared = this.stats().count;
    this.entries.clear();
    return { cleared };
  }
}

function copyOf(e: ModelEntry): ModelEntry {
  return { ...e, recentHashes: [...e.recentHashes], holds: e.holds.map((h) => ({ ...h })), done: new Map([...e.done].map(([k, v]) => [k, { ...v }])) };
}

function shownId(id: string): string {
  const points = Array.from(id);
  return points.length > SHOWN_ID_CODE_POINTS ? points.slice(0, SHOWN_ID_CODE_POINTS).join("") + "..." : id;
}

/** An own data property, so "__proto__" and "constructor" are counts like any model name (docs/http-api.md "Stats and clear-all"). */
function define(o: Record<string, number>, key: string, value: number): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
