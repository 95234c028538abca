/**
 * Typed HTTP client for edge-session. One method per route; errors become
 * `SessionApiError` with the HTTP status and the service's error code.
 *
 *   const sessions = createSessionClient({ baseUrl: "https://sessions.example.com", token });
 *   const decision = await sessions.resolve({ body, routed: { model: "kimi-k2.5", tier: "MEDIUM" } });
 *
 * Gateway Workers on a service binding use the RPC type instead:
 *   import type { SessionService } from "edge-session/rpc";
 */
import type { ResolveInput, ResolveResult } from "./gateway/resolve-input";
import type { ErrorCode } from "./session/errors";
import type { Stats } from "./session/stats";
import type { SessionCost, SessionView, Tier } from "./session/types";

export type { ResolveInput, ResolveResult, SessionCost, SessionView, Stats, Tier, ErrorCode };
export type { SessionService } from "./rpc";

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

export interface ClearAllResult {
  cleared: number;
  /** Present when the shards' alarms are finishing the clear (HTTP 202). */
  pending?: number;
}

export function createSessionClient(options: SessionClientOptions) {
  const base = options.baseUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;

  async function request<T>(method: string, path: string, body?: unknown, admin = false): Promise<T> {
    const token = admin ? options.adminToken : options.token;
    if (admin && !token) throw new SessionApiError(0, "unauthorized", "adminToken is required for this call");
    const res = await doFetch(base + path, {
      method,
      headers: { ...options.headers, authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const error = (parsed as { error?: { code?: ErrorCode; message?: string } } | undefined)?.error;
      const { code, message, ...details } = (error ?? {}) as Record<string, unknown>;
      throw new SessionApiError(res.status, (code as ErrorCode) ?? "http_error", (message as string) ?? `HTTP ${res.status}`, details);
    }
    return parsed as T;
  }

  const session = (id: string, suffix = "") => {
    // An empty ID would address the collection route (/v1/sessions/) instead.
    if (id === "") throw new SessionApiError(400, "invalid_session_id", "session ID must be a non-empty string");
    return `/v1/sessions/${encodeURIComponent(id)}${suffix}`;
  };

  return {
    health: () => request<{ ok: true }>("GET", "/health"),
    resolve: (input: ResolveInput) => request<ResolveResult>("POST", "/v1/resolve", input),
    deriveSessionId: async (firstUserMessage: string) =>
      (await request<{ sessionId: string }>("POST", "/v1/session-id", { firstUserMessage })).sessionId,
    hashRequestContent: async (content: string, toolNames?: string[]) =>
      (await request<{ hash: string }>("POST", "/v1/hash", { content, toolNames })).hash,
    /** The session, or null when there is none. */
    getSession: async (id: string): Promise<SessionView | null> => {
      const path = session(id);
      try {
        return await request<SessionView>("GET", path);
      } catch (err) {
        if (err instanceof SessionApiError && err.code === "session_not_found") return null;
        throw err;
      }
    },
    setSession: async (id: string, model: string, tier: Tier, userExplicit = false) =>
      request<SessionView>("PUT", session(id), { model, tier, userExplicit }),
    touchSession: async (id: string) => request<SessionView>("POST", session(id, "/touch")),
    recordRequestHash: async (id: string, hash: string) =>
      (await request<{ strikes: number }>("POST", session(id, "/hashes"), { hash })).strikes,
    escalateSession: async (id: string) => request<SessionView>("POST", session(id, "/escalate")),
    addSessionCost: async (id: string, micros: number) => request<SessionCost>("POST", session(id, "/cost"), { micros }),
    getSessionCost: async (id: string) => request<SessionCost>("GET", session(id, "/cost")),
    clearSession: async (id: string) => request<void>("DELETE", session(id)),
    getStats: (params: { limit?: number; cursor?: string } = {}) => {
      const q = new URLSearchParams();
      if (params.limit !== undefined) q.set("limit", String(params.limit));
      if (params.cursor !== undefined) q.set("cursor", params.cursor);
      return request<Stats>("GET", `/v1/stats${q.size ? `?${q}` : ""}`, undefined, true);
    },
    clearAll: () => request<ClearAllResult>("DELETE", "/v1/sessions", undefined, true),
  };
}

export type SessionClient = ReturnType<typeof createSessionClient>;
