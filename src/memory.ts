/**
 * The embeddable store: the same facade and command table as the service,
 * over an in-memory map instead of Durable Objects. Node gateways can embed
 * it; the parity and model-based tests compare it with the objects.
 */
import { journalOf, stepOf, type JournalCommandName, type SessionCommandName } from "./commands";
import { Sessions, type Backend } from "./facade";
import { defaultConfig, type Config } from "./session/config";
import { expireReservations } from "./session/budget";
import { isExpired } from "./session/entry";
import { SessionError } from "./session/errors";
import { JOURNAL_LIMIT, type Actor, type JournalEvent } from "./session/journal";
import { cacheStats, compareIds, sessionInfo, tally, toCounts, topCounts, type RegistryRow, type Stats } from "./session/stats";
import type { Entry } from "./session/types";
import { decodeCursor, encodeCursor, importKey } from "./stats-cursor";

export interface MemoryStoreOptions {
  config?: Partial<Config>;
  /** How often expired entries are swept; 0 turns the sweep off. Default: every minute. */
  sweepIntervalMs?: number;
}

/** The reference store sweeps expired sessions in the background; we default to once a minute. */
const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
/** AES-256: the store's own stats cursor key, made at construction and never kept. */
const CURSOR_KEY_BYTES = 32;

/** Sessions in a Map, keyed like the objects (the ID, or the tenant-scoped key). */
class MemoryBackend implements Backend {
  readonly entries = new Map<string, Entry>();
  readonly #cursorKey = importKey(crypto.getRandomValues(new Uint8Array(CURSOR_KEY_BYTES)));

  constructor(private readonly config: Config) {}

  /** Each session's journal: the last JOURNAL_LIMIT events, as the objects keep them, dropped when the session ends (a session found expired by a request numbers on into its next incarnation). */
  readonly journals = new Map<string, { next: number; events: JournalEvent[] }>();

  run(key: string, name: SessionCommandName | "resolve", input: unknown, actor?: Actor): unknown {
    const stored = this.entries.get(key);
    const now = Date.now();
    const { live, step } = stepOf(name, stored, input, now, this.config);
    if (step.next === undefined) {
      // In memory a journal goes with its session, so a long-lived store holds none for sessions past.
      this.entries.delete(key);
      this.journals.delete(key);
    } else if (step.next !== stored) {
      this.entries.set(key, step.next);
      const drafts = journalOf(name, actor, stored, live, step.next, step.result, input, this.config);
      if (drafts.length > 0) {
        let journal = this.journals.get(key);
        if (!journal) this.journals.set(key, (journal = { next: now, events: [] }));
        for (const draft of drafts) journal.events.push({ seq: journal.next++, at: now, ...draft } as JournalEvent);
        if (journal.events.length > JOURNAL_LIMIT) journal.events.splice(0, journal.events.length - JOURNAL_LIMIT);
      }
    }
    return step.result;
  }

  async journal(key: string, name: JournalCommandName, input: { id: string } & Record<string, unknown>): Promise<unknown> {
    if (name === "liveTicket") throw new SessionError("not_found", "the in-memory store has no live feed; read the journal with getEvents");
    const after = input.after as number;
    return { events: (this.journals.get(key)?.events ?? []).filter((e) => e.seq > after) };
  }

  /** Reference `GetStats`, paged and totalled as the registry does, over the live entries. */
  async getStats({ limit, cursor }: { limit: number; cursor?: string | undefined }): Promise<Stats> {
    const now = Date.now();
    const after = cursor === undefined ? null : await decodeCursor(cursor, await this.#cursorKey, now);
    const rows: RegistryRow[] = [];
    // Summed exactly (each figure is a safe integer, their sum may not be), so the totals do not depend on the map's order.
    let inputTokens = 0n;
    let cachedInputTokens = 0n;
    let spendMicros = 0n;
    for (const [id, e] of this.entries) {
      if (isExpired(e, now, this.config.timeoutMs)) continue;
      // The cost as a read shows it: expired reservations charged.
      const { model, tier, createdAt, sessionCostMicros, strikes, requestCount } = expireReservations(e, now);
      rows.push({ id, model, tier, createdAt, sessionCostMicros, strikes, requestCount, paused: e.paused !== undefined });
      inputTokens += BigInt(e.inputTokens ?? 0);
      cachedInputTokens += BigInt(e.cachedInputTokens ?? 0);
      spendMicros += BigInt(sessionCostMicros);
    }
    rows.sort((a, b) => compareIds(a.id, b.id));
    const byModel = topCounts(tally(rows.map((r) => [r.model, 1] as const)));
    const byTier = toCounts(tally(rows.map((r) => [r.tier, 1] as const)));
    const from = after === null ? 0 : rows.findIndex((r) => compareIds(r.id, after) > 0);
    const page = from < 0 ? [] : rows.slice(from, from + limit);
    const stats: Stats = {
      count: rows.length,
      sessions: page.map((r) => sessionInfo(r, now)),
      byModel,
      byTier,
      cache: cacheStats(Number(inputTokens), Number(cachedInputTokens)),
      spendMicros: Number(spendMicros),
    };
    if (from >= 0 && from + limit < rows.length) stats.nextCursor = await encodeCursor(page[page.length - 1]!.id, await this.#cursorKey, now);
    return stats;
  }

  /** Clears every entry; `cleared` counts the live ones, as stats do (an expired entry is already gone to a caller). */
  async clearAll(): Promise<{ cleared: number; pending: number }> {
    const now = Date.now();
    let cleared = 0;
    for (const e of this.entries.values()) if (!isExpired(e, now, this.config.timeoutMs)) cleared++;
    this.entries.clear();
    this.journals.clear();
    return { cleared, pending: 0 };
  }
}

export class MemoryStore extends Sessions {
  readonly #backend: MemoryBackend;
  #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    const config = { ...defaultConfig, ...options.config };
    const backend = new MemoryBackend(config);
    super(backend, config);
    this.#backend = backend;
    const every = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (config.enabled && every > 0) {
      this.#sweeper = setInterval(() => this.sweep(), every);
      // A background sweep must not keep a Node process alive on its own.
      (this.#sweeper as { unref?: () => void }).unref?.();
    }
  }

  /** Removes every expired entry; returns how many. */
  sweep(): number {
    const now = Date.now();
    let removed = 0;
    for (const [key, e] of this.#backend.entries) {
      if (isExpired(e, now, this.config.timeoutMs)) {
        this.#backend.entries.delete(key);
        this.#backend.journals.delete(key);
        removed++;
      }
    }
    return removed;
  }

  /** Entries held, expired ones not yet swept included. */
  get size(): number {
    return this.#backend.entries.size;
  }

  close(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}
