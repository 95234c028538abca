/**
 * In-process session store on the same pure steps as the Durable Object.
 * Node gateways can embed it. The tests check it, like the objects, against
 * an independent model in test/model/.
 */
import { planResolve, type ResolveResult } from "../gateway/resolve-input";
import { defaultConfig, type Config } from "./config";
import { SessionError } from "./errors";
import * as ops from "./operations";
import { compareIds, sessionInfo, tally, toCounts, topCounts, type RegistryRow, type Stats } from "./stats";
import { isExpired } from "./transitions";
import { systemClock, type Clock, type Entry, type SessionCost, type SessionView, type Tier } from "./types";
import {
  optionalBoolean,
  validateHash,
  validateMicros,
  validateModel,
  validateSessionId,
  validateTier,
} from "./validate";

export interface MemoryStoreOptions {
  config?: Partial<Config>;
  clock?: Clock;
  /** How often expired entries are swept; 0 turns the sweep off. Default: every minute. */
  sweepIntervalMs?: number;
}

/** The reference store sweeps expired sessions in the background; we default to once a minute. */
const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

export function view(id: string, entry: Entry): SessionView {
  return { id, ...entry, recentHashes: [...entry.recentHashes] };
}

export class MemoryStore {
  readonly config: Config;
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.config = { ...defaultConfig, ...options.config };
    this.clock = options.clock ?? systemClock;
    const every = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (this.config.enabled && every > 0) {
      this.sweeper = setInterval(() => this.sweep(), every);
      // A background sweep must not keep a Node process alive on its own.
      (this.sweeper as { unref?: () => void }).unref?.();
    }
  }

  private run<R>(id: string, op: ops.Op<R>): R {
    const now = this.clock();
    const stored = this.entries.get(id);
    const live = ops.liveEntry(stored, now, this.config.timeoutMs);
    const step = op(live, { now, config: this.config });
    if (step.next !== stored) {
      if (step.next) this.entries.set(id, step.next);
      else this.entries.delete(id);
    }
    return step.result;
  }

  /** Disabled: nothing is created or read (reference `Config.Enabled`). */
  private checkEnabled(): void {
    if (!this.config.enabled) throw new SessionError("sessions_disabled", "sessions are disabled (SESSION_ENABLED=false)");
  }

  getSession(id: string): SessionView | null {
    validateSessionId(id);
    this.checkEnabled();
    const entry = this.run(id, ops.get);
    return entry && view(id, entry);
  }

  setSession(id: string, model: string, tier: Tier, userExplicit = false): SessionView {
    validateSessionId(id);
    const args = [validateModel("model", model), validateTier("tier", tier), optionalBoolean("userExplicit", userExplicit, false)] as const;
    this.checkEnabled();
    return view(id, this.run(id, ops.set(...args)));
  }

  touchSession(id: string): SessionView | null {
    validateSessionId(id);
    this.checkEnabled();
    const entry = this.run(id, ops.touch);
    return entry && view(id, entry);
  }

  /** Strikes after recording; 0 for an unknown session, as in the reference. */
  recordRequestHash(id: string, hash: string): number {
    validateSessionId(id);
    validateHash("hash", hash);
    this.checkEnabled();
    return this.run(id, ops.recordHash(hash)) ?? 0;
  }

  escalateSession(id: string): SessionView | null {
    validateSessionId(id);
    this.checkEnabled();
    const entry = this.run(id, ops.escalate);
    return entry && view(id, entry);
  }

  addSessionCost(id: string, micros: number): SessionCost | null {
    validateSessionId(id);
    validateMicros("micros", micros);
    this.checkEnabled();
    return this.run(id, ops.addCost(micros));
  }

  getSessionCost(id: string): SessionCost | null {
    validateSessionId(id);
    this.checkEnabled();
    return this.run(id, ops.getCost);
  }

  /** Session cost in USD; 0 for an unknown session, as in the reference. */
  getSessionCostUSD(id: string): number {
    return this.getSessionCost(id)?.costUSD ?? 0;
  }

  clearSession(id: string): void {
    validateSessionId(id);
    this.checkEnabled();
    this.run(id, ops.clear);
  }

  async resolve(input: unknown): Promise<ResolveResult> {
    const plan = await planResolve(input, this.config);
    if (plan.sessionId === null) return plan.result;
    const decision = this.run(plan.sessionId, ops.resolve(plan.request));
    return { sessionId: plan.sessionId, source: plan.source, ...decision };
  }

  /** Reference `GetStats`, with the same extras as the registry: totals by model and tier. */
  getStats(): Stats {
    const now = this.clock();
    const rows: RegistryRow[] = [];
    for (const [id, e] of this.entries) {
      if (!isExpired(e, now, this.config.timeoutMs)) rows.push({ id, model: e.model, tier: e.tier, createdAt: e.createdAt });
    }
    rows.sort((a, b) => compareIds(a.id, b.id));
    const byModel = topCounts(tally(rows.map((r) => [r.model, 1] as const)));
    const byTier = toCounts(tally(rows.map((r) => [r.tier, 1] as const)));
    return { count: rows.length, sessions: rows.map((r) => sessionInfo(r, now)), byModel, byTier };
  }

  clearAll(): { cleared: number } {
    const cleared = this.entries.size;
    this.entries.clear();
    return { cleared };
  }

  /** Removes every expired entry; returns how many. */
  sweep(): number {
    const now = this.clock();
    let removed = 0;
    for (const [id, e] of this.entries) {
      if (isExpired(e, now, this.config.timeoutMs)) {
        this.entries.delete(id);
        removed++;
      }
    }
    return removed;
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}
