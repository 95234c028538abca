/**
 * Typed HTTP client for edge-session, driven by the command table: one method
 * per operation with an HTTP route, named and typed as on the facade and over
 * RPC. A per-session operation answers what RPC answers for no live session
 * (null, or the reference's 0) instead of throwing; every other error becomes
 * `SessionApiError` with the HTTP status and the service's error code.
 *
 *   const sessions = createSessionClient({ baseUrl: "https://sessions.example.com", token });
 *   const decision = await sessions.resolve({ body, routed: { model: "kimi-k2.5", tier: "MEDIUM" } });
 */
import { commandOf, commands, type Api, type CommandName, type Commands } from "./commands";
import type { ErrorCode } from "./session/errors";
import { sessionIdProblem } from "./session/validate";

export type { ResolveInput, ResolveResult } from "./requests/resolve-input";
export type { ClearProgress, Stats } from "./session/stats";
export type { SessionCost, SessionView, Tier } from "./session/types";
export type { ErrorCode };

export class SessionApiError extends Error {
  override readonly name = "SessionApiError";
  constructor(
    readonly status: number,
    readonly code: ErrorCode | "http_error",
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface SessionClientOptions {
  /** Where the session service is served, e.g. http://localhost:8787 */
  baseUrl: string;
  /** SESSION_API_TOKEN */
  token: string;
  /** SESSION_ADMIN_TOKEN, for getStats and clearAll */
  adminToken?: string;
  /** A fetch to use instead of the global one (tests, service bindings). */
  fetch?: typeof fetch;
  /** Sent with every call, e.g. the tenant header when SESSION_NAMESPACE_HEADER is set: { "x-tenant-id": "acme" }. */
  headers?: Record<string, string>;
}

/** The operations served over HTTP. */
type HttpName = { [K in CommandName]: Commands[K] extends { http: object } ? K : never }[CommandName];

export type SessionClient = Pick<Api, HttpName> & { health(): Promise<{ ok: true }> };

export function createSessionClient(options: SessionClientOptions): SessionClient {
  const base = options.baseUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;

  async function request(method: string, path: string, body: unknown, admin: boolean): Promise<{ status: number; json: unknown }> {
    const token = admin ? options.adminToken : options.token;
    if (admin && !token) throw new SessionApiError(0, "unauthorized", "adminToken is required for this call");
    const res = await doFetch(base + path, {
      method,
      headers: { ...options.headers, authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const error = (parsed as { error?: Record<string, unknown> } | undefined)?.error ?? {};
      const { code, message, ...details } = error;
      throw new SessionApiError(res.status, (code as ErrorCode) ?? "http_error", typeof message === "string" ? message : `HTTP ${res.status}`, details);
    }
    return { status: res.status, json: parsed };
  }

  async function call(name: HttpName, args: unknown[]): Promise<unknown> {
    const command = commandOf(name);
    const http = command.http!;
    const input: Record<string, unknown> =
      command.args === "object" ? { ...(args[0] as object) } : Object.fromEntries(command.args.map((field, i) => [field, args[i]]));
    let path = http.path;
    if (path.includes("{id}")) {
      const id = input.id;
      // Checked here, not only by the service: URL parsing folds "." and ".." away and an
      // empty segment addresses the collection, so such an ID would reach another route.
      const problem = typeof id === "string" ? sessionIdProblem(id) : "session ID must be a non-empty string";
      if (problem !== undefined) throw new SessionApiError(400, "invalid_session_id", problem);
      path = path.replace("{id}", encodeURIComponent(id as string));
      delete input.id;
    }
    let body: unknown;
    if (http.method === "GET" || http.method === "DELETE") {
      const query = new URLSearchParams();
      for (const [field, value] of Object.entries(input)) if (value !== undefined) query.set(field, String(value));
      if (query.size > 0) path += `?${query}`;
    } else {
      body = input;
    }
    try {
      const { status, json } = await request(http.method, path, body, command.grant === "admin");
      if (status === 204) return undefined;
      if (http.read) return http.read(json as never);
      return http.resultKey === undefined ? json : (json as Record<string, unknown>)[http.resultKey];
    } catch (err) {
      if (err instanceof SessionApiError && err.code === "session_not_found" && command.kind === "session") {
        return ("unknown" in command ? command.unknown : undefined) ?? null;
      }
      throw err;
    }
  }

  const client: Record<string, unknown> = {
    health: async () => (await request("GET", "/health", undefined, false)).json,
  };
  for (const name of Object.keys(commands) as CommandName[]) {
    if (commandOf(name).http !== undefined) client[name] = (...args: unknown[]) => call(name as HttpName, args);
  }
  return client as SessionClient;
}
