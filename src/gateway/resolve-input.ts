/**
 * Turns a raw resolve input (HTTP body or RPC argument) into a validated plan:
 * which session, and the request the session object will decide on. All
 * hashing happens here, in the caller, so the object's step stays synchronous.
 */
import type { Config } from "../session/config";
import { invalidRequest } from "../session/errors";
import { deriveSessionId, getSessionId, hashRequestContent } from "../session/hashing";
import type { ResolveDecision, ResolveRequest } from "../session/operations";
import type { RoutedTier } from "../session/types";
import { validateMicros, validateModel, validateRoutedTier, validateSessionId } from "../session/validate";
import { firstUserText, isObject, lastAssistantToolNames, lastUserText, parseChatBody } from "./messages";
import { deriveUserScopedSessionId, userScope } from "./user-scope";

export interface ResolveInput {
  headers?: Record<string, string>;
  sessionId?: string;
  body: unknown;
  routed?: { model: string; tier: string };
  costMicros?: number;
}

export type SessionSource = "explicit" | "header" | "derived";

export interface ResolveResult extends ResolveDecision {
  sessionId: string | null;
  source: SessionSource | null;
}

export type ResolvePlan =
  | { sessionId: string; source: SessionSource; request: ResolveRequest }
  | { sessionId: null; result: ResolveResult };

function parseHeaders(value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw invalidRequest("headers", "must be an object of header names to string values");
  for (const [name, v] of Object.entries(value)) {
    if (typeof v !== "string") throw invalidRequest(`headers.${name}`, "must be a string");
  }
  return value as Record<string, string>;
}

function parseRouted(value: unknown, required: boolean): { model: string; tier: RoutedTier } | undefined {
  if (value === undefined) {
    if (required) throw invalidRequest("routed", "is required when body.model is a routing profile");
    return undefined;
  }
  if (!isObject(value)) throw invalidRequest("routed", "must be an object {model, tier}");
  return { model: validateModel("routed.model", value.model), tier: validateRoutedTier("routed.tier", value.tier) };
}

export async function planResolve(raw: unknown, config: Config): Promise<ResolvePlan> {
  if (!isObject(raw)) throw invalidRequest("input", "must be an object");
  const headers = parseHeaders(raw.headers);
  const explicitId = raw.sessionId === undefined ? undefined : validateSessionId(raw.sessionId);
  const body = parseChatBody(raw.body);
  const users = userScope(raw.body as Record<string, unknown>);
  const profile = config.routingProfiles.includes(body.model);
  const routed = parseRouted(raw.routed, profile);
  const costMicros = raw.costMicros === undefined ? undefined : validateMicros("costMicros", raw.costMicros);

  const choice: ResolveRequest["choice"] = profile
    ? { kind: "profile", model: routed!.model, tier: routed!.tier }
    : { kind: "explicit", model: validateModel("body.model", body.model) };

  let sessionId: string | undefined;
  let source: SessionSource | undefined;
  if (explicitId !== undefined) {
    [sessionId, source] = [explicitId, "explicit"];
  } else if (getSessionId(headers, config.sessionHeader) !== "") {
    [sessionId, source] = [validateSessionId(getSessionId(headers, config.sessionHeader)), "header"];
  } else {
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
      },
    };
  }

  const content = lastUserText(body.messages);
  const hash = content === undefined ? undefined : await hashRequestContent(content, lastAssistantToolNames(body.messages));
  return { sessionId, source, request: { choice, hash, costMicros } };
}
