/**
 * One Durable Object per session: holds the entry in memory, writes it to
 * SQLite-backed storage before answering, and expires it with one alarm.
 * Every rule lives in session/operations; this class only sequences I/O.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { configFor, type Config } from "../session/config";
import * as ops from "../session/operations";
import { effectsOf, liveEntry, type RegistryEffect } from "../session/operations";
import { retryDelayMs } from "../session/retry";
import { expiresAt, isExpired } from "../session/transitions";
import type { Entry, SessionCost, Tier } from "../session/types";
import { REGISTRY_TIMEOUT_MS, registryCall, removeRow, upsertRow } from "./registry-client";
import { toReply, type Reply } from "./reply";

/** The one key this object stores: its session ID and entry together. */
const ENTRY_KEY = "session";

interface Stored {
  id: string;
  entry: Entry;
}

export class SessionObject extends DurableObject<Env> {
  private sessionId: string | undefined;
  private stored: Entry | undefined;
  /** Calls run one at a time: a registry write awaits the network, and input gates do not cover that. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Synchronous KV on SQLite storage: reading an absent key creates nothing,
    // so an object that is only asked about a missing session stays empty.
    const saved = ctx.storage.kv.get<Stored>(ENTRY_KEY);
    this.sessionId = saved?.id;
    this.stored = saved?.entry;
  }

  /** The clock every transition sees. Tests substitute it in a subclass; production reads the system time. */
  protected now(): number {
    return Date.now();
  }

  protected get config(): Config {
    return configFor(this.env);
  }

  /** Sends a registry effect. A seam so fault tests can make the registry throw or hang. */
  protected async tellRegistry(id: string, effect: NonNullable<RegistryEffect>): Promise<void> {
    if (effect.kind === "upsert") {
      const { model, tier, createdAt } = effect.entry;
      await upsertRow(this.env, { id, model, tier, createdAt });
    } else {
      await removeRow(this.env, id);
    }
  }

  /** How long a registry write may take; a seam so fault tests need not wait the full time. */
  protected get registryTimeoutMs(): number {
    return REGISTRY_TIMEOUT_MS;
  }

  /** A registry effect, bounded in time; any failure or hang becomes 503 `registry_unavailable`. */
  private registry(id: string, effect: NonNullable<RegistryEffect>): Promise<void> {
    const what = effect.kind === "upsert" ? "record the session" : "remove the session";
    return registryCall(what, () => this.tellRegistry(id, effect), this.registryTimeoutMs);
  }

  private exclusive<R>(work: () => Promise<R>): Promise<R> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private persist(id: string, entry: Entry): void {
    this.ctx.storage.kv.put<Stored>(ENTRY_KEY, { id, entry });
  }

  private async forget(): Promise<void> {
    // From compatibility date 2026-02-24, deleteAll() also removes the alarm.
    await this.ctx.storage.deleteAll();
    this.stored = undefined;
    this.sessionId = undefined;
  }

  private run<R>(id: string, op: ops.Op<R>): Promise<Reply<R>> {
    return toReply(() =>
      this.exclusive(async () => {
        const config = this.config;
        const now = this.now();
        const stored = this.stored;
        const live = liveEntry(stored, now, config.timeoutMs);
        const step = op(live, { now, config });
        const fx = effectsOf(stored, live, step.next);
        if (!fx.changed) return step.result;

        if (!fx.next) {
          // Registry first: if it fails, nothing changed and the caller may retry.
          // An expired entry seen by a read is left to the alarm, which retries.
          if (fx.registry) {
            try {
              await this.registry(id, fx.registry);
            } catch (err) {
              if (live) throw err;
              return step.result;
            }
          }
          await this.forget();
          return step.result;
        }

        // Registry before storage on creation, so a live session is never missing
        // from it; a failure leaves no orphan because nothing was stored yet.
        if (fx.registry) await this.registry(id, fx.registry);
        try {
          this.persist(id, fx.next);
        } catch (err) {
          if (fx.created) await this.registry(id, { kind: "remove" }).catch(() => undefined);
          throw err;
        }
        this.stored = fx.next;
        this.sessionId = id;
        // Not awaited: the output gate holds the answer until the alarm is durable,
        // and a failed write resets the object instead of answering.
        if (fx.created) void this.ctx.storage.setAlarm(expiresAt(fx.next, config.timeoutMs));
        return step.result;
      }),
    );
  }

  get(id: string): Promise<Reply<Entry | null>> {
    return this.run(id, ops.get);
  }

  set(id: string, model: string, tier: Tier, userExplicit: boolean): Promise<Reply<Entry>> {
    return this.run(id, ops.set(model, tier, userExplicit));
  }

  touch(id: string): Promise<Reply<Entry | null>> {
    return this.run(id, ops.touch);
  }

  recordHash(id: string, hash: string): Promise<Reply<number | null>> {
    return this.run(id, ops.recordHash(hash));
  }

  escalate(id: string): Promise<Reply<Entry | null>> {
    return this.run(id, ops.escalate);
  }

  addCost(id: string, micros: number): Promise<Reply<SessionCost | null>> {
    return this.run(id, ops.addCost(micros));
  }

  getCost(id: string): Promise<Reply<SessionCost | null>> {
    return this.run(id, ops.getCost);
  }

  clear(id: string): Promise<Reply<void>> {
    return this.run(id, ops.clear);
  }

  resolve(id: string, request: ops.ResolveRequest): Promise<Reply<ops.ResolveDecision>> {
    return this.run(id, ops.resolve(request));
  }

  /**
   * Clear-all, driven by the registry shard, which drops the row itself. Only
   * the incarnation the shard knew (by createdAt) is removed: a session
   * re-created after the clear began survives it.
   */
  clearIncarnation(createdAt: number): Promise<boolean> {
    return this.exclusive(async () => {
      if (this.stored && this.stored.createdAt !== createdAt) return false;
      await this.forget();
      return true;
    });
  }

  /**
   * Storage cost, for the benchmark: the SQLite file (page-granular, so it
   * includes the platform's floor) and the entry's own serialized bytes.
   */
  storedBytes(): { database: number; entry: number } {
    const saved = this.ctx.storage.kv.get<Stored>(ENTRY_KEY);
    return { database: this.ctx.storage.sql.databaseSize, entry: saved ? new TextEncoder().encode(JSON.stringify(saved)).length : 0 };
  }

  /**
   * Expiry. Armed once at creation; on wake, a session used since is re-armed
   * for its new deadline instead of being re-armed on every touch. When the
   * registry cannot drop the row, the session stays and the alarm is re-armed
   * with backoff. Alarms are delivered at least once, so every branch is safe to repeat.
   */
  override async alarm(): Promise<void> {
    await this.exclusive(async () => {
      const stored = this.stored;
      const id = this.sessionId;
      if (!stored || id === undefined) {
        await this.forget();
        return;
      }
      const timeoutMs = this.config.timeoutMs;
      const now = this.now();
      if (isExpired(stored, now, timeoutMs)) {
        try {
          await this.registry(id, { kind: "remove" });
        } catch (err) {
          // Re-arm with backoff rather than throw: the platform retries a failed alarm
          // only six times, and after that neither the session nor its row would ever go.
          const wait = retryDelayMs(now - expiresAt(stored, timeoutMs), Math.random());
          console.error(`session expiry deferred ${wait} ms: ${(err as Error).message}`);
          await this.ctx.storage.setAlarm(now + wait);
          return;
        }
        await this.forget();
      } else {
        // +1 ms: the deadline itself is not yet expired, and a setAlarm(now) made
        // inside alarm() is dropped locally.
        await this.ctx.storage.setAlarm(expiresAt(stored, timeoutMs) + 1);
      }
    });
  }
}
