/**
 * Drops the copies of a lifecycle message by its `messageId`. edge-session
 * decides each message once but delivers it at least once, and Queues itself
 * delivers at least once, so the same `messageId` can arrive twice, in one
 * batch or in two, even in two consumer invocations at once.
 *
 * A message's row goes through two states:
 * - claimed: one delivery won `claim` and is acting; the claim is a lease, so
 *   a consumer that dies while acting does not lose the message: once the lease
 *   runs out, a retried delivery claims it again;
 * - done: the action succeeded; every later copy is acknowledged unacted.
 * A failed action releases its claim, and the retried delivery claims afresh.
 *
 * `claim` checks and records in one synchronous step (no await between the
 * INSERT OR IGNORE and the read), so no two deliveries both win. Rows are
 * deleted RETENTION_MS after they were first seen, by the alarm.
 */
import { DurableObject } from "cloudflare:workers";

/** How long a message's row is kept: longer than a copy can arrive late (the queue's retention, 4 days by default). */
export const RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
/** How long a claim holds before another delivery may take over: well past the webhook's timeout. */
export const LEASE_MS = 60_000;
/** The sweep's least interval: rows are deleted in batches, not one alarm each. */
const SWEEP_MIN_INTERVAL_MS = 60 * 60 * 1000;

export type Claim =
  /** Act, then report with `complete` or `release`, passing the token. */
  | { act: true; token: string }
  /** Another delivery acted already. */
  | { act: false; done: true }
  /** Another delivery is acting now; ask again after `retryAfterMs`. */
  | { act: false; done: false; retryAfterMs: number };

export class MessageDedupe extends DurableObject<unknown> {
  /** The alarm set, or null for none. */
  #alarmAt: number | null = null;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env);
    ctx.storage.sql.exec(
      `CREATE TABLE IF NOT EXISTS seen (
         message_id TEXT PRIMARY KEY,
         seen_at INTEGER NOT NULL,
         done INTEGER NOT NULL,
         claim TEXT,
         lease_until INTEGER NOT NULL
       )`,
    );
    ctx.storage.sql.exec("CREATE INDEX IF NOT EXISTS seen_by_time ON seen (seen_at)");
    void ctx.blockConcurrencyWhile(async () => {
      this.#alarmAt = await ctx.storage.getAlarm();
    });
  }

  /** Claims `messageId` for one delivery, or answers why not. */
  claim(messageId: string): Claim {
    const now = Date.now();
    const token = crypto.randomUUID();
    const sql = this.ctx.storage.sql;
    const inserted = sql
      .exec(
        "INSERT OR IGNORE INTO seen (message_id, seen_at, done, claim, lease_until) VALUES (?, ?, 0, ?, ?) RETURNING message_id",
        messageId,
        now,
        token,
        now + LEASE_MS,
      )
      .toArray();
    if (inserted.length > 0) {
      this.#armSweep(now + RETENTION_MS);
      return { act: true, token };
    }
    const row = sql.exec<{ done: number; lease_until: number }>("SELECT done, lease_until FROM seen WHERE message_id = ?", messageId).one();
    if (row.done === 1) return { act: false, done: true };
    if (row.lease_until > now) return { act: false, done: false, retryAfterMs: row.lease_until - now };
    // The claimant's lease ran out without a word: it failed or died while acting.
    sql.exec("UPDATE seen SET claim = ?, lease_until = ? WHERE message_id = ?", token, now + LEASE_MS, messageId);
    return { act: true, token };
  }

  /** The action succeeded: copies from now on are dropped. */
  complete(messageId: string): void {
    const now = Date.now();
    this.ctx.storage.sql.exec(
      "INSERT INTO seen (message_id, seen_at, done, claim, lease_until) VALUES (?, ?, 1, NULL, 0) ON CONFLICT (message_id) DO UPDATE SET done = 1, claim = NULL, lease_until = 0",
      messageId,
      now,
    );
    this.#armSweep(now + RETENTION_MS);
  }

  /** The action failed: the claim goes, unless another delivery holds it by now or the message is done. */
  release(messageId: string, token: string): void {
    this.ctx.storage.sql.exec("DELETE FROM seen WHERE message_id = ? AND done = 0 AND claim = ?", messageId, token);
  }

  /** Deletes the rows first seen RETENTION_MS ago or more, and comes back for the next ones. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM seen WHERE seen_at <= ?", now - RETENTION_MS);
    const oldest = sql.exec<{ at: number | null }>("SELECT min(seen_at) AS at FROM seen").one().at;
    this.#alarmAt = null;
    if (oldest !== null) this.#armSweep(Math.max(oldest + RETENTION_MS, now + SWEEP_MIN_INTERVAL_MS));
  }

  #armSweep(at: number): void {
    if (this.#alarmAt !== null) return;
    this.#alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }
}
