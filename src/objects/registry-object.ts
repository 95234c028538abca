/**
 * One registry shard: the live sessions whose ID hashes to it, for stats and
 * clear-all. Sessions write here only on create, a model or tier change, expiry and
 * clear, never on the hot path.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { configFor } from "../session/config";
import { retryDelayMs } from "../session/retry";
import { MAX_SHARD_MODEL_TOTALS, tally, topPairs, type ClearProgress, type RegistryRow } from "../session/stats";
import type { Tier } from "../session/types";

/** Session clears in flight at once per shard: bounded so a 10,000-session clear does not flood the runtime. */
export const CLEAR_CONCURRENCY = 32;
/** Storage key of the generated stats cursor key, kept in shard 0 (src/stats-cursor.ts). */
export const STATS_CURSOR_KEY_STORAGE = "stats-cursor-key";
/** AES-256: the generated stats cursor key's length. */
const STATS_CURSOR_KEY_BYTES = 32;
/** When the alarm continues a clear that is progressing: right away, but at least 1 ms ahead (a setAlarm(now) inside alarm() is dropped locally). */
const CLEAR_CONTINUE_DELAY_MS = 1;
/** Meta key: when clear passes began to make no progress (0: they are progressing), for the retry backoff. */
const CLEAR_STALLED_SINCE = "clear_stalled_since";

export interface ShardPage {
  /** Totals: zero and empty unless asked for. `[key, count]` pairs, so any model name crosses RPC intact. */
  count: number;
  byModel: [string, number][];
  byTier: [string, number][];
  /** Up to `limit` rows with id > after, in id order. */
  rows: RegistryRow[];
}

interface RowRecord extends Record<string, SqlStorageValue> {
  id: string;
  model: string;
  tier: string;
  created_at: number;
  seq: number;
}

export class RegistryObject extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  /** Last seq written; read from storage once per instance. */
  #seq: number | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS sessions (
      id TEXT PRIMARY KEY,
      model TEXT NOT NULL,
      tier TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      seq INTEGER NOT NULL
    ) WITHOUT ROWID`);
    this.#sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID");
  }

  #meta(key: string): number {
    return this.#sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? 0;
  }

  #setMeta(key: string, value: number): void {
    this.#sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
  }

  /** Write order within the shard: clear-all removes only rows written before it began. */
  #nextSeq(): number {
    this.#seq ??= this.#meta("seq");
    this.#seq++;
    this.#setMeta("seq", this.#seq);
    return this.#seq;
  }

  upsert(row: RegistryRow): void {
    this.#sql.exec(
      `INSERT INTO sessions (id, model, tier, created_at, seq) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET model = excluded.model, tier = excluded.tier,
         created_at = excluded.created_at, seq = excluded.seq`,
      row.id,
      row.model,
      row.tier,
      row.createdAt,
      this.#nextSeq(),
    );
  }

  remove(id: string): void {
    this.#sql.exec("DELETE FROM sessions WHERE id = ?", id);
  }

  /** One page of rows after `after` (exclusive), in ID order, with the shard's totals when asked. */
  page(after: string | null, limit: number, withTotals: boolean): ShardPage {
    const totals = withTotals
      ? this.#sql.exec<{ model: string; tier: string; n: number }>("SELECT model, tier, COUNT(*) AS n FROM sessions GROUP BY model, tier").toArray()
      : [];
    const count = totals.reduce((sum, r) => sum + r.n, 0);
    const byModel = topPairs(tally(totals.map((r) => [r.model, r.n] as const)), MAX_SHARD_MODEL_TOTALS);
    const byTier = [...tally(totals.map((r) => [r.tier, r.n] as const))];
    const cursor =
      after === null
        ? this.#sql.exec<RowRecord>("SELECT * FROM sessions ORDER BY id LIMIT ?", limit)
        : this.#sql.exec<RowRecord>("SELECT * FROM sessions WHERE id > ? ORDER BY id LIMIT ?", after, limit);
    const rows = cursor.toArray().map((r) => ({ id: r.id, model: r.model, tier: r.tier as Tier, createdAt: r.created_at }));
    return { count, byModel, byTier, rows };
  }

  /**
   * The stats cursor key when STATS_CURSOR_KEY is not configured: generated on first use and kept
   * in this shard's storage, so every isolate and every deploy agrees on it. Clear-all leaves it.
   */
  cursorKey(): Uint8Array {
    const kv = this.ctx.storage.kv;
    let key = kv.get<Uint8Array>(STATS_CURSOR_KEY_STORAGE);
    if (key === undefined) {
      key = crypto.getRandomValues(new Uint8Array(STATS_CURSOR_KEY_BYTES));
      kv.put(STATS_CURSOR_KEY_STORAGE, key);
    }
    return key;
  }

  /**
   * Removes every session written before this call: each session object's
   * storage and alarm, then its row. Works for a time budget, then leaves the
   * rest to the alarm and reports what is pending.
   */
  async clearAll(): Promise<ClearProgress> {
    this.#setMeta("clear_target", Math.max(this.#meta("clear_target"), this.#seq ?? this.#meta("seq")));
    return this.#clearPass();
  }

  #pendingClears(target: number): number {
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sessions WHERE seq <= ?", target).one().n;
  }

  /** One pass: clears rows up to the target for CLEAR_BUDGET_MS, then reports what is left. */
  async #clearPass(): Promise<ClearProgress> {
    const deadline = Date.now() + configFor(this.env).clearBudgetMs;
    const target = this.#meta("clear_target");
    let cleared = 0;
    let failed = 0;
    let firstFailure: unknown;
    // Keyset over seq, so a session that fails to clear is skipped in this pass
    // (the alarm retries it) instead of being retried in a tight loop.
    let afterSeq = 0;
    while (Date.now() < deadline) {
      const batch = this.#sql
        .exec<RowRecord>(
          "SELECT id, created_at, seq FROM sessions WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
          afterSeq,
          target,
          configFor(this.env).clearBatchSize,
        )
        .toArray();
      if (batch.length === 0) break;
      afterSeq = batch[batch.length - 1]!.seq;
      for (let i = 0; i < batch.length; i += CLEAR_CONCURRENCY) {
        const outcomes = await Promise.allSettled(batch.slice(i, i + CLEAR_CONCURRENCY).map((row) => this.#clearRow(row)));
        for (const o of outcomes) {
          if (o.status === "fulfilled") cleared += o.value ? 1 : 0;
          else if (failed++ === 0) firstFailure = o.reason;
        }
      }
    }
    const pending = this.#pendingClears(target);
    const wait = pending > 0 ? this.#nextPassDelay(cleared > 0) : 0;
    if (failed > 0) {
      const reason = firstFailure instanceof Error ? firstFailure.message : String(firstFailure);
      console.error(`registry clear: ${failed} session(s) could not be cleared, ${pending} pending, next pass in ${wait} ms: ${reason}`);
    }
    if (pending > 0) await this.ctx.storage.setAlarm(Date.now() + wait);
    else this.#setMeta(CLEAR_STALLED_SINCE, 0);
    return { cleared, pending };
  }

  /**
   * Right away while passes clear something; with backoff while they clear
   * nothing (sessions unreachable), so a stuck clear does not spin the shard.
   */
  #nextPassDelay(progressed: boolean): number {
    const now = Date.now();
    if (progressed) {
      this.#setMeta(CLEAR_STALLED_SINCE, 0);
      return CLEAR_CONTINUE_DELAY_MS;
    }
    const since = this.#meta(CLEAR_STALLED_SINCE) || now;
    this.#setMeta(CLEAR_STALLED_SINCE, since);
    return retryDelayMs(now - since, Math.random());
  }

  async #clearRow(row: RowRecord): Promise<boolean> {
    const stub = this.env.SESSIONS.get(this.env.SESSIONS.idFromName(row.id));
    await stub.clearIncarnation(row.created_at);
    // Guarded by the incarnation, not by seq: a model change rewrites the row of the
    // same incarnation (which is now gone), while a re-created session's row has
    // another createdAt and stays.
    return this.#sql.exec("DELETE FROM sessions WHERE id = ? AND created_at = ?", row.id, row.created_at).rowsWritten > 0;
  }

  override async alarm(): Promise<void> {
    await this.#clearPass();
  }
}
