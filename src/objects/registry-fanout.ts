/**
 * The registry's fan-out: stats paged across every shard, and clear-all sent
 * to every shard. The arithmetic (page shares, merge, totals) is pure, in
 * src/session/stats.ts; this file only sequences the shards' calls.
 */
import type { Env } from "../env";
import { configFor } from "../session/config";
import {
  cacheStats,
  firstShare,
  mergeSorted,
  sessionInfo,
  shardsToRefill,
  sumProgress,
  tally,
  toCounts,
  topCounts,
  type ClearProgress,
  type Stats,
} from "../session/stats";
import { decodeCursor, encodeCursor, fromConfigured, importKey } from "../stats-cursor";
import { REGISTRY_READ_TIMEOUT_MS, registryCall, shardStub } from "./registry-client";
import type { ShardPage } from "./registry-object";

/** Keys per isolate: from STATS_CURSOR_KEY by value, the generated one by registry namespace. */
const configuredKeys = new Map<string, Promise<CryptoKey>>();
const generatedKeys = new WeakMap<object, Promise<CryptoKey>>();

interface KeyCache<K> {
  get(k: K): Promise<CryptoKey> | undefined;
  set(k: K, v: Promise<CryptoKey>): unknown;
  delete(k: K): unknown;
}

function cached<K>(cache: KeyCache<K>, k: K, make: () => Promise<CryptoKey>): Promise<CryptoKey> {
  let key = cache.get(k);
  if (!key) {
    key = make();
    cache.set(k, key);
    // A failed read (registry down) is not remembered: the next call asks again.
    key.catch(() => cache.delete(k));
  }
  return key;
}

/**
 * The cursor key for this deployment: STATS_CURSOR_KEY, or one generated once and kept
 * in registry shard 0, so every isolate and every deploy agrees on it. Never derived
 * from a token, so a cursor cannot be used to test admin-token guesses offline.
 */
export function cursorKey(env: Env): Promise<CryptoKey> {
  const config = configFor(env);
  const secret = config.statsCursorKey;
  if (secret !== undefined) return cached(configuredKeys, secret, () => fromConfigured(secret));
  return cached(generatedKeys, env.REGISTRY, async () =>
    importKey(await registryCall("read the stats cursor key", () => shardStub(env, 0).cursorKey(), config.registryTimeoutMs)),
  );
}

function shards(env: Env) {
  return Array.from({ length: configFor(env).registryShards }, (_, k) => shardStub(env, k));
}

/** Reference `GetStats` over every shard, queried in parallel, with cursor pagination and totals. */
export async function getStats(env: Env, { limit, cursor }: { limit: number; cursor?: string | undefined }): Promise<Stats> {
  const after = cursor === undefined ? null : await decodeCursor(cursor, await cursorKey(env), Date.now());
  const all = shards(env);
  const pages = await registryCall(
    "list sessions",
    async () => {
      const share = firstShare(limit, all.length);
      const first = await Promise.all(all.map((shard) => shard.page(after, share, true)));
      const lists = first.map((p) => p.rows);
      const refill = shardsToRefill(lists, share, limit);
      const more = await Promise.all(refill.map((k) => all[k]!.page(lists[k]!.at(-1)!.id, limit + 1, false)));
      refill.forEach((k, i) => lists[k]!.push(...more[i]!.rows));
      // RPC typing widens the shards' [key, count] tuples to arrays; the values are the shards' own.
      return { totals: first as ShardPage[], lists };
    },
    REGISTRY_READ_TIMEOUT_MS,
  );
  const now = Date.now();
  const count = pages.totals.reduce((sum, page) => sum + page.count, 0);
  const byModel = topCounts(tally(pages.totals.flatMap((page) => page.byModel)));
  const byTier = toCounts(tally(pages.totals.flatMap((page) => page.byTier)));
  const rows = mergeSorted(pages.lists, limit + 1);
  const shown = rows.slice(0, limit);
  const inputTokens = pages.totals.reduce((sum, page) => sum + page.inputTokens, 0);
  const cachedInputTokens = pages.totals.reduce((sum, page) => sum + page.cachedInputTokens, 0);
  const spendMicros = pages.totals.reduce((sum, page) => sum + page.spendMicros, 0);
  const stats: Stats = {
    count,
    sessions: shown.map((r) => sessionInfo(r, now)),
    byModel,
    byTier,
    cache: cacheStats(inputTokens, cachedInputTokens),
    spendMicros,
  };
  if (rows.length > limit) stats.nextCursor = await encodeCursor(shown[shown.length - 1]!.id, await cursorKey(env), now);
  return stats;
}

/** Clears every session in every shard; `pending` > 0 means the shards' alarms are finishing the job. */
export async function clearAll(env: Env): Promise<ClearProgress> {
  const parts = await registryCall(
    "clear sessions",
    () => Promise.all(shards(env).map((shard) => shard.clearAll())),
    configFor(env).clearBudgetMs + REGISTRY_READ_TIMEOUT_MS,
  );
  return sumProgress(parts);
}
