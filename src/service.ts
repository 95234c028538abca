/**
 * The session API, once, for both front doors: the HTTP router and the RPC
 * entrypoint call these methods. Inputs are validated here; past this point
 * values are typed and trusted.
 */
import type { Env } from "./env";
import { planResolve, type ResolveResult } from "./gateway/resolve-input";
import { unwrap } from "./objects/reply";
import { REGISTRY_READ_TIMEOUT_MS, registryCall, shardStub } from "./objects/registry-client";
import { CLEAR_REQUEST_BUDGET_MS, type ClearProgress, type ShardPage } from "./objects/registry-object";
import { configFor, type Config } from "./session/config";
import { SessionError, invalidRequest } from "./session/errors";
import { deriveSessionId, hashRequestContent } from "./session/hashing";
import { view } from "./session/memory-store";
import { compareIds, mergeSorted, namespacedKey, sessionInfo, tally, toCounts, topCounts, type Stats } from "./session/stats";
import { systemClock, type Clock, type Entry, type SessionCost, type SessionView, type Tier } from "./session/types";
import {
  optionalBoolean,
  requireString,
  validateHash,
  validateMicros,
  validateModel,
  validateSessionId,
  validateTier,
  validateNamespace,
  validateToolNames,
} from "./session/validate";
import { cursorKey, decodeCursor, encodeCursor } from "./stats-cursor";

/** Reference `GetStats` returns everything; we page, defaulting to 1,000 and capping at 10,000. */
export const DEFAULT_STATS_LIMIT = 1000;
export const MAX_STATS_LIMIT = 10_000;
/** Each shard is first asked for its even share of a page, times this, plus a few rows. */
const PAGE_SHARE_SLACK = 1.5;
const PAGE_SHARE_EXTRA = 8;
/**
 * Longest message `deriveSessionId` / `hashRequestContent` take over RPC, where no
 * body limit applies: the resolve body limit (4 MiB), so a string costs the
 * isolate at most what the worst resolve body does (two bytes a character, up to
 * three more each when encoded). Over HTTP the 64 KiB body limit bounds it first.
 */
const MAX_MESSAGE_LENGTH = 4 * 1024 * 1024;

export interface StatsOptions {
  limit?: number;
  cursor?: string;
}

export class SessionApi {
  readonly config: Config;

  /**
   * Throws `config_invalid` when a var is invalid: every call fails loudly, none falls back.
   * `namespace` scopes every session to a tenant (see SECURITY.md); it comes from the
   * SESSION_NAMESPACE_HEADER of the gateway's call, or from RPC `forNamespace`.
   */
  constructor(
    private readonly env: Env,
    private readonly clock: Clock = systemClock,
    private readonly namespace?: string,
  ) {
    this.config = configFor(env);
  }

  /**
   * The object name and registry key of a session: the ID itself when unscoped, or the tenant's
   * namespace and the ID joined by a separator no validated ID contains, so the two never meet.
   */
  private keyOf(sessionId: string): string {
    if (this.namespace !== undefined) return namespacedKey(validateNamespace(this.namespace, this.config.namespaceHeader), sessionId);
    if (this.config.namespaceHeader !== undefined) {
      throw invalidRequest(this.config.namespaceHeader, "header is required: sessions are scoped by tenant (SESSION_NAMESPACE_HEADER)");
    }
    return sessionId;
  }

  private stubOf(key: string) {
    return this.env.SESSIONS.get(this.env.SESSIONS.idFromName(key));
  }

  private session(id: unknown) {
    const sessionId = validateSessionId(id);
    if (!this.config.enabled) throw new SessionError("sessions_disabled", "sessions are disabled (SESSION_ENABLED=false)");
    const key = this.keyOf(sessionId);
    return { sessionId, key, stub: this.stubOf(key) };
  }

  private static view(id: string, entry: Entry | null): SessionView | null {
    return entry && view(id, entry);
  }

  async getSession(id: unknown): Promise<SessionView | null> {
    const { sessionId, key, stub } = this.session(id);
    return SessionApi.view(sessionId, unwrap(await stub.get(key)));
  }

  async setSession(id: unknown, model: unknown, tier: unknown, userExplicit?: unknown): Promise<SessionView> {
    const m = validateModel("model", model);
    const t: Tier = validateTier("tier", tier);
    const explicit = optionalBoolean("userExplicit", userExplicit, false);
    const { sessionId, key, stub } = this.session(id);
    return view(sessionId, unwrap(await stub.set(key, m, t, explicit)));
  }

  async touchSession(id: unknown): Promise<SessionView | null> {
    const { sessionId, key, stub } = this.session(id);
    return SessionApi.view(sessionId, unwrap(await stub.touch(key)));
  }

  /** Strikes after recording, or null for an unknown session. */
  async recordRequestHash(id: unknown, hash: unknown): Promise<number | null> {
    const h = validateHash("hash", hash);
    const { sessionId, key, stub } = this.session(id);
    return unwrap(await stub.recordHash(key, h));
  }

  async escalateSession(id: unknown): Promise<SessionView | null> {
    const { sessionId, key, stub } = this.session(id);
    return SessionApi.view(sessionId, unwrap(await stub.escalate(key)));
  }

  async addSessionCost(id: unknown, micros: unknown): Promise<SessionCost | null> {
    const n = validateMicros("micros", micros);
    const { sessionId, key, stub } = this.session(id);
    return unwrap(await stub.addCost(key, n));
  }

  async getSessionCost(id: unknown): Promise<SessionCost | null> {
    const { sessionId, key, stub } = this.session(id);
    return unwrap(await stub.getCost(key));
  }

  async clearSession(id: unknown): Promise<void> {
    const { sessionId, key, stub } = this.session(id);
    unwrap(await stub.clear(key));
  }

  deriveSessionId(firstUserMessage: unknown): Promise<string> {
    return deriveSessionId(requireString("firstUserMessage", firstUserMessage, { max: MAX_MESSAGE_LENGTH }));
  }

  hashRequestContent(content: unknown, toolNames?: unknown): Promise<string> {
    return hashRequestContent(requireString("content", content, { max: MAX_MESSAGE_LENGTH }), validateToolNames("toolNames", toolNames));
  }

  async resolve(input: unknown): Promise<ResolveResult> {
    const plan = await planResolve(input, this.config);
    if (plan.sessionId === null) return plan.result;
    const key = this.keyOf(plan.sessionId);
    const decision = unwrap(await this.stubOf(key).resolve(key, plan.request));
    return { sessionId: plan.sessionId, source: plan.source, ...decision };
  }

  private shards() {
    return Array.from({ length: this.config.registryShards }, (_, k) => shardStub(this.env, k));
  }

  /** Reference `GetStats` over every shard, queried in parallel, with cursor pagination and totals. */
  async getStats(options: StatsOptions = {}): Promise<Stats> {
    const limit = options.limit ?? DEFAULT_STATS_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_STATS_LIMIT) {
      throw invalidRequest("limit", `must be an integer from 1 to ${MAX_STATS_LIMIT}`);
    }
    const after = options.cursor === undefined ? null : await decodeCursor(options.cursor, await cursorKey(this.env), this.clock());
    const shards = this.shards();
    const pages = await registryCall(
      "list sessions",
      async () => {
        // Sessions hash evenly over shards, so a share of the page from each usually
        // settles it; a shard that returned a full share may hold more rows before the
        // cut, and only those shards are asked again, for a whole page.
        const share = Math.min(limit + 1, Math.ceil(((limit + 1) * PAGE_SHARE_SLACK) / shards.length) + PAGE_SHARE_EXTRA);
        const first = await Promise.all(shards.map((shard) => shard.page(after, share, true)));
        const lists = first.map((p) => p.rows);
        const full = lists.map((rows, k) => (rows.length === share && share < limit + 1 ? k : -1)).filter((k) => k >= 0);
        if (full.length > 0) {
          const cut = full.map((k) => lists[k]!.at(-1)!.id).sort(compareIds)[0]!;
          const settled = lists.reduce((n, rows) => n + rows.filter((r) => compareIds(r.id, cut) <= 0).length, 0);
          // With limit + 1 rows known up to the cut, the merge below takes only those.
          if (settled < limit + 1) {
            const more = await Promise.all(full.map((k) => shards[k]!.page(lists[k]!.at(-1)!.id, limit + 1, false)));
            full.forEach((k, i) => lists[k]!.push(...more[i]!.rows));
          }
        }
        // RPC typing widens the shards' [key, count] tuples to arrays; the values are the shards' own.
        return { totals: first as ShardPage[], lists };
      },
      REGISTRY_READ_TIMEOUT_MS,
    );
    const now = this.clock();
    const count = pages.totals.reduce((sum, page) => sum + page.count, 0);
    const byModel = topCounts(tally(pages.totals.flatMap((page) => page.byModel)));
    const byTier = toCounts(tally(pages.totals.flatMap((page) => page.byTier)));
    const rows = mergeSorted(pages.lists, limit + 1);
    const shown = rows.slice(0, limit);
    const stats: Stats = { count, sessions: shown.map((r) => sessionInfo(r, now)), byModel, byTier };
    if (rows.length > limit) stats.nextCursor = await encodeCursor(shown[shown.length - 1]!.id, await cursorKey(this.env), now);
    return stats;
  }

  /** Clears every session in every shard; `pending` > 0 means the shards' alarms are finishing the job. */
  async clearAll(): Promise<ClearProgress> {
    const results = await registryCall(
      "clear sessions",
      () => Promise.all(this.shards().map((shard) => shard.clearAll())),
      CLEAR_REQUEST_BUDGET_MS + REGISTRY_READ_TIMEOUT_MS,
    );
    return results.reduce((sum, r) => ({ cleared: sum.cleared + r.cleared, pending: sum.pending + r.pending }), { cleared: 0, pending: 0 });
  }
}
