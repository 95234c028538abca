import { json } from "itty-router";
import type { ErrorBody, ErrorCode } from "../session/errors";
import { toSessionError } from "../unexpected";

/** The HTTP status of each error code; the error table in docs/http-api.md mirrors this. */
export const STATUS_OF: Record<ErrorCode, number> = {
  invalid_json: 400,
  invalid_request: 400,
  invalid_session_id: 400,
  invalid_cursor: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  session_not_found: 404,
  reservation_not_found: 404,
  sessions_disabled: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  session_budget_exceeded: 429,
  session_concurrency_limited: 429,
  session_rate_limited: 429,
  session_paused: 423,
  session_pinned: 409,
  invalid_ticket: 401,
  upgrade_required: 426,
  config_invalid: 500,
  internal_error: 500,
  auth_not_configured: 503,
  registry_unavailable: 503,
};

export function errorResponse(error: ErrorBody, headers?: HeadersInit): Response {
  return json({ error }, { status: STATUS_OF[error.code], headers });
}

/** The headers an error answers with, beside its body. */
function headersOf(error: ErrorBody): Record<string, string> | undefined {
  if (error.code === "unauthorized") return { "www-authenticate": 'Bearer realm="edge-session"' };
  if (error.code === "session_rate_limited" && typeof error.retryAfterSeconds === "number") return { "retry-after": String(error.retryAfterSeconds) };
  return undefined;
}

/** The router's one error mapper: known errors become their status; anything else is logged and hidden. */
export function mapError(err: unknown): Response {
  const body = toSessionError(err).toBody();
  return errorResponse(body, headersOf(body));
}
