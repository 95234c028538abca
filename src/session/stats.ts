/** Registry rows and the stats view of them (reference `GetStats`), as pure functions. */
import { compareCodePoints } from "./hashing";
import type { Tier } from "./types";

export interface RegistryRow {
  id: string;
  model: string;
  tier: Tier;
  createdAt: number;
  sessionCostMicros: number;
  strikes: number;
  requestCount: number;
  paused: boolean;
}

/**
 * Reference `SessionInfo`: a truncated ID, the model and the age in whole seconds; plus the tenant
 * of a scoped session, and what an operator acts on: the full ID, the tier, cost, strikes,
 * requests and whether it is paused.
 */
export interface SessionInfo {
  /** The first 8 code points of the session ID, plus "..." when longer (reference behaviour). */
  id: string;
  /** The session ID in full, without the tenant: what the per-session routes take. */
  sessionId: string;
  /** Present only for a tenant-scoped session, so an unscoped ID "acme:c1" never reads like tenant acme's "c1". */
  tenant?: string;
  model: string;
  tier: Tier;
  age: number;
  sessionCostMicros: number;
  strikes: number;
  requestCount: number;
  paused: boolean;
}

/** Input tokens reported with settle and cost, summed over the live sessions, and the share read from prompt caches. */
export interface CacheStats {
  inputTokens: number;
  cachedInputTokens: number;
  /** cachedInputTokens / inputTokens; null when inputTokens is 0. */
  hitRatio: number | null;
}

export interface Stats {
  count: number;
  sessions: SessionInfo[];
  byModel: Record<string, number>;
  byTier: Record<string, number>;
  cache: CacheStats;
  /** sessionCostMicros summed over the live sessions. */
  spendMicros: number;
  nextCursor?: string;
}

/** The cache figures of token totals: the ratio is null when there is nothing to divide by. */
export function cacheStats(inputTokens: number, cachedInputTokens: number): CacheStats {
  return { inputTokens, cachedInputTokens, hitRatio: inputTokens > 0 ? cachedInputTokens / inputTokens : null };
}

/**
 * Reference `GetStats` shows the first 8 bytes of an ID plus "..." when longer.
 * We count code points instead: a byte or UTF-16 cut can split a character and
 * put a lone surrogate (or invalid UTF-8) into the JSON.
 */
const SHOWN_ID_CODE_POINTS = 8;

export function truncateId(id: string): string {
  const points = Array.from(id);
  return points.length > SHOWN_ID_CODE_POINTS ? points.slice(0, SHOWN_ID_CODE_POINTS).join("") + "..." : id;
}

/**
 * Separates a tenant's namespace from the session ID in object names and registry keys. A control
 * character: validated session IDs and namespaces never contain one, so a scoped key never equals an
 * unscoped ID (which is its own key) and splits one way only. With a printable separator such as ":",
 * the unscoped ID "acme:c1" named tenant acme's session "c1".
 */
export const NAMESPACE_SEPARATOR = "\u001f";

export function namespacedKey(namespace: string, sessionId: string): string {
  return namespace + NAMESPACE_SEPARATOR + sessionId;
}

/** A registry row as stats shows it: the ID truncated and whole, and a scoped session's tenant whole in its own field. */
export function sessionInfo(row: RegistryRow, now: number): SessionInfo {
  const age = Math.max(0, Math.floor((now - row.createdAt) / 1000));
  const cut = row.id.indexOf(NAMESPACE_SEPARATOR);
  const sessionId = cut < 0 ? row.id : row.id.slice(cut + 1);
  const { model, tier, sessionCostMicros, strikes, requestCount, paused } = row;
  const shown = { id: truncateId(sessionId), sessionId, model, tier, age, sessionCostMicros, strikes, requestCount, paused };
  return cut < 0 ? shown : { ...shown, tenant: row.id.slice(0, cut) };
}

/** Code point order is UTF-8 byte order, which is SQLite's BINARY collation: shards and merge agree. */
export const compareIds = compareCodePoints;

/**
 * Counts by key. A Map, not an object: a model may be named "constructor" or
 * "__proto__", which an ordinary object would read from, or write to, its prototype.
 */
export type Tally = Map<string, number>;

/** Sums `[key, n]` pairs by key: one shard's GROUP BY rows, or every shard's totals merged. */
export function tally(pairs: Iterable<readonly [string, number]>): Tally {
  const out: Tally = new Map();
  for (const [key, n] of pairs) out.set(key, (out.get(key) ?? 0) + n);
  return out;
}

/**
 * A tally as a JSON-ready object. Every key is defined as an own data property
 * (as JSON.parse does), so "__proto__" is a count, not a prototype change, and
 * JSON and structured clone both carry it. A plain object, not a null-prototype
 * one: Workers RPC refuses to serialise objects without Object.prototype.
 */
export function toCounts(counts: Tally, keys: Iterable<string> = counts.keys()): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of keys) Object.defineProperty(out, key, { value: counts.get(key)!, enumerable: true, writable: true, configurable: true });
  return out;
}

/**
 * byModel lists at most this many models. Model names come from callers, so a
 * gateway passing many distinct names must not make every stats answer grow
 * with them; a deployment routes over a handful of models, far below this.
 */
export const MAX_LISTED_MODELS = 100;
/**
 * The byModel key summing every model beyond the first MAX_LISTED_MODELS. A
 * model literally named "(other)" is counted here too, so the key means one thing.
 */
export const OTHER_MODELS = "(other)";

/**
 * The top `max` keys by count (ties by name, in code point order) as `[key, n]`
 * pairs, then the rest summed under OTHER_MODELS when any: every count is kept,
 * in at most `max + 1` pairs.
 */
export function topPairs(counts: Tally, max: number): [string, number][] {
  const ranked = [...counts].filter(([key]) => key !== OTHER_MODELS).sort(([a, m], [b, n]) => n - m || compareCodePoints(a, b));
  const top = ranked.slice(0, max);
  const other = ranked.slice(max).reduce((sum, [, n]) => sum + n, counts.get(OTHER_MODELS) ?? 0);
  return other > 0 ? [...top, [OTHER_MODELS, other]] : top;
}

/** The top `max` models by count (ties by name, in code point order), the rest summed under OTHER_MODELS. */
export function topCounts(counts: Tally, max = MAX_LISTED_MODELS): Record<string, number> {
  const pairs = topPairs(counts, max);
  return toCounts(
    new Map(pairs),
    pairs.map(([key]) => key),
  );
}

/**
 * How many model totals one registry shard sends per stats call. Model names
 * come from callers, so without a bound a shard's answer would grow with every
 * distinct name (256 characters each) toward the RPC message limit. The merged
 * byModel is exact while no shard holds more distinct models than this; past it,
 * a shard's models outside its own top MAX_SHARD_MODEL_TOTALS count under
 * OTHER_MODELS, so `count` and the sum of byModel stay exact.
 */
export const MAX_SHARD_MODEL_TOTALS = 10 * MAX_LISTED_MODELS;

/**
 * FNV-1a over the ID's UTF-16 code units: stable across deploys and runtimes,
 * so a session always maps to the same registry shard for a given shard count.
 */
export function shardOf(id: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

/** The first `limit` rows of several lists each sorted by ID, in ID order (a k-way merge). */
export function mergeSorted(lists: readonly RegistryRow[][], limit: number): RegistryRow[] {
  const heads = lists.map(() => 0);
  const out: RegistryRow[] = [];
  while (out.length < limit) {
    let best = -1;
    for (let k = 0; k < lists.length; k++) {
      const row = lists[k]![heads[k]!];
      if (row && (best === -1 || compareIds(row.id, lists[best]![heads[best]!]!.id) < 0)) best = k;
    }
    if (best === -1) break;
    out.push(lists[best]![heads[best]!++]!);
  }
  return out;
}

/** Reference `GetStats` returns everything; we page, defaulting to 1,000 and capping at 10,000. */
export const DEFAULT_STATS_LIMIT = 1000;
export const MAX_STATS_LIMIT = 10_000;
/**
 * Sessions hash evenly over shards, so each shard is first asked for its even
 * share of a page, times this slack plus a few rows, which usually settles the
 * page in one round.
 */
const PAGE_SHARE_SLACK = 1.5;
const PAGE_SHARE_EXTRA = 8;

/** How many rows each shard is first asked for, to fill a page of `limit` (plus one row, to know if more follow). */
export function firstShare(limit: number, shards: number): number {
  return Math.min(limit + 1, Math.ceil(((limit + 1) * PAGE_SHARE_SLACK) / shards) + PAGE_SHARE_EXTRA);
}

/**
 * The shards to ask again, for a whole page after their last row: a shard that
 * returned a full share may hold more rows before the page's cut. None when the
 * rows known up to the earliest full shard's last row already fill the page.
 */
export function shardsToRefill(lists: readonly RegistryRow[][], share: number, limit: number): number[] {
  if (share >= limit + 1) return [];
  const full = lists.flatMap((rows, k) => (rows.length === share ? [k] : []));
  if (full.length === 0) return [];
  const cut = full.map((k) => lists[k]!.at(-1)!.id).sort(compareIds)[0]!;
  const settled = lists.reduce((n, rows) => n + rows.filter((r) => compareIds(r.id, cut) <= 0).length, 0);
  return settled < limit + 1 ? full : [];
}

/** How a clear-all went, summed over shards; `pending` > 0 means shards' alarms are finishing it. */
export interface ClearProgress {
  cleared: number;
  pending: number;
}

export function sumProgress(parts: readonly ClearProgress[]): ClearProgress {
  return parts.reduce((sum, p) => ({ cleared: sum.cleared + p.cleared, pending: sum.pending + p.pending }), { cleared: 0, pending: 0 });
}
