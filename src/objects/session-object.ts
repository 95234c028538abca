/**
 * One Durable Object per session: holds the entry in memory, writes it to
 * SQLite-backed storage before answering, and expires it with one alarm.
 * Every rule lives in src/session/ and is named by the command table; this
 * class only sequences I/O.
 */
import { DurableObject } from "cloudflare:workers";
import { stepOf, type SessionCommandName } from "../commands";
import type { Env } from "../env";
import { configFor, type Config } from "../session/config";
import { expiresAt, isExpired } from "../session/entry";
import { effectsOf, type RegistryEffect } from "../session/rules";
import { retryDelayMs } from "../session/retry";
import type { Entry } from "../session/types";
import { registryCall, removeRow, upsertRow } from "./registry-client";

/** The one key this object stores: its session's key and entry together. */
const RECORD_KEY = "session";

/** What the object stores: the session's key (its ID, or the tenant-scoped key) and its entry. */
interface SessionRecord {
  id: string;
  entry: Entry;
}

export class SessionObject extends DurableObject<Env> {
  #key: string | undefined;
  #stored: Entry | undefined;
  /** Calls run one at a time: a registry write awaits the network, and input gates do not cover that. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Synchronous KV on SQLite storage: reading an absent key creates nothing,
    // so an object that is only asked about a missing session stays empty.
    const saved = ctx.storage.kv.get<SessionRecord>(RECORD_KEY);
    this.#key = saved?.id;
    this.#stored = saved?.entry;
  }

  get #config(): Config {
    return configFor(this.env);
  }

  /** A registry effect, bounded in time; any failure or hang becomes 503 `registry_unavailable`. */
  #registry(key: string, effect: NonNullable<RegistryEffect>): Promise<void> {
    if (effect.kind === "upsert") {
      const { model, tier, createdAt } = effect.entry;
      return registryCall("record the session", () => upsertRow(this.env, { id: key, model, tier, createdAt }), this.#config.registryTimeoutMs);
    }
    return registryCall("remove the session", () => removeRow(this.env, key), this.#config.registryTimeoutMs);
  }

  #exclusive<R>(work: () => Promise<R>): Promise<R> {
    const run = this.#tail.then(work);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #persist(key: string, entry: Entry): void {
    this.ctx.storage.kv.put<SessionRecord>(RECORD_KEY, { id: key, entry });
  }

  async #forget(): Promise<void> {
    // From compatibility date 2026-02-24, deleteAll() also removes the alarm.
    await this.ctx.storage.deleteAll();
    this.#stored = undefined;
    this.#key = undefined;
  }

  /**
   * Runs a per-session command (or resolve) for the session stored under `key`. The
   * Worker's facade has validated the input; this object is reachable only through it.
   */
  run(key: string, name: SessionCommandName | "resolve", input: unknown): Promise<unknown> {
    return this.#exclusive(async () => {
      const config = this.#config;
      const stored = this.#stored;
      const { live, step } = stepOf(name, stored, input, Date.now(), config);
      const fx = effectsOf(stored, live, step.next);
      if (!fx.changed) return step.result;

      if (!fx.next) {
        // Registry first: if it fails, nothing changed and the caller may retry.
        // An expired entry seen by a read is left to the alarm, which retries.
        if (fx.registry) {
          try {
            await this.#registry(key, fx.registry);
          } catch (err) {
            if (live) throw err;
            return step.result;
          }
        }
        await this.#forget();
        return step.result;
      }

      // Registry before storage on creation, so a live session is never missing
      // from it; a failure leaves no orphan because nothing was stored yet.
      if (fx.registry) await this.#registry(key, fx.registry);
      try {
        this.#persist(key, fx.next);
      } catch (err) {
        if (fx.created) await this.#registry(key, { kind: "remove" }).catch(() => undefined);
        throw err;
      }
      this.#stored = fx.next;
      this.#key = key;
      // Not awaited: the output gate holds the answer until the alarm is durable,
      // and a failed write resets the object instead of answering.
      if (fx.created) void this.ctx.storage.setAlarm(expiresAt(fx.next, config.timeoutMs));
      return step.result;
    });
  }

  /**
   * Clear-all, driven by the registry shard, which drops the row itself. Only
   * the incarnation the shard knew (by createdAt) is removed: a session
   * re-created after the clear began survives it.
   */
  clearIncarnation(createdAt: number): Promise<boolean> {
    return this.#exclusive(async () => {
      if (this.#stored && this.#stored.createdAt !== createdAt) return false;
      await this.#forget();
      return true;
    });
  }

  /**
   * Expiry. Armed once at creation; on wake, a session used since is re-armed
   * for its new deadline instead of being re-armed on every touch. When the
   * registry cannot drop the row, the session stays and the alarm is re-armed
   * with backoff. Alarms are delivered at least once, so every branch is safe to repeat.
   */
  override async alarm(): Promise<void> {
    await this.#exclusive(async () => {
      const stored = this.#stored;
      const key = this.#key;
      if (!stored || key === undefined) {
        await this.#forget();
        return;
      }
      const timeoutMs = this.#config.timeoutMs;
      const now = Date.now();
      if (isExpired(stored, now, timeoutMs)) {
        try {
          await this.#registry(key, { kind: "remove" });
        } catch (err) {
          // Re-arm with backoff rather than throw: the platform retries a failed alarm
          // only six times, and after that neither the session nor its row would ever go.
          const wait = retryDelayMs(now - expiresAt(stored, timeoutMs), Math.random());
          console.error(`session expiry deferred ${wait} ms: ${(err as Error).message}`);
          await this.ctx.storage.setAlarm(now + wait);
          return;
        }
        await this.#forget();
      } else {
        // +1 ms: the deadline itself is not yet expired, and a setAlarm(now) made
        // inside alarm() is dropped locally.
        await this.ctx.storage.setAlarm(expiresAt(stored, timeoutMs) + 1);
      }
    });
  }
}
