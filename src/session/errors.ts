/**
 * Every failure the service reports, as data. The HTTP layer maps a code to a
 * status (src/http/errors.ts); RPC callers receive the code in the error.
 */
export type ErrorCode =
  | "invalid_json"
  | "invalid_request"
  | "invalid_session_id"
  | "invalid_cursor"
  | "payload_too_large"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "session_not_found"
  | "sessions_disabled"
  | "session_budget_exceeded"
  | "config_invalid"
  | "auth_not_configured"
  | "registry_unavailable"
  | "internal_error";

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  [detail: string]: unknown;
}

export class SessionError extends Error {
  override readonly name = "SessionError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  toBody(): ErrorBody {
    return { ...this.details, code: this.code, message: this.message };
  }
}

export function invalidRequest(field: string, problem: string): SessionError {
  return new SessionError("invalid_request", `${field} ${problem}`, { field });
}
