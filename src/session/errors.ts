/**
 * Every failure the service reports, as data. The HTTP layer maps a code to a
 * status (src/http/errors.ts); RPC callers receive the error itself, whose
 * `code` and `details` cross Workers RPC as own properties.
 */
export const ERROR_CODES = [
  "invalid_json",
  "invalid_request",
  "invalid_session_id",
  "invalid_cursor",
  "payload_too_large",
  "unauthorized",
  "forbidden",
  "not_found",
  "method_not_allowed",
  "session_not_found",
  "sessions_disabled",
  "reservation_not_found",
  "session_budget_exceeded",
  "session_concurrency_limited",
  "session_rate_limited",
  "session_paused",
  "session_pinned",
  "invalid_ticket",
  "upgrade_required",
  "config_invalid",
  "auth_not_configured",
  "registry_unavailable",
  "internal_error",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && KNOWN_CODES.has(value);
}

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
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /**
   * The SessionError an error stands for after crossing Workers RPC, which keeps an
   * error's own properties (`code`, `details`) but not its class; undefined for any
   * other error. The original becomes the `cause`.
   */
  static revive(err: unknown): SessionError | undefined {
    if (err instanceof SessionError) return err;
    if (!(err instanceof Error)) return undefined;
    const { code, details } = err as Error & { code?: unknown; details?: unknown };
    if (!isErrorCode(code)) return undefined;
    const plain = typeof details === "object" && details !== null ? (details as Record<string, unknown>) : {};
    return new SessionError(code, err.message, plain, { cause: err });
  }

  toBody(): ErrorBody {
    return { ...this.details, code: this.code, message: this.message };
  }

  /** The error a body stands for (`toBody`'s inverse). */
  static fromBody({ code, message, ...details }: ErrorBody): SessionError {
    return new SessionError(code, message, details);
  }
}

/**
 * A refusal as a value: how a session object answers a SessionError, so that an
 * expected 4xx (a budget refusal, say) is not thrown across RPC, where the
 * runtime would log it as an uncaught exception.
 */
export interface Refusal {
  refused: ErrorBody;
}

export function isRefusal(value: unknown): value is Refusal {
  return typeof value === "object" && value !== null && Object.hasOwn(value, "refused") && Object.keys(value).length === 1;
}

export function invalidRequest(field: string, problem: string): SessionError {
  return new SessionError("invalid_request", `${field} ${problem}`, { field });
}

/** Every per-session operation's refusal while SESSION_ENABLED is false. */
export function sessionsDisabled(): SessionError {
  return new SessionError("sessions_disabled", "sessions are disabled (SESSION_ENABLED=false)");
}
