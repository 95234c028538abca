/**
 * One registry shard: an index of the sessions whose ID hashes to it, for stats
 * and clear-all. It is derived state: sessions deliver their rows from an outbox
 * (never on the hot path), the shard's alarm checks rows against their sessions
 * (reconciliation), and the rules it applies are pure (src/session/registry.ts).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { configFor } from "../session/config";
import { checkAt, decideUpsert, RETIRED_TTL_MS, type Delivery, type HeldRow, type RowState } from "../session/registry";
import { retryDelayMs } from "../session/retry";
import { MAX_SHARD_MODEL_TOTALS, tally, topPairs, type ClearProgress, type RegistryRow } from "../session/stats";
import type { Tier } from "../session/types";
import type { ClearAnswer } from "./session-object";
import { withTimeout } from "./registry-client";

/** Session calls in flight at once per shard (clears, checks): bounded so a 10,000-session clear does not flood the runtime. */
export const CLEAR_CONCURRENCY = 32;
/** Storage key of the generated stats cursor key, kept in shard 0 (src/stats-cursor.ts). */
export const STATS_CURSOR_KEY_STORAGE = "stats-cursor-key";
/** AES-256: the generated stats cursor key's length. */
const STATS_CURSOR_KEY_BYTES = 32;
/** When the alarm continues work that is progressing: right away, but at least 1 ms ahead (a setAlarm(now) inside alarm() is dropped locally). */
const CONTINUE_DELAY_MS = 1;
/** Meta keys. */
const CLEAR_STARTED_AT = "clear_started_at";
const CLEAR_NEXT_AT = "clear_next_at";
/** When clear passes began to make no progress (0: they are progressing), for the retry backoff. */
const CLEAR_STALLED_SINCE = "clear_stalled_since";
/** When the alarm is set for (0: none), so a delivery sets it only when it needs it sooner. */
const ALARM_AT = "alarm_at";

export interface ShardPage {
  /** Totals: zero and empty unless asked for. `[key, count]` pairs, so any model name crosses RPC intact. */
  count: number;
  byModel: [string, number][];
  byTier: [string, number][];
  /** The token totals and the spend of the rows counted. */
  inputTokens: number;
  cachedInputTokens: number;
  spendMicros: number;
  /** Up to `limit` rows with id > after, in id order. */
  rows: RegistryRow[];
}

interface RowRecord extends Record<string, SqlStorageValue> {
  id: string;
  model: string;
  tier: string;
  created_at: number;
  inc: string;
  version: number;
  expires_at: number;
  failing_since: number;
  session_cost_micros: number;
  strikes: number;
  request_count: number;
  paused: number;
}

const COLUMNS = `
  inc TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER NOT NULL DEFAULT 0,
  check_at INTEGER NOT NULL DEFAULT 0,
  failing_since INTEGER NOT NULL DEFAULT 0,
  doomed INTEGER NOT NULL DEFAULT 0`;
/** Token totals, added after the columns above: a shard that has those but not these gains them in place. */
const USAGE_COLUMNS = `
  input_tokens INTEGER NOT NULL DEFAULT 0,
  cached_input_tokens INTEGER NOT NULL DEFAULT 0`;
/** What an operator's view shows of a row, added after the token totals: a shard that lacks them gains them in place. */
const ACTIVITY_COLUMNS = `
  session_cost_micros INTEGER NOT NULL DEFAULT 0,
  strikes INTEGER NOT NULL DEFAULT 0,
  request_count INTEGER NOT NULL DEFAULT 0,
  paused INTEGER NOT NULL DEFAULT 0`;

export class RegistryObject extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  #alarmAt: number | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID");
    const exists = this.#sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sessions'").toArray().length > 0;
    if (!exists) {
      this.#sql.exec(`CREATE TABLE sessions (
        id TEXT PRIMARY KEY, model TEXT NOT NULL, tier TEXT NOT NULL, created_at INTEGER NOT NULL, ${COLUMNS}, ${USAGE_COLUMNS}, ${ACTIVITY_COLUMNS}
      ) WITHOUT ROWID`);
    } else {
      if (!this.#hasColumn("inc")) this.#upgrade();
      // Rows of a release before token totals: 0 is exact, since sessions of that release had none to report.
      if (!this.#hasColumn("input_tokens")) this.#addColumns(USAGE_COLUMNS);
      // Rows of a release before these: 0 until the session's next report or check, which carries them.
      if (!this.#hasColumn("session_cost_micros")) this.#addColumns(ACTIVITY_COLUMNS);
    }
    this.#sql.exec("CREATE INDEX IF NOT EXISTS sessions_by_check ON sessions (check_at)");
    this.#sql.exec("CREATE INDEX IF NOT EXISTS sessions_by_created ON sessions (created_at, id)");
    this.#sql.exec("CREATE TABLE IF NOT EXISTS retired (id TEXT NOT NULL, inc TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (id, inc)) WITHOUT ROWID");
    this.#sql.exec("CREATE INDEX IF NOT EXISTS retired_by_at ON retired (at)");
  }

  #hasColumn(name: string): boolean {
    return this.#sql.exec("SELECT 1 FROM pragma_table_info('sessions') WHERE name = ?", name).toArray().length > 0;
  }

  /**
   * A shard written before rows carried incarnations and deadlines: every row is
   * checked against its session right away, and the rows an unfinished clear-all
   * (then tracked by write order) had still to clear are marked for it.
   */
  #upgrade(): void {
    this.#addColumns(COLUMNS);
    if (this.#hasColumn("seq")) {
      this.#sql.exec("UPDATE sessions SET doomed = 1 WHERE seq <= ?", this.#meta("clear_target"));
      this.#sql.exec("ALTER TABLE sessions DROP COLUMN seq");
      this.#sql.exec("DELETE FROM meta WHERE key IN ('seq', 'clear_target')");
    }
    this.#wakeBy(Date.now() + CONTINUE_DELAY_MS);
  }

  #addColumns(columns: string): void {
    for (const column of columns.split(",")) this.#sql.exec(`ALTER TABLE sessions ADD COLUMN ${column.trim()}`);
  }

  #meta(key: string): number {
    return this.#sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? 0;
  }

  #setMeta(key: string, value: number): void {
    this.#sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
  }

  /** Makes sure the alarm fires by `at`; a write only when it is not already set that early. */
  #wakeBy(at: number): void {
    const current = (this.#alarmAt ??= this.#meta(ALARM_AT));
    if (current !== 0 && current <= at) return;
    this.#alarmAt = at;
    this.#setMeta(ALARM_AT, at);
    // Not awaited: the output gate holds the answer until the alarm is durable.
    void this.ctx.storage.setAlarm(at);
  }

  #retire(id: string, inc: string, now: number): void {
    this.#sql.exec("INSERT INTO retired (id, inc, at) VALUES (?, ?, ?) ON CONFLICT(id, inc) DO UPDATE SET at = excluded.at", id, inc, now);
    this.#wakeBy(now + RETIRED_TTL_MS);
  }

  /** An incarnation is over: retired, and its row dropped if the shard holds it. True when a row went. */
  #drop(id: string, inc: string, now: number): boolean {
    this.#retire(id, inc, now);
    return this.#sql.exec("DELETE FROM sessions WHERE id = ? AND inc = ?", id, inc).rowsWritten > 0;
  }

  /** Takes a session's row by the rules of src/session/registry.ts; false when it was stale. */
  #take(row: RowState, now: number, authoritative = false): boolean {
    const held = this.#sql
      .exec<HeldRow & Record<string, SqlStorageValue>>(
        "SELECT inc, created_at AS createdAt, version, expires_at AS expiresAt FROM sessions WHERE id = ?",
        row.id,
      )
      .toArray()[0];
    const retired = this.#sql.exec("SELECT 1 FROM retired WHERE id = ? AND inc = ?", row.id, row.inc).toArray().length > 0;
    const decision = decideUpsert(held, retired, row, authoritative);
    if (decision.kind === "stale") {
      if (decision.retire !== undefined) this.#retire(row.id, decision.retire, now);
      return false;
    }
    if (decision.kind === "refresh") {
      const expires = Math.max(held!.expiresAt, row.expiresAt);
      const check = checkAt(expires, now);
      this.#sql.exec(
        `UPDATE sessions SET expires_at = ?, check_at = ?, failing_since = 0,
           input_tokens = MAX(input_tokens, ?), cached_input_tokens = MAX(cached_input_tokens, ?),
           session_cost_micros = MAX(session_cost_micros, ?), strikes = MAX(strikes, ?), request_count = MAX(request_count, ?) WHERE id = ?`,
        expires,
        check,
        row.inputTokens ?? 0,
        row.cachedInputTokens ?? 0,
        row.sessionCostMicros ?? 0,
        row.strikes ?? 0,
        row.requestCount ?? 0,
        row.id,
      );
      this.#wakeBy(check);
      return true;
    }
    if (decision.kind === "replace") this.#retire(row.id, decision.retire, now);
    const check = checkAt(row.expiresAt, now);
    this.#sql.exec(
      `INSERT INTO sessions (id, model, tier, created_at, inc, version, expires_at, check_at, failing_since, input_tokens, cached_input_tokens,
         session_cost_micros, strikes, request_count, paused)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET model = excluded.model, tier = excluded.tier, created_at = excluded.created_at, inc = excluded.inc,
         version = excluded.version, expires_at = excluded.expires_at, check_at = excluded.check_at, failing_since = 0,
         input_tokens = excluded.input_tokens, cached_input_tokens = excluded.cached_input_tokens,
         session_cost_micros = excluded.session_cost_micros, strikes = excluded.strikes, request_count = excluded.request_count, paused = excluded.paused,
         doomed = CASE WHEN sessions.inc = excluded.inc THEN sessions.doomed ELSE 0 END`,
      row.id,
      row.model,
      row.tier,
      row.createdAt,
      row.inc,
      row.version,
      row.expiresAt,
      check,
      row.inputTokens ?? 0,
      row.cachedInputTokens ?? 0,
      row.sessionCostMicros ?? 0,
      row.strikes ?? 0,
      row.requestCount ?? 0,
      row.paused ? 1 : 0,
    );
    this.#wakeBy(check);
    // A session created before a clear-all began, whose row lands only now: the clear removes it too.
    if (row.createdAt < this.#meta(CLEAR_STARTED_AT)) this.#wakeBy(now + CONTINUE_DELAY_MS);
    return true;
  }

  /** A session's outbox delivery. Idempotent and versioned: a late or repeated one changes nothing. True when it changed the index. */
  async deliver(delivery: Delivery): Promise<boolean> {
    const now = Date.now();
    return delivery.kind === "upsert" ? this.#take(delivery.row, now) : this.#drop(delivery.id, delivery.inc, now);
  }

  /**
   * One page of rows after `after` (exclusive), in ID order, with the shard's totals when asked.
   * A row past its deadline hint is not counted: its session has expired, or is being checked.
   */
  page(after: string | null, limit: number, withTotals: boolean): ShardPage {
    const now = Date.now();
    const totals = withTotals
      ? this.#sql
          .exec<{ model: string; tier: string; n: number }>("SELECT model, tier, COUNT(*) AS n FROM sessions WHERE expires_at >= ? GROUP BY model, tier", now)
          .toArray()
      : [];
    const count = totals.reduce((sum, r) => sum + r.n, 0);
    // TOTAL, not SUM: a float that never overflows, where SUM of many safe-integer totals could pass 2^63 and fail the read.
    const tokens = withTotals
      ? this.#sql
          .exec<{ input: number; cached: number; spend: number }>(
            "SELECT TOTAL(input_tokens) AS input, TOTAL(cached_input_tokens) AS cached, TOTAL(session_cost_micros) AS spend FROM sessions WHERE expires_at >= ?",
            now,
          )
          .one()
      : { input: 0, cached: 0, spend: 0 };
    const byModel = topPairs(tally(totals.map((r) => [r.model, r.n] as const)), MAX_SHARD_MODEL_TOTALS);
    const byTier = [...tally(totals.map((r) => [r.tier, r.n] as const))];
    const shown = "id, model, tier, created_at, session_cost_micros, strikes, request_count, paused";
    const cursor =
      after === null
        ? this.#sql.exec<RowRecord>(`SELECT ${shown} FROM sessions WHERE expires_at >= ? ORDER BY id LIMIT ?`, now, limit)
        : this.#sql.exec<RowRecord>(`SELECT ${shown} FROM sessions WHERE id > ? AND expires_at >= ? ORDER BY id LIMIT ?`, after, now, limit);
    const rows = cursor.toArray().map((r): RegistryRow => ({
      id: r.id,
      model: r.model,
      tier: r.tier as Tier,
      createdAt: r.created_at,
      sessionCostMicros: r.session_cost_micros,
      strikes: r.strikes,
      requestCount: r.request_count,
      paused: r.paused !== 0,
    }));
    return { count, byModel, byTier, inputTokens: tokens.input, cachedInputTokens: tokens.cached, spendMicros: tokens.spend, rows };
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
   * Removes every session that exists when it is called: each session object's
   * storage and alarm, then its row. That covers the rows held now and the rows
   * of sessions created before this instant that land later. Works for a time
   * budget, then leaves the rest to the alarm and reports what is pending.
   */
  async clearAll(): Promise<ClearProgress> {
    this.#setMeta(CLEAR_STARTED_AT, Math.max(Date.now(), this.#meta(CLEAR_STARTED_AT)));
    this.#sql.exec("UPDATE sessions SET doomed = 1 WHERE doomed = 0");
    return this.#clearPass();
  }

  #pendingClears(startedAt: number): number {
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sessions WHERE doomed = 1 OR created_at < ?", startedAt).one().n;
  }

  /** One pass: clears rows created before the clear began, for CLEAR_BUDGET_MS, then reports what is left. */
  async #clearPass(): Promise<ClearProgress> {
    const config = configFor(this.env);
    const deadline = Date.now() + config.clearBudgetMs;
    const startedAt = this.#meta(CLEAR_STARTED_AT);
    let cleared = 0;
    let failed = 0;
    let firstFailure: unknown;
    // Keyset over (created_at, id), so a session that fails to clear is skipped in this pass
    // (the alarm retries it) instead of being retried in a tight loop.
    let after: [number, string] = [-Infinity, ""];
    while (Date.now() < deadline) {
      const batch = this.#sql
        .exec<RowRecord>(
          "SELECT id, inc, created_at FROM sessions WHERE (doomed = 1 OR created_at < ?) AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?",
          startedAt,
          after[0],
          after[1],
          config.clearBatchSize,
        )
        .toArray();
      if (batch.length === 0) break;
      const last = batch[batch.length - 1]!;
      after = [last.created_at, last.id];
      for (let i = 0; i < batch.length; i += CLEAR_CONCURRENCY) {
        const outcomes = await Promise.allSettled(batch.slice(i, i + CLEAR_CONCURRENCY).map((row) => this.#clearRow(row.id, row.inc, startedAt)));
        for (const o of outcomes) {
          if (o.status === "fulfilled") cleared += o.value ? 1 : 0;
          else if (failed++ === 0) firstFailure = o.reason;
        }
      }
    }
    const pending = this.#pendingClears(startedAt);
    const wait = pending > 0 ? this.#nextPassDelay(cleared > 0) : 0;
    if (failed > 0) {
      const reason = firstFailure instanceof Error ? firstFailure.message : String(firstFailure);
      console.error(`registry clear: ${failed} session(s) could not be cleared, ${pending} pending, next pass in ${wait} ms: ${reason}`);
    }
    if (pending > 0) {
      this.#setMeta(CLEAR_NEXT_AT, Date.now() + wait);
      this.#wakeBy(Date.now() + wait);
    } else {
      this.#setMeta(CLEAR_STALLED_SINCE, 0);
      this.#setMeta(CLEAR_NEXT_AT, 0);
    }
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
      return CONTINUE_DELAY_MS;
    }
    const since = this.#meta(CLEAR_STALLED_SINCE) || now;
    this.#setMeta(CLEAR_STALLED_SINCE, since);
    return retryDelayMs(now - since, Math.random());
  }

  async #clearRow(id: string, inc: string, startedAt: number): Promise<boolean> {
    const stub = this.env.SESSIONS.get(this.env.SESSIONS.idFromName(id));
    const answer: ClearAnswer = await stub.clearBefore(startedAt, inc);
    // Whatever the row holds now, if it is to be cleared, its incarnation is gone:
    // a model change that landed during the call rewrote the same incarnation's row.
    const now = Date.now();
    const gone = this.#sql.exec<{ inc: string }>("DELETE FROM sessions WHERE id = ? AND (doomed = 1 OR created_at < ?) RETURNING inc", id, startedAt).toArray();
    for (const { inc } of gone) this.#retire(id, inc, now);
    if (answer.current) this.#take(answer.current, now);
    return answer.cleared;
  }

  /**
   * Reconciliation: rows due for a check (near or past their deadline hint) are
   * compared with their sessions. A session still in use refreshes its row; a
   * row whose session is gone is dropped. A session that cannot be reached is
   * asked again with backoff. True when more rows are due than one pass took.
   */
  async #reconcile(deadline: number): Promise<boolean> {
    const config = configFor(this.env);
    const due = this.#sql
      .exec<RowRecord>("SELECT id, inc, version, failing_since FROM sessions WHERE check_at <= ? ORDER BY check_at LIMIT ?", Date.now(), config.clearBatchSize)
      .toArray();
    for (let i = 0; i < due.length && Date.now() < deadline; i += CLEAR_CONCURRENCY) {
      const chunk = due.slice(i, i + CLEAR_CONCURRENCY);
      const outcomes = await Promise.allSettled(
        chunk.map((row) => withTimeout(this.env.SESSIONS.get(this.env.SESSIONS.idFromName(row.id)).describe(), config.registryTimeoutMs)),
      );
      const now = Date.now();
      outcomes.forEach((o, k) => {
        const row = chunk[k]!;
        // A delivery or a clear that landed while the session was being asked is newer than its answer.
        const current = this.#sql.exec<{ inc: string; version: number }>("SELECT inc, version FROM sessions WHERE id = ?", row.id).toArray()[0];
        if (!current || current.inc !== row.inc || current.version !== row.version) return;
        if (o.status === "fulfilled") {
          const state = o.value as RowState | null;
          if (state === null) {
            this.#drop(row.id, row.inc, now);
            return;
          }
          if (this.#take(state, now, true)) return;
        }
        const since = row.failing_since || now;
        const retry = now + retryDelayMs(now - since, Math.random());
        this.#sql.exec("UPDATE sessions SET failing_since = ?, check_at = ? WHERE id = ? AND inc = ?", since, retry, row.id, row.inc);
      });
    }
    return this.#sql.exec("SELECT 1 FROM sessions WHERE check_at <= ? LIMIT 1", Date.now()).toArray().length > 0;
  }

  override async alarm(): Promise<void> {
    this.#alarmAt = 0;
    this.#setMeta(ALARM_AT, 0);
    const started = Date.now();
    this.#sql.exec("DELETE FROM retired WHERE at <= ?", started - RETIRED_TTL_MS);
    const startedAt = this.#meta(CLEAR_STARTED_AT);
    if (this.#pendingClears(startedAt) > 0 && this.#meta(CLEAR_NEXT_AT) <= started) await this.#clearPass();
    const more = await this.#reconcile(started + configFor(this.env).clearBudgetMs);
    const now = Date.now();
    const next = Math.min(
      more ? now + CONTINUE_DELAY_MS : Infinity,
      this.#pendingClears(startedAt) > 0 ? this.#meta(CLEAR_NEXT_AT) || now + CONTINUE_DELAY_MS : Infinity,
      this.#sql.exec<{ t: number | null }>("SELECT MIN(check_at) AS t FROM sessions").one().t ?? Infinity,
      (this.#sql.exec<{ t: number | null }>("SELECT MIN(at) AS t FROM retired").one().t ?? Infinity) + RETIRED_TTL_MS,
    );
    if (next !== Infinity) this.#wakeBy(Math.max(next, now + CONTINUE_DELAY_MS));
  }
}
