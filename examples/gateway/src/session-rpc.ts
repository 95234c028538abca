/**
 * The gateway's side of the session service: which request headers it passes
 * on, and what end users are told when a call fails. The service's own error
 * messages stay in the gateway's log; users get the fixed texts below.
 */

/** The session service's default SESSION_HEADER (src/session/hashing.ts, DEFAULT_SESSION_HEADER). */
const DEFAULT_SESSION_HEADER = "x-session-id";
/** An RFC 9110 token, the names `Headers` accepts; anything else would throw on every request. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The gateway's configuration is unusable. The message is for the log only. */
export class GatewayConfigError extends Error {
  override readonly name = "GatewayConfigError";
}

/** SESSION_HEADER, lower-cased, or the service's default; it must name the header the service reads. */
export function sessionHeaderName(configured: unknown): string {
  if (configured === undefined || configured === "") return DEFAULT_SESSION_HEADER;
  if (typeof configured !== "string" || !HEADER_NAME.test(configured)) throw new GatewayConfigError("SESSION_HEADER must be an HTTP header name");
  return configured.toLowerCase();
}

/**
 * The headers coding agents send their own session ID in, which the service reads
 * (SESSION_ID_SOURCES; src/requests/session-sources.ts, SOURCE_HEADERS): Claude
 * Code's, then Codex's spellings.
 */
export const AGENT_SESSION_HEADERS = ["x-claude-code-session-id", "thread-id", "session-id", "session_id", "conversation_id"] as const;

/**
 * The headers resolve reads: the session header and the agents' session headers,
 * those the request has. Everything else (Authorization with the caller's gateway
 * key, Cookie, proxy headers, a forged tenant header) stays in the gateway.
 */
export function sessionHeaders(headers: Headers, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const wanted of [name.toLowerCase(), ...AGENT_SESSION_HEADERS]) {
    const value = headers.get(wanted);
    if (value !== null) out[wanted] = value;
  }
  return out;
}

export interface Failure {
  status: number;
  code: string;
  message: string;
  /** Whole seconds, sent as Retry-After (session_rate_limited). */
  retryAfterSeconds?: number;
}

/** Session-service error codes (docs/http-api.md, "Errors") that end users caused, with what they are told. */
const USER_FAILURES: Record<string, Failure> = {
  session_budget_exceeded: { status: 429, code: "session_budget_exceeded", message: "session budget exceeded" },
  session_concurrency_limited: { status: 429, code: "session_concurrency_limited", message: "too many requests in flight for this session" },
  session_rate_limited: { status: 429, code: "session_rate_limited", message: "session rate limit exceeded" },
  invalid_session_id: { status: 400, code: "invalid_session_id", message: "invalid session ID" },
  invalid_request: { status: 400, code: "invalid_request", message: "invalid request" },
  invalid_json: { status: 400, code: "invalid_request", message: "invalid request" },
  payload_too_large: { status: 413, code: "payload_too_large", message: "request body too large" },
};

/** Any other failure: the service's fault or an outage, nothing the user can fix. */
export const SESSION_UNAVAILABLE: Failure = { status: 502, code: "session_unavailable", message: "session service unavailable" };

/** RPC errors carry the service's code as their own `code` property (docs/rpc.md, "Errors"). */
function codeOf(err: unknown): string | undefined {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

/** session_rate_limited's `details.retryAfterSeconds`, rounded up to whole seconds; undefined when absent or not a positive number. */
function retryAfterOf(err: unknown): number | undefined {
  const details = err instanceof Error ? (err as Error & { details?: unknown }).details : undefined;
  const seconds = typeof details === "object" && details !== null ? (details as { retryAfterSeconds?: unknown }).retryAfterSeconds : undefined;
  return typeof seconds === "number" && Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds) : undefined;
}

/** What the end user is told about a failed session call; never the service's message. */
export function sessionFailure(err: unknown): Failure {
  const code = codeOf(err);
  if (code === undefined || !Object.hasOwn(USER_FAILURES, code)) return SESSION_UNAVAILABLE;
  const failure = USER_FAILURES[code]!;
  const retryAfterSeconds = code === "session_rate_limited" ? retryAfterOf(err) : undefined;
  return retryAfterSeconds === undefined ? failure : { ...failure, retryAfterSeconds };
}
