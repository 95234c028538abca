/** The one place that logs an error no rule anticipated, for both front doors. */
import { SessionError } from "./session/errors";

/**
 * The SessionError to answer for `err`: its own when it is one (also after crossing
 * RPC), else `internal_error`, after logging what happened. The caller never sees
 * the original text: it may name objects, storage or timeouts.
 */
export function toSessionError(err: unknown): SessionError {
  const known = SessionError.revive(err);
  if (known) return known;
  console.error("unhandled error", err instanceof Error ? (err.stack ?? err.message) : String(err));
  return new SessionError("internal_error", "internal error");
}
