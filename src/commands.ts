/**
 * The command table: every operation of the API, described once. An entry
 * names the operation (one verb, the same on the facade, both RPC
 * entrypoints, the HTTP client and as the OpenAPI operationId), its input
 * and output schemas, its HTTP method and path, the grant it needs, and for a
 * per-session command the pure rule the session object runs. The facade,
 * the objects, the router, the RPC entrypoints, the client and the OpenAPI
 * document are all driven from here; adding an operation means an entry
 * here, its rule in src/session/rules.ts, and tests.
 */
import { z } from "zod";
import * as rules from "./session/rules";
import type { ResolveDecision, Rule, Step } from "./session/rules";
import { budgetOf, viewOf } from "./session/entry";
import { eventsOf, markThresholds, type Actor, type EventDraft, type JournalEvent } from "./session/journal";
import { deriveSessionId, hashRequestContent } from "./session/hashing";
import { LONE_SURROGATE } from "./session/validate";
import { DEFAULT_STATS_LIMIT, MAX_STATS_LIMIT, type ClearProgress, type Stats } from "./session/stats";
import type { Config } from "./session/config";
import type { ErrorCode } from "./session/errors";
import type { Entry, SessionCost, SessionView, SettleResult, Tier, Usage } from "./session/types";
import type { ResolveInput, ResolveResult } from "./requests/resolve-input";
import * as s from "./schemas";
import { JOURNAL_LIMIT } from "./session/journal";

export type Grant = "api" | "admin";
export type HttpMethod = "GET" | "PUT" | "POST" | "DELETE";

/** How an operation is served over HTTP. */
export interface HttpBinding {
  method: HttpMethod;
  /** OpenAPI path template; `{id}` is the session ID, percent-encoded. */
  path: string;
  /** HTTP answers a scalar result as an object with this one key, e.g. `{ "strikes": 2 }`. */
  resultKey?: string;
  /** The success status for a result, when not 200. An undefined result is always 204, no body. */
  status?: (result: never) => number;
  /** The response body for a result, when not the result itself (or `{ [resultKey]: result }`). */
  body?: (result: never) => unknown;
  /** The client's result for a response body: the inverse of `body`. */
  read?: (body: never) => unknown;
  /** Response headers for a result, and what each means (for the OpenAPI document). */
  headers?: (result: never) => Record<string, string>;
  headerDocs?: Record<string, string>;
  /** The operation answers for any session ID, live or not: never 404 `session_not_found`. */
  anyId?: true;
  /** Success answers by status, for the OpenAPI document (`null`: no body). Default: 200 with the output schema. */
  responses?: Record<number, z.ZodType | null>;
}

interface Spec {
  summary: string;
  grant: Grant;
  /**
   * The RPC and facade methods' positional arguments: the input's field names, in
   * order; or "object" when the one argument is the input object itself.
   */
  args: readonly string[] | "object";
  /** The arguments as one object; RPC positional arguments and HTTP path, query and body fields all land here. */
  input: z.ZodObject;
  /** What the operation answers (over HTTP, wrapped under `http.resultKey` when set). */
  output: z.ZodType;
  /** Absent for operations only the facade and RPC offer (reference-compatible shapes). */
  http?: HttpBinding;
  /** The errors of this operation's own rules, beyond those every operation of its kind may answer (for the OpenAPI document). */
  errors?: readonly ErrorCode[];
}

/** Runs in the session's object: the rule is the whole behaviour. */
export interface SessionCommand<I = any, R = any> extends Spec {
  kind: "session";
  rule: Rule<I, R>;
  /** The API's answer for a rule's result; `null` means no live session. */
  present: (result: R, id: string, config: Config) => unknown;
  /** What the facade and RPC answer for no live session (the reference's zero); HTTP answers 404 `session_not_found`. */
  unknown?: unknown;
}

/** Resolve: the facade plans (derives the ID, hashes), then the session's object decides. */
export interface ResolveCommand extends Spec {
  kind: "resolve";
}

/** Computed in the Worker, no session involved. */
export interface LocalCommand extends Spec {
  kind: "local";
  run: (input: any) => Promise<unknown>;
}

/** Reads or opens a session's journal (its events, a live-feed ticket): served by the session's object, not by a rule. */
export interface JournalCommand extends Spec {
  kind: "journal";
}

/** Across every session, through the registry. */
export interface AdminCommand extends Spec {
  kind: "admin";
}

export type Command = SessionCommand | ResolveCommand | LocalCommand | JournalCommand | AdminCommand;

/**
 * Types an entry with its public signature, stated once beside the argument names,
 * so the facade, RPC and client methods are typed from the table.
 */
function op<F extends (...args: any[]) => Promise<unknown>>() {
  return <C extends Command>(entry: C) => entry as C & { readonly signature?: F };
}

/** Model names are well-formed UTF-16, but a session stored before that rule may hold one that is not; encodeURIComponent would throw on it. */
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "g");

const view = (entry: Entry | null, id: string, config: Config): SessionView | null => entry && viewOf(id, entry, config.budgetMicros);
const id = z.object({ id: s.sessionId });
const cleared = z.object({ cleared: z.number().meta({ description: "sessions cleared by this call" }) });
/** Stats rows carry a session's usage as its last report to the registry said it (src/session/registry.ts `USAGE_REPORT_INTERVAL_MS`). */
const lagging = (what: string) => `${what}, as the session last reported it: may trail the session's own by up to a minute, like the token totals`;
const clearProgress = cleared.extend({
  pending: z.number().meta({ description: "sessions the shards' alarms are still clearing (202 when above 0)" }),
});

export const commands = {
  resolve: op<(input: ResolveInput) => Promise<ResolveResult>>()({
    kind: "resolve",
    summary: "Resolve one gateway request: the session's model and tier, loop escalation, cost and budget, in one call",
    grant: "api",
    args: "object",
    input: z.object(
      {
        sessionId: s.sessionId.optional(),
        headers: z
          .record(z.string(), z.string({ error: "must be a string" }), { error: "must be an object of header names to string values" })
          .optional()
          .meta({
            description: "The gateway request's headers; only the session header and the coding agents' session headers (SESSION_ID_SOURCES) are read.",
          }),
        body: s.chatBody,
        routed: z
          .object(
            {
              model: s.model,
              tier: s.routedTier,
              provider: s.opaqueName
                .optional()
                .meta({ description: "The routed model's provider; default: the model ID's prefix before its first /, else `default`." }),
              deployment: s.opaqueName
                .optional()
                .meta({ description: "Where the gateway would send the call (endpoint, region, key ID); pinned with the model." }),
            },
            { error: "must be an object {model, tier, provider?, deployment?}" },
          )
          .optional()
          .meta({ description: "The router's choice; required when body.model is a routing profile." }),
        failover: z
          .object({ deployment: s.opaqueName }, { error: "must be an object {deployment}" })
          .optional()
          .meta({ description: "The deployment the gateway's call failed on: when it is the pinned one, the pin moves to routed.deployment." }),
        costMicros: s.micros.optional().meta({ description: "This request's cost, when known before the call; added to the session's." }),
        reserveMicros: s.reserveMicros.optional(),
      },
      { error: "must be an object" },
    ),
    output: z.object({
      sessionId: z.string().nullable(),
      source: z.enum(["explicit", "header", "body", "derived"]).nullable(),
      model: z.string(),
      tier: s.tier,
      pinned: z.boolean(),
      userExplicit: z.boolean(),
      strikes: z.number(),
      escalated: z.boolean(),
      requestCount: z.number(),
      sessionCostMicros: z.number(),
      reservedMicros: z.number().meta({ description: "held by the session's open reservations, this one included" }),
      budgetMicros: z.number().nullable().meta({ description: "the session's effective budget; null for none" }),
      reservationId: z
        .string()
        .optional()
        .meta({ description: "present when a reservation was held (reserveMicros given, and the request reached a session): the ID to settle" }),
      downgraded: z.boolean().meta({ description: "graceful mode answered for a tier below the session's to fit the budget; the pin is unchanged" }),
      cacheSticky: z.boolean().meta({ description: "the session keeps its model for its warm prompt cache" }),
      cacheStickyActivated: z
        .object({ provider: z.string(), ttlMs: z.number() })
        .optional()
        .meta({ description: "present on the request that made the session cache-sticky: the provider and its cache TTL" }),
      deployment: z.string().nullable().meta({ description: "the pinned deployment (routed.deployment without a session); null for none" }),
      rebound: z.boolean().meta({ description: "this request's failover moved the deployment pin" }),
      cacheKey: z.string().nullable().meta({ description: "the session's prompt-cache key, for OpenAI prompt_cache_key; null without a session" }),
    }),
    errors: ["session_budget_exceeded", "session_concurrency_limited", "session_rate_limited"],
    http: {
      method: "POST",
      path: "/v1/resolve",
      headers: (result: ResolveResult) => {
        const headers: Record<string, string> = { "x-session-pinned": String(result.pinned) };
        const activated = result.cacheStickyActivated;
        // Percent-encoded: a provider is the prefix of any model name, and a header value takes no control or non-Latin-1 character.
        if (activated)
          headers["x-session-cache-sticky"] =
            `activated;provider=${encodeURIComponent(activated.provider.replace(LONE_SURROGATES, "\uFFFD"))};ttl=${Math.ceil(activated.ttlMs / 1000)}s`;
        return headers;
      },
      headerDocs: {
        "x-session-pinned": '"true" when the session existed before this request, so its pin applied; else "false"',
        "x-session-cache-sticky": '"activated;provider=P;ttl=Ns" on the request that made the session cache-sticky',
      },
    },
  }),

  deriveSessionId: op<(firstUserMessage: string) => Promise<string>>()({
    kind: "local",
    summary: "The reference session ID of a conversation: lowercase hex SHA-256 of the first user message",
    grant: "api",
    args: ["firstUserMessage"],
    input: z.object({ firstUserMessage: s.message }),
    output: z.string(),
    run: ({ firstUserMessage }: { firstUserMessage: string }) => deriveSessionId(firstUserMessage),
    http: { method: "POST", path: "/v1/session-id", resultKey: "sessionId" },
  }),

  hashRequestContent: op<(content: string, toolNames?: string[]) => Promise<string>>()({
    kind: "local",
    summary: "The reference loop hash of one request: normalised content plus sorted tool names",
    grant: "api",
    args: ["content", "toolNames"],
    input: z.object({ content: s.message, toolNames: s.toolNames.default([]) }),
    output: z.string(),
    run: ({ content, toolNames }: { content: string; toolNames: string[] }) => hashRequestContent(content, toolNames),
    http: { method: "POST", path: "/v1/hash", resultKey: "hash" },
  }),

  getSession: op<(id: string) => Promise<SessionView | null>>()({
    kind: "session",
    summary: "Read a session",
    grant: "api",
    args: ["id"],
    input: id,
    output: s.sessionView,
    rule: rules.getSession,
    present: view,
    http: { method: "GET", path: "/v1/sessions/{id}" },
  }),

  setSession: op<(id: string, model: string, tier: Tier, userExplicit?: boolean) => Promise<SessionView>>()({
    kind: "session",
    summary: "Create or update a session (reference SetSession: model and tier move only with a new model)",
    grant: "api",
    args: ["id", "model", "tier", "userExplicit"],
    input: id.extend({ model: s.model, tier: s.tier, userExplicit: z.boolean({ error: "must be a boolean" }).default(false) }),
    output: s.sessionView,
    rule: rules.setSession,
    present: view,
    http: { method: "PUT", path: "/v1/sessions/{id}", anyId: true },
  }),

  touchSession: op<(id: string) => Promise<SessionView | null>>()({
    kind: "session",
    summary: "Mark a session used: its idle timer restarts and requestCount grows",
    grant: "api",
    args: ["id"],
    input: id,
    output: s.sessionView,
    rule: rules.touchSession,
    present: view,
    http: { method: "POST", path: "/v1/sessions/{id}/touch" },
  }),

  recordRequestHash: op<(id: string, hash: string) => Promise<number>>()({
    kind: "session",
    summary: "Record a request hash; answers the session's strikes (0 over RPC for no live session, as the reference)",
    grant: "api",
    args: ["id", "hash"],
    input: id.extend({ hash: s.hash }),
    output: z.number(),
    rule: rules.recordRequestHash,
    present: (n: number | null) => n,
    unknown: 0,
    http: { method: "POST", path: "/v1/sessions/{id}/hashes", resultKey: "strikes" },
  }),

  escalateSession: op<(id: string) => Promise<SessionView | null>>()({
    kind: "session",
    summary: "Move a session one tier up, unless the user pinned its model",
    grant: "api",
    args: ["id"],
    input: id,
    output: s.sessionView,
    rule: rules.escalateSession,
    present: view,
    http: { method: "POST", path: "/v1/sessions/{id}/escalate" },
  }),

  addSessionCost: op<(id: string, micros: number, usage?: Usage) => Promise<SessionCost | null>>()({
    kind: "session",
    summary: "Add to a session's cost, in integer micro-USD, and with usage to its input-token totals",
    grant: "api",
    args: ["id", "micros", "usage"],
    input: id.extend({ micros: s.micros, usage: s.usage.optional() }),
    output: s.sessionCost,
    rule: rules.addSessionCost,
    present: (cost: SessionCost | null) => cost,
    http: { method: "POST", path: "/v1/sessions/{id}/cost" },
  }),

  settle: op<(id: string, reservationId: string, costMicros: number, usage?: Usage) => Promise<SettleResult | null>>()({
    kind: "session",
    summary: "Settle a reservation at its actual cost: releases it and adds the cost (and usage's input tokens); a repeat changes nothing",
    grant: "api",
    args: ["id", "reservationId", "costMicros", "usage"],
    input: id.extend({ reservationId: s.reservationId, costMicros: s.micros, usage: s.usage.optional() }),
    output: s.sessionCost.extend({ reservedMicros: z.number() }),
    rule: rules.settle,
    present: (result: SettleResult | null) => result,
    errors: ["reservation_not_found"],
    http: { method: "POST", path: "/v1/sessions/{id}/settle" },
  }),

  setBudget: op<(id: string, budgetMicros: number | null) => Promise<SessionView | null>>()({
    kind: "session",
    summary: "Set a session's own budget; null returns it to SESSION_BUDGET_MICROS",
    grant: "api",
    args: ["id", "budgetMicros"],
    input: id.extend({
      budgetMicros: s.micros.nullable().meta({ description: "Integer micro-USD, or null for SESSION_BUDGET_MICROS." }),
    }),
    output: s.sessionView,
    rule: rules.setBudget,
    present: view,
    http: { method: "PUT", path: "/v1/sessions/{id}/budget" },
  }),

  getSessionCost: op<(id: string) => Promise<SessionCost | null>>()({
    kind: "session",
    summary: "A session's cost",
    grant: "api",
    args: ["id"],
    input: id,
    output: s.sessionCost,
    rule: rules.getSessionCost,
    present: (cost: SessionCost | null) => cost,
    http: { method: "GET", path: "/v1/sessions/{id}/cost" },
  }),

  getSessionCostUSD: op<(id: string) => Promise<number>>()({
    kind: "session",
    summary: "A session's cost in USD, 0 for no live session (reference GetSessionCostUSD)",
    grant: "api",
    args: ["id"],
    input: id,
    output: z.number(),
    rule: rules.getSessionCost,
    present: (cost: SessionCost | null) => cost && cost.costUSD,
    unknown: 0,
  }),

  clearSession: op<(id: string) => Promise<void>>()({
    kind: "session",
    summary: "Delete a session (also its registry row)",
    grant: "api",
    args: ["id"],
    input: id,
    output: z.null(),
    rule: rules.clearSession,
    present: () => undefined,
    http: { method: "DELETE", path: "/v1/sessions/{id}", responses: { 204: null }, anyId: true },
  }),

  pauseSession: op<(id: string) => Promise<SessionView | null>>()({
    kind: "session",
    summary: "Pause a session: resolve answers 423 session_paused until it is resumed; settle, cost and reads go on",
    grant: "admin",
    args: ["id"],
    input: id,
    output: s.sessionView,
    rule: rules.pauseSession,
    present: view,
    http: { method: "POST", path: "/v1/sessions/{id}/pause" },
  }),

  resumeSession: op<(id: string) => Promise<SessionView | null>>()({
    kind: "session",
    summary: "Resume a paused session",
    grant: "admin",
    args: ["id"],
    input: id,
    output: s.sessionView,
    rule: rules.resumeSession,
    present: view,
    http: { method: "POST", path: "/v1/sessions/{id}/resume" },
  }),

  pinSession: op<(id: string, model: string, tier: Tier) => Promise<SessionView | null>>()({
    kind: "session",
    summary: "Force a session's model and tier; resolve, setSession and escalation keep them until the pin is lifted",
    grant: "admin",
    args: ["id", "model", "tier"],
    input: id.extend({ model: s.model, tier: s.tier }),
    output: s.sessionView,
    rule: rules.pinSession,
    present: view,
    http: { method: "PUT", path: "/v1/sessions/{id}/pin" },
  }),

  unpinSession: op<(id: string) => Promise<SessionView | null>>()({
    kind: "session",
    summary: "Lift an operator's pin: routing and escalation move the session again",
    grant: "admin",
    args: ["id"],
    input: id,
    output: s.sessionView,
    rule: rules.unpinSession,
    present: view,
    http: { method: "DELETE", path: "/v1/sessions/{id}/pin" },
  }),

  getEvents: op<(id: string, after?: number) => Promise<{ events: JournalEvent[] }>>()({
    kind: "journal",
    summary: `A session's journal: its last ${JOURNAL_LIMIT} events, oldest first, after the cursor \`after\` (a seq)`,
    grant: "api",
    args: ["id", "after"],
    input: id.extend({ after: s.seqCursor }),
    output: z.object({ events: z.array(s.journalEvent) }),
    http: { method: "GET", path: "/v1/sessions/{id}/events", anyId: true },
  }),

  liveTicket: op<(id: string) => Promise<{ ticket: string; expiresAt: number }>>()({
    kind: "journal",
    summary: "A ticket for one browser connection to the session's live feed (GET /v1/sessions/{id}/live?ticket=): single use, valid 60 s",
    grant: "api",
    args: ["id"],
    input: id,
    output: z.object({ ticket: z.string(), expiresAt: z.number().meta({ description: "unix ms" }) }),
    http: { method: "POST", path: "/v1/sessions/{id}/live-ticket", anyId: true },
  }),

  getStats: op<(options?: { limit?: number; cursor?: string }) => Promise<Stats>>()({
    kind: "admin",
    summary: "Live sessions across every tenant, a page at a time, with totals by model and tier (reference GetStats)",
    grant: "admin",
    args: "object",
    input: z.object(
      {
        limit: z
          .int({ error: `must be an integer from 1 to ${MAX_STATS_LIMIT}` })
          .min(1, { error: `must be an integer from 1 to ${MAX_STATS_LIMIT}` })
          .max(MAX_STATS_LIMIT, { error: `must be an integer from 1 to ${MAX_STATS_LIMIT}` })
          .default(DEFAULT_STATS_LIMIT),
        cursor: z.string({ error: "must be a string" }).optional().meta({ description: "nextCursor of the previous page" }),
      },
      { error: "must be an object { limit?, cursor? }" },
    ),
    output: z.object({
      count: z.number(),
      sessions: z.array(
        z.object({
          id: z.string().meta({ description: "the first 8 code points of the session ID, plus ... when longer (reference GetStats)" }),
          sessionId: z.string().meta({ description: "the session ID in full, without the tenant: what the per-session routes take" }),
          tenant: z.string().optional().meta({ description: "the namespace of a tenant-scoped session, in full" }),
          model: z.string(),
          tier: s.tier,
          age: z.number().meta({ description: "whole seconds since createdAt" }),
          sessionCostMicros: z.number().meta({ description: lagging("the session's cost in micro-USD") }),
          strikes: z.number().meta({ description: lagging("the session's loop-detection strikes") }),
          requestCount: z.number().meta({ description: lagging("the session's requestCount") }),
          paused: z.boolean().meta({ description: "whether an operator has paused the session: reported with the change itself, not held back like usage" }),
        }),
      ),
      byModel: z.record(z.string(), z.number()),
      byTier: z.record(z.string(), z.number()),
      cache: z
        .object({
          inputTokens: z.number(),
          cachedInputTokens: z.number(),
          hitRatio: z.number().nullable().meta({ description: "cachedInputTokens / inputTokens; null when inputTokens is 0" }),
        })
        .meta({
          description:
            "input tokens reported with settle and cost, summed over the live sessions; may trail the sessions' own totals (docs/http-api.md, Cache accounting)",
        }),
      spendMicros: z.number().meta({
        description:
          "sessionCostMicros summed over the live sessions; like each row's cost, may trail the sessions' own by up to a minute (docs/http-api.md, Stats and clear-all)",
      }),
      nextCursor: z.string().optional(),
    }),
    http: { method: "GET", path: "/v1/stats" },
  }),

  clearAll: op<() => Promise<ClearProgress>>()({
    kind: "admin",
    summary: "Delete every session of every tenant; 202 while the shards' alarms finish the rest",
    grant: "admin",
    args: [],
    input: z.object({}, { error: "must be an object" }),
    output: clearProgress,
    http: {
      method: "DELETE",
      path: "/v1/sessions",
      status: (p: ClearProgress) => (p.pending > 0 ? 202 : 200),
      // 200 when done: `{ cleared }`; 202 adds what is pending.
      body: (p: ClearProgress) => (p.pending > 0 ? p : { cleared: p.cleared }),
      read: (body: { cleared: number; pending?: number }) => ({ pending: 0, ...body }),
      responses: { 200: cleared, 202: clearProgress },
    },
  }),
} satisfies Record<string, Command>;

export type Commands = typeof commands;
export type CommandName = keyof Commands;
export type SessionCommandName = { [K in CommandName]: Commands[K] extends { kind: "session" } ? K : never }[CommandName];
export type JournalCommandName = { [K in CommandName]: Commands[K] extends { kind: "journal" } ? K : never }[CommandName];

/** Each operation's public signature, as the table states it. */
export type Api = { [K in CommandName]: NonNullable<Commands[K]["signature"]> };
/** The operations a grant allows: the admin grant allows every one. */
export type ApiFor<G extends Grant> = G extends "admin" ? Api : { [K in CommandName as Commands[K]["grant"] extends G ? K : never]: Api[K] };

export const commandNames = Object.keys(commands) as CommandName[];

/** An entry, seen through the table's common shape. */
export function commandOf(name: CommandName): Command {
  return commands[name];
}

/** The input fields a request carries in its query or body: all but the session ID, which is the path's. */
export function requestFields(name: CommandName): string[] {
  return Object.keys(commands[name].input.shape).filter((field) => field !== "id");
}

export function isSessionCommand(name: string): name is SessionCommandName {
  return Object.hasOwn(commands, name) && commands[name as CommandName].kind === "session";
}

/**
 * One step of a per-session command (or resolve) on a stored entry, as both back
 * ends run it: the command's rule over the live entry, which is the stored one
 * unless it has expired; a spend that reaches a budget threshold marks it.
 */
export function stepOf(
  name: SessionCommandName | "resolve",
  stored: Entry | undefined,
  input: unknown,
  now: number,
  config: Config,
): { live: Entry | undefined; step: Step<unknown> } {
  const rule = (name === "resolve" ? rules.resolve : commands[name].rule) as Rule<unknown, unknown>;
  const live = rules.liveEntry(stored, now, config.timeoutMs);
  const step = rule(live, input, { now, config, newKey: randomKey });
  if (step.next === undefined || step.next === stored) return { live, step };
  const next = markThresholds(step.next, budgetOf(step.next, config.budgetMicros));
  return { live, step: next === step.next ? step : { next, result: step.result } };
}

/** The journal's events for a step whose effects left `next` (undefined: the session ended). */
export function journalOf(
  name: SessionCommandName | "resolve",
  actor: Actor | undefined,
  stored: Entry | undefined,
  live: Entry | undefined,
  next: Entry | undefined,
  result: unknown,
  input: unknown,
  config: Config,
): EventDraft[] {
  if (next === stored) return [];
  const budgetMicros = next === undefined ? undefined : budgetOf(next, config.budgetMicros);
  if (name !== "resolve") return eventsOf(stored, live, next, { name, actor, budgetMicros });
  const decision = result as ResolveDecision;
  const explicit = (input as { choice: { kind: string } }).choice.kind === "explicit";
  return eventsOf(stored, live, next, {
    name,
    budgetMicros,
    decision: { rebound: decision.rebound, explicit, cacheStickyActivated: decision.cacheStickyActivated },
  });
}

/** 96 random bits, base64url, after a prefix that says what the key is: unguessable, and unique for a session's life. */
function randomKey(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return (
    prefix +
    btoa(String.fromCharCode(...bytes))
      .replaceAll("+", "-")
      .replaceAll("/", "_")
  );
}

/** Defines each named operation on `proto` as a method that calls `impl(this, name, args)`: how the facade and the RPC entrypoints get one method per table entry. */
export function defineOperations<T>(proto: T, names: readonly CommandName[], impl: (self: T, name: CommandName, args: unknown[]) => unknown): void {
  for (const name of names) {
    Object.defineProperty(proto, name, {
      value(this: T, ...args: unknown[]) {
        return impl(this, name, args);
      },
      writable: true,
      configurable: true,
    });
  }
}
