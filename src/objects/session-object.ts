/**
 * One Durable Object per session: holds the entry in memory, writes it to
 * SQLite-backed storage before answering, and expires it with one alarm.
 * Every rule lives in src/session/ and is named by the command table; this
 * class only sequences I/O.
 *
 * The registry is told through an outbox: a change the registry must learn
 * (creation, a model or tier change, the end of an incarnation, and token
 * totals at most once a minute) is written in
 * the same storage transaction as the entry, and delivered after the answer,
 * again from the alarm with backoff until the shard takes it.
 */
import { DurableObject } from "cloudflare:workers";
import { stepOf, type SessionCommandName } from "../commands";
import type { Env } from "../env";
import { configFor, type Config } from "../session/config";
import { expiresAt, isExpired } from "../session/entry";
import { reportsUsage, type Delivery, type RowState } from "../session/registry";
import { SessionError, type Refusal } from "../session/errors";
import { effectsOf } from "../session/rules";
import { RETRY_MIN_DELAY_MS, retryDelayMs } from "../session/retry";
import type { Entry } from "../session/types";
import { deliverTo, registryCall } from "./registry-client";

/** The session's key (its ID, or the tenant-scoped key), its entry and its incarnation. */
const RECORD_KEY = "session";
/** Present while the registry has not confirmed the session's current state. */
const OUTBOX_KEY = "outbox";

interface SessionRecord {
  id: string;
  entry: Entry;
  /** Absent on records written before incarnations existed: read as "" and 0. */
  inc?: string;
  version?: number;
  /** When the object last reported the session to its shard (unix ms); absent: never, as far as it knows. */
  reportedAt?: number;
}

interface Outbox {
  /** Since when the registry has been behind: the retry backoff grows with it. */
  since: number;
  /** The incarnation that ended and whose end the registry has not yet heard, when no later one replaced it. */
  ended?: { id: string; inc: string; version: number };
}

/** What clear-all learns from a session: whether it removed a live session, and else the row the session should have. */
export interface ClearAnswer {
  cleared: boolean;
  current: RowState | null;
}

export class SessionObject extends DurableObject<Env> {
  #record: SessionRecord | undefined;
  #outbox: Outbox | undefined;
  /** The delivery under way, if any: one at a time, each carrying the state as it is when sent. */
  #delivering: Promise<void> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Synchronous KV on SQLite storage: reading an absent key creates nothing,
    // so an object that is only asked about a missing session stays empty.
    this.#record = ctx.storage.kv.get<SessionRecord>(RECORD_KEY);
    this.#outbox = ctx.storage.kv.get<Outbox>(OUTBOX_KEY);
  }

  get #config(): Config {
    return configFor(this.env);
  }

  #row(record: SessionRecord): RowState {
    const { model, tier, createdAt, inputTokens = 0, cachedInputTokens = 0 } = record.entry;
    const deadline = expiresAt(record.entry, this.#config.timeoutMs);
    return { id: record.id, inc: record.inc ?? "", createdAt, version: record.version ?? 0, model, tier, expiresAt: deadline, inputTokens, cachedInputTokens };
  }

  /** The effect to deliver now: the current row, or else the end of the last incarnation. */
  #delivery(outbox: Outbox): Delivery | undefined {
    if (this.#record) return { kind: "upsert", row: this.#row(this.#record) };
    return outbox.ended && { kind: "remove", id: outbox.ended.id, inc: outbox.ended.inc };
  }

  /** Marks the registry as behind and arms the alarm that retries the delivery, in the caller's transaction. */
  #queue(outbox: Outbox, now: number): void {
    this.#outbox = outbox;
    this.ctx.storage.kv.put(OUTBOX_KEY, outbox);
    // Not awaited: the output gate holds the answer until the write is durable.
    void this.ctx.storage.setAlarm(now + RETRY_MIN_DELAY_MS);
  }

  #forget(): void {
    this.ctx.storage.kv.delete(RECORD_KEY);
    this.ctx.storage.kv.delete(OUTBOX_KEY);
    void this.ctx.storage.deleteAlarm();
    this.#record = undefined;
    this.#outbox = undefined;
  }

  /** Ends the stored incarnation: the entry goes, and its end waits in the outbox. */
  #end(record: SessionRecord, now: number): void {
    this.ctx.storage.kv.delete(RECORD_KEY);
    this.#record = undefined;
    const ended = { id: record.id, inc: record.inc ?? "", version: record.version ?? 0 };
    this.#queue({ since: this.#outbox?.since ?? now, ended }, now);
  }

  /**
   * Runs a per-session command (or resolve) for the session stored under `key`. The
   * Worker's facade has validated the input; this object is reachable only through it.
   * Synchronous up to the answer: input gates make each call atomic. A rule's
   * refusal is answered as a value (`Refusal`), which the back end throws again.
   */
  run(key: string, name: SessionCommandName | "resolve", input: unknown): unknown {
    try {
      return this.#run(key, name, input);
    } catch (err) {
      if (err instanceof SessionError) return { refused: err.toBody() } satisfies Refusal;
      throw err;
    }
  }

  #run(key: string, name: SessionCommandName | "resolve", input: unknown): unknown {
    const config = this.#config;
    const now = Date.now();
    const record = this.#record;
    const stored = record?.entry;
    const { live, step } = stepOf(name, stored, input, now, config);
    const fx = effectsOf(stored, live, step.next, now, config.timeoutMs);
    if (!fx.changed) return step.result;
    // A record stored before incarnations existed: its shard may hold no row or an old one,
    // so its first change is reported as if its model had changed. Token totals are reported
    // at most once a minute (USAGE_REPORT_INTERVAL_MS); in between they travel with the next report.
    const report =
      fx.registry !== undefined ||
      (fx.next !== undefined && record !== undefined && record.inc === undefined) ||
      reportsUsage(stored, fx.next, record?.reportedAt, now);

    if (!fx.next) {
      this.#end(record!, now);
    } else {
      // Versions go on across incarnations while the object remembers the last one, so a shard
      // orders a new incarnation after an old one whose delivery is still out.
      const last = Math.max(record?.version ?? -1, this.#outbox?.ended?.version ?? -1);
      const reportedAt = report ? now : record?.reportedAt;
      const next: SessionRecord = fx.created
        ? { id: key, entry: fx.next, inc: crypto.randomUUID(), version: last + 1, reportedAt }
        : { id: key, entry: fx.next, inc: record!.inc ?? "", version: (record!.version ?? 0) + (report ? 1 : 0), reportedAt };
      // The hot path (no model or tier change) is this one write.
      this.ctx.storage.kv.put<SessionRecord>(RECORD_KEY, next);
      this.#record = next;
      if (report) this.#queue({ since: this.#outbox?.since ?? now }, now);
    }
    if (report) void this.#deliver().catch(() => undefined);
    return step.result;
  }

  /** Delivers what the outbox holds, one delivery at a time; rejects when the registry did not take it. */
  #deliver(): Promise<void> {
    this.#delivering ??= this.#deliverPending().finally(() => {
      this.#delivering = undefined;
    });
    return this.#delivering;
  }

  async #deliverPending(): Promise<void> {
    for (let outbox = this.#outbox; outbox; outbox = this.#outbox) {
      const delivery = this.#delivery(outbox);
      if (delivery) await registryCall("record the session", () => deliverTo(this.env, delivery), this.#config.registryTimeoutMs);
      // A change made while the delivery was out is delivered next, with the state as it is then.
      if (this.#outbox !== outbox) continue;
      this.#outbox = undefined;
      this.ctx.storage.kv.delete(OUTBOX_KEY);
      if (this.#record) void this.ctx.storage.setAlarm(expiresAt(this.#record.entry, this.#config.timeoutMs) + 1);
      else void this.ctx.storage.deleteAlarm();
    }
  }

  /** The row this session's shard should hold, or null when there is no live session. Read by reconciliation. */
  describe(): RowState | null {
    const record = this.#record;
    if (!record || isExpired(record.entry, Date.now(), this.#config.timeoutMs)) return null;
    return this.#row(record);
  }

  /**
   * Clear-all, driven by the registry shard, which drops the row itself. The
   * incarnation the shard held when the clear began (`inc`) is removed, as is
   * any created before that instant; a session created since survives, and the
   * shard learns its row instead.
   */
  async clearBefore(clearStartedAt: number, inc: string): Promise<ClearAnswer> {
    const record = this.#record;
    if (record && (record.entry.createdAt < clearStartedAt || (record.inc ?? "") === inc)) {
      const live = !isExpired(record.entry, Date.now(), this.#config.timeoutMs);
      this.#forget();
      return { cleared: live, current: null };
    }
    return { cleared: false, current: this.describe() };
  }

  /**
   * Expiry and outbox retries. On wake, a session past its deadline ends; what
   * the outbox holds is delivered, and while the registry does not take it the
   * alarm comes back with backoff (the platform retries a failed alarm only six
   * times). A session used since is re-armed for its new deadline instead of
   * being re-armed on every touch. Alarms are delivered at least once, so every
   * branch is safe to repeat.
   */
  override async alarm(): Promise<void> {
    await this.#delivering?.catch(() => undefined);
    const timeoutMs = this.#config.timeoutMs;
    const now = Date.now();
    if (this.#record && isExpired(this.#record.entry, now, timeoutMs)) this.#end(this.#record, now);
    if (this.#outbox) {
      try {
        // A delivery that lands sets the alarm for the deadline itself, or deletes it.
        await this.#deliver();
        return;
      } catch {
        if (this.#outbox) {
          const retryAt = now + retryDelayMs(now - this.#outbox.since, Math.random());
          // +1 ms: the deadline itself is not yet expired, and a setAlarm(now) made inside alarm() is dropped locally.
          const deadline = this.#record ? expiresAt(this.#record.entry, timeoutMs) + 1 : Infinity;
          await this.ctx.storage.setAlarm(Math.min(retryAt, deadline));
          return;
        }
      }
    }
    if (this.#record) await this.ctx.storage.setAlarm(expiresAt(this.#record.entry, timeoutMs) + 1);
    else this.#forget();
  }
}
