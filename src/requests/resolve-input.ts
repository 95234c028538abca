/**
 * Turns a validated resolve input (HTTP body or RPC argument, checked by the
 * schema in src/schemas.ts) into a plan: which session, and the request the
 * session object will decide on. All hashing happens here, in the caller, so
 * the object's step stays synchronous.
 */
import type { Config } from "../session/config";
import { invalidRequest } from "../session/errors";
import { deriveSessionId, getSessionId, hashRequestContent } from "../session/hashing";
import type { ResolveDecision, ResolveRequest } from "../session/rules";
import type { ReserveMicros } from "../session/budget";
import type { RoutedTier } from "../session/types";
import { model } from "../schemas";
import { validateSessionId } from "../session/validate";
import { isLarge } from "../session/affinity";
import { firstUserText, lastAssistantToolNames, lastUserText, requestSize } from "./messages";
import { deriveUserScopedSessionId, userScope, type UserScope } from "./user-scope";
import { findSourceSessionId, sourceSessionId } from "./session-sources";

/** What a caller sends to resolve: the gateway's request and the router's choice. */
export interface ResolveInput {
  headers?: Record<string, string>;
  sessionId?: string;
  body: unknown;
  routed?: { model: string; tier: string; provider?: string; deployment?: string };
  costMicros?: number;
  reserveMicros?: number | Record<string, number>;
  failover?: { deployment: string };
}

/** A resolve input once the schema has checked it. */
export interface ParsedResolveInput {
  headers?: Record<string, string> | undefined;
  sessionId?: string | undefined;
  body: { model: string; messages: Record<string, unknown>[] } & Record<string, unknown>;
  routed?: { model: string; tier: RoutedTier; provider?: string | undefined; deployment?: string | undefined } | undefined;
  costMicros?: number | undefined;
  reserveMicros?: ReserveMicros | undefined;
  failover?: { deployment: string } | undefined;
}

/** `body` and `header`: an ID a coding agent sent (SESSION_ID_SOURCES); `header` also for SESSION_HEADER. */
export type SessionSource = "explicit" | "header" | "body" | "derived";

export interface ResolveResult extends Omit<ResolveDecision, "cacheKey"> {
  sessionId: string | null;
  source: SessionSource | null;
  /** The session's prompt-cache key; null without a session. */
  cacheKey: string | null;
}

export type ResolvePlan = { sessionId: string; source: SessionSource; request: ResolveRequest } | { sessionId: null; result: ResolveResult };

/**
 * An explicit pin's model is the body's own `model`, which must be a valid model name
 * (the `model` schema). Checked here, not in the body's schema, because a routing
 * profile in `body.model` is not a model.
 */
function explicitModel(name: string): string {
  const parsed = model.safeParse(name);
  if (!parsed.success) throw invalidRequest("body.model", parsed.error.issues[0]!.message);
  return name;
}

export async function planResolve(input: ParsedResolveInput, config: Config): Promise<ResolvePlan> {
  const { headers, body, routed, costMicros, reserveMicros, failover } = input;
  if (failover !== undefined && routed?.deployment === undefined) {
    throw invalidRequest("routed.deployment", "is required with failover: it is the deployment the pin moves to");
  }
  const explicitId = input.sessionId;
  const users = userScope(body);
  const profile = config.routingProfiles.includes(body.model);
  if (profile && routed === undefined) throw invalidRequest("routed", "is required when body.model is a routing profile");

  const choice: ResolveRequest["choice"] = profile
    ? { kind: "profile", model: routed!.model, tier: routed!.tier }
    : { kind: "explicit", model: explicitModel(body.model) };

  let sessionId: string | undefined;
  let source: SessionSource | undefined;
  if (explicitId !== undefined) {
    [sessionId, source] = [explicitId, "explicit"];
  } else if (getSessionId(headers, config.sessionHeader) !== "") {
    [sessionId, source] = [validateSessionId(getSessionId(headers, config.sessionHeader)), "header"];
  } else {
    [sessionId, source] = await agentSessionId(config, headers, body, users);
  }
  if (sessionId === undefined) {
    const first = firstUserText(body.messages);
    // An empty first message (say, image-only) would put every such conversation in one session.
    // A body that names its end user gets a session of that user's own, so no one else can ride it.
    if (first) [sessionId, source] = [users.length > 0 ? await deriveUserScopedSessionId(users, first) : await deriveSessionId(first), "derived"];
  }

  if (sessionId === undefined || source === undefined || !config.enabled) {
    return {
      sessionId: null,
      result: {
        sessionId: null,
        source: null,
        model: choice.model,
        tier: choice.kind === "profile" ? choice.tier : "",
        pinned: false,
        userExplicit: choice.kind === "explicit",
        strikes: 0,
        escalated: false,
        requestCount: 0,
        sessionCostMicros: 0,
        reservedMicros: 0,
        budgetMicros: null,
        downgraded: false,
        cacheSticky: false,
        deployment: routed?.deployment ?? null,
        rebound: false,
        cacheKey: null,
      },
    };
  }

  const content = lastUserText(body.messages);
  const hash = content === undefined ? undefined : await hashRequestContent(content, lastAssistantToolNames(body.messages));
  const request: ResolveRequest = { choice, hash, costMicros, large: isLarge(requestSize(body)) };
  if (routed?.provider !== undefined) request.provider = routed.provider;
  if (routed?.deployment !== undefined) request.deployment = routed.deployment;
  if (failover !== undefined) request.failover = failover.deployment;
  if (reserveMicros !== undefined) request.reserveMicros = reserveMicros;
  return { sessionId, source, request };
}

/**
 * A session ID the client's coding agent sent (SESSION_ID_SOURCES). It comes from the
 * end user's client, so it is scoped by the user the body names, as a derived one is.
 */
async function agentSessionId(
  config: Config,
  headers: Record<string, string> | undefined,
  body: Record<string, unknown>,
  users: UserScope,
): Promise<[string, SessionSource] | [undefined, undefined]> {
  const found = findSourceSessionId(config.sessionIdSources, headers, body);
  return found === undefined ? [undefined, undefined] : [await sourceSessionId(found, users), found.foundIn];
}
