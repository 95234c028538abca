/**
 * The HTTP front door, driven by the command table: each operation with an
 * HTTP binding becomes a route whose chain is auth → facade → operation.
 * Validation, scoping and every rule are the facade's; errors are mapped in
 * one place (src/http/errors.ts).
 */
import { AutoRouter, json, type IRequest, type RequestHandler } from "itty-router";
import { commandOf, commands, requestFields, type CommandName, type Grant, type HttpMethod } from "../commands";
import type { Env } from "../env";
import { Sessions } from "../facade";
import { objectsBackend } from "../objects/backend";
import { openApiDocument } from "../openapi";
import { configFor } from "../session/config";
import { SessionError, invalidRequest } from "../session/errors";
import { requireAdminToken, requireApiToken } from "./auth";
import { readJsonObject, RESOLVE_BODY_LIMIT } from "./body";
import { mountDashboard } from "./dashboard";
import { errorResponse, mapError } from "./errors";
import { liveFeed } from "./live";
import type { Actor } from "../session/journal";

/** A request on its way through a route's chain; the facade middleware sets `sessions`. */
type SessionRequest = IRequest & { sessions: Sessions; actor: Actor };
type Args = [Env, ExecutionContext];

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
    throw new SessionError("invalid_session_id", 'session ID in the path is empty (URL parsing removes a "." or %2e segment)');
  }
  throw new SessionError("not_found", "no such route");
}

/** No answer is a shared cache's to keep: sessions, stats and errors are per caller and change. */
function noStore(response: Response): Response {
  response.headers.set("cache-control", "no-store");
  return response;
}

/**
 * The route's token, before anything reads configuration: an unauthenticated
 * caller gets 401 even while a var is invalid, and never sees a configuration value.
 */
const withGrant: Record<Grant, RequestHandler<SessionRequest, Args>> = {
  api: async (request, env) => {
    request.actor = await requireApiToken(request, env);
  },
  admin: async (request, env) => {
    request.actor = await requireAdminToken(request, env);
  },
};

/** The facade for this request, scoped to the tenant header when SESSION_NAMESPACE_HEADER is set. */
function withSessions(request: SessionRequest, env: Env): void {
  const config = configFor(env);
  const sessions = new Sessions(objectsBackend(env), config, undefined, request.actor);
  const namespace = config.namespaceHeader === undefined ? null : request.headers.get(config.namespaceHeader);
  request.sessions = namespace === null ? sessions : sessions.forNamespace(namespace);
}

function sessionIdParam(request: IRequest): string {
  try {
    return decodeURIComponent(request.params.id ?? "");
  } catch {
    throw new SessionError("invalid_session_id", "session ID in the path is not valid percent-encoding");
  }
}

/** Query parameters as input fields: each at most once; numeric fields of the schema read as integers. */
function queryInput(request: IRequest, name: CommandName): Record<string, unknown> {
  const shape = commands[name].input.shape as Record<string, { def?: { type?: string; innerType?: { def?: { type?: string } } } }>;
  const input: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(request.query)) {
    // The session ID is the path's; a query parameter of that name is as unknown as any other.
    if (!Object.hasOwn(shape, field) || field === "id") continue;
    if (Array.isArray(value)) throw invalidRequest(field, "must be given once");
    const def = shape[field]!.def;
    const numeric = def?.type === "number" || def?.innerType?.def?.type === "number";
    if (numeric && !/^\d{1,16}$/.test(value ?? "")) throw invalidRequest(field, "must be a positive integer");
    input[field] = numeric ? Number(value) : value;
  }
  return input;
}

/**
 * The route's handler: the operation's input from the path's session ID, the query
 * (GET, DELETE) or the JSON body, run through the facade; the answer as the table says.
 * What the route reads is fixed per route, so it is worked out once, here.
 */
function operation(name: CommandName): RequestHandler<SessionRequest, Args> {
  const command = commandOf(name);
  const http = command.http!;
  const fromQuery = http.method === "GET" || http.method === "DELETE";
  const readsBody = !fromQuery && requestFields(name).length > 0;
  const bodyLimit = name === "resolve" ? RESOLVE_BODY_LIMIT : undefined;
  const idInPath = command.args !== "object" && http.path.includes("{id}");
  return async (request) => {
    const fields: Record<string, unknown> = fromQuery ? queryInput(request, name) : readsBody ? await readJsonObject(request, bodyLimit) : {};
    const input = idInPath ? { ...fields, id: sessionIdParam(request) } : fields;
    const result = await request.sessions.invoke(name, input);
    if (result === null && command.kind === "session") throw new SessionError("session_not_found", "no live session with this ID");
    if (result === undefined) return new Response(null, { status: 204 });
    const status = http.status?.(result as never) ?? 200;
    const headers = http.headers?.(result as never);
    const body = http.body ? http.body(result as never) : http.resultKey === undefined ? result : { [http.resultKey]: result };
    return json(body, { status, headers });
  };
}

export const router = AutoRouter<IRequest, Args>({
  before: [rejectAmbiguousPath],
  catch: mapError,
  finally: [noStore],
  missing: () => errorResponse({ code: "not_found", message: "no such route" }),
});

/** Methods each path answers; any other method on it is 405. */
const methodsByPath = new Map<string, HttpMethod[]>([
  ["/health", ["GET"]],
  ["/openapi.json", ["GET"]],
]);
router.get("/health", () => json({ ok: true }));
methodsByPath.set("/v1/sessions/:id/live", ["GET"]);
router.get("/v1/sessions/:id/live", async (request, env, ctx) => {
  // A token goes through the same chain as every route's; a browser's ticket is checked by the session's object.
  const tokened = request.query.ticket === undefined;
  if (tokened) {
    await withGrant.api(request as SessionRequest, env, ctx);
    withSessions(request as SessionRequest, env);
  }
  return liveFeed(request, env, sessionIdParam(request), tokened ? (request as SessionRequest).sessions : undefined);
});
router.get("/openapi.json", () => json(openApiDocument()));
mountDashboard(router);

for (const [name, command] of Object.entries(commands) as [CommandName, (typeof commands)[CommandName]][]) {
  if (!("http" in command) || command.http === undefined) continue;
  const { method, path } = command.http;
  const route = path.replace("{id}", ":id");
  router[method.toLowerCase()]!(route, withGrant[command.grant], withSessions, operation(name));
  methodsByPath.set(route, [...(methodsByPath.get(route) ?? []), method]);
}

for (const [route, methods] of methodsByPath) {
  const allow = methods.join(", ");
  router.all(route, () => errorResponse({ code: "method_not_allowed", message: `use ${allow} on this route` }, { allow }));
}
