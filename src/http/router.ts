/**
 * The HTTP front door: parse, validate, authorise, map errors. Every
 * operation is SessionApi's; no handler builds its own error response.
 */
import { AutoRouter, json, type IRequest } from "itty-router";
import type { Env } from "../env";
import { SessionApi } from "../service";
import { configFor } from "../session/config";
import { systemClock } from "../session/types";
import { SessionError, invalidRequest } from "../session/errors";
import { requireAdminToken, requireApiToken } from "./auth";
import { readJsonObject, RESOLVE_BODY_LIMIT } from "./body";
import { errorResponse, mapError } from "./errors";

type Handler = (request: IRequest, api: SessionApi, env: Env) => Promise<Response>;
type Guard = (request: Request, env: Env) => Promise<void>;

/**
 * The route's token first, then config: an unauthenticated caller gets 401 even
 * while a var is invalid, and never sees a configuration value in an error.
 */
function guarded(guard: Guard, handler: Handler) {
  return async (request: IRequest, env: Env) => {
    await guard(request, env);
    const namespaceHeader = configFor(env).namespaceHeader;
    const namespace = namespaceHeader === undefined ? undefined : (request.headers.get(namespaceHeader) ?? undefined);
    const api = new SessionApi(env, systemClock, namespace);
    return handler(request, api, env);
  };
}
const withApiToken = (handler: Handler) => guarded(requireApiToken, handler);
const withAdminToken = (handler: Handler) => guarded(requireAdminToken, handler);

function sessionIdParam(request: IRequest): string {
  try {
    return decodeURIComponent(request.params.id ?? "");
  } catch {
    throw new SessionError("invalid_session_id", "session ID in the path is not valid percent-encoding");
  }
}

/** The session collection's path; the segment after it is the session ID. */
const SESSIONS_PREFIX = "/v1/sessions/";

/**
 * Refuses a path with an empty segment, a trailing slash included. The runtime
 * hands the Worker a URL whose "." and ".." segments (also as %2e) are already
 * folded away, so DELETE /v1/sessions/%2e arrives as /v1/sessions/, which the
 * route patterns (optional trailing slash) would match as clear-all.
 */
function rejectAmbiguousPath(request: IRequest): void {
  const path = new URL(request.url).pathname;
  if (path === "/") return;
  const bad = path
    .split("/")
    .slice(1)
    .findIndex((segment) => segment === "");
  if (bad === -1) return;
  if (path.startsWith(SESSIONS_PREFIX) && bad === 2) {
    throw new SessionError("invalid_session_id", "session ID in the path is empty (URL parsing removes a \".\" or %2e segment)");
  }
  throw new SessionError("not_found", "no such route");
}

/** No answer is a shared cache's to keep: sessions, stats and errors are per caller and change. */
function noStore(response: Response): Response {
  response.headers.set("cache-control", "no-store");
  return response;
}

function found<T>(value: T | null): T {
  if (value === null) throw new SessionError("session_not_found", "no live session with this ID");
  return value;
}

function queryString(request: IRequest, name: string): string | undefined {
  const value = request.query[name];
  if (Array.isArray(value)) throw invalidRequest(name, "must be given once");
  return value;
}

function parseLimit(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,6}$/.test(raw)) throw invalidRequest("limit", "must be a positive integer");
  return Number(raw);
}

/** Methods each path answers; any other method on it is 405. */
type Routes = Record<string, Partial<Record<"GET" | "PUT" | "POST" | "DELETE", ReturnType<typeof guarded> | (() => Response)>>>;

const routes: Routes = {
  "/health": { GET: () => json({ ok: true }) },
  "/v1/session-id": {
    POST: withApiToken(async (req, api) => {
      const body = await readJsonObject(req);
      return json({ sessionId: await api.deriveSessionId(body.firstUserMessage) });
    }),
  },
  "/v1/hash": {
    POST: withApiToken(async (req, api) => {
      const body = await readJsonObject(req);
      return json({ hash: await api.hashRequestContent(body.content, body.toolNames) });
    }),
  },
  "/v1/resolve": {
    POST: withApiToken(async (req, api) => {
      const result = await api.resolve(await readJsonObject(req, RESOLVE_BODY_LIMIT));
      return json(result, { headers: { "x-session-pinned": String(result.pinned) } });
    }),
  },
  "/v1/stats": {
    GET: withAdminToken(async (req, api) =>
      json(await api.getStats({ limit: parseLimit(queryString(req, "limit")), cursor: queryString(req, "cursor") })),
    ),
  },
  "/v1/sessions": {
    DELETE: withAdminToken(async (_req, api) => {
      const progress = await api.clearAll();
      return progress.pending > 0 ? json(progress, { status: 202 }) : json({ cleared: progress.cleared });
    }),
  },
  "/v1/sessions/:id": {
    GET: withApiToken(async (req, api) => json(found(await api.getSession(sessionIdParam(req))))),
    PUT: withApiToken(async (req, api) => {
      const id = sessionIdParam(req);
      const body = await readJsonObject(req);
      return json(await api.setSession(id, body.model, body.tier, body.userExplicit));
    }),
    DELETE: withApiToken(async (req, api) => {
      await api.clearSession(sessionIdParam(req));
      return new Response(null, { status: 204 });
    }),
  },
  "/v1/sessions/:id/touch": {
    POST: withApiToken(async (req, api) => json(found(await api.touchSession(sessionIdParam(req))))),
  },
  "/v1/sessions/:id/hashes": {
    POST: withApiToken(async (req, api) => {
      const id = sessionIdParam(req);
      const body = await readJsonObject(req);
      return json({ strikes: found(await api.recordRequestHash(id, body.hash)) });
    }),
  },
  "/v1/sessions/:id/escalate": {
    POST: withApiToken(async (req, api) => json(found(await api.escalateSession(sessionIdParam(req))))),
  },
  "/v1/sessions/:id/cost": {
    GET: withApiToken(async (req, api) => json(found(await api.getSessionCost(sessionIdParam(req))))),
    POST: withApiToken(async (req, api) => {
      const id = sessionIdParam(req);
      const body = await readJsonObject(req);
      return json(found(await api.addSessionCost(id, body.micros)));
    }),
  },
};

export const router = AutoRouter<IRequest, [Env, ExecutionContext]>({
  before: [rejectAmbiguousPath],
  catch: mapError,
  finally: [noStore],
  missing: () => errorResponse({ code: "not_found", message: "no such route" }),
});

for (const [path, methods] of Object.entries(routes)) {
  for (const [method, handler] of Object.entries(methods)) router[method.toLowerCase()]!(path, handler);
  const allow = Object.keys(methods).join(", ");
  router.all(path, () =>
    errorResponse({ code: "method_not_allowed", message: `use ${allow} on this route` }, { allow }),
  );
}
