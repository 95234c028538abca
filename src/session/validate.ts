import { invalidRequest, SessionError } from "./errors";

/** Longest session ID we accept; derived IDs are 64 hex chars. */
export const MAX_SESSION_ID_LENGTH = 256;
/** Model names are identifiers such as "gemini-3.1-pro"; generous but bounded. */
export const MAX_MODEL_LENGTH = 256;
/** Request hashes are 32 hex chars from hashRequestContent; allow other schemes too. */
export const MAX_HASH_LENGTH = 128;
/** Tool lists longer than this are not a request a gateway would send. */
export const MAX_TOOL_NAMES = 1024;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
/**
 * A surrogate without its partner. Object names and registry keys are UTF-8, where a lone
 * surrogate becomes U+FFFD: "a\uD800" and "a\uFFFD" would share an object but hash to
 * different registry shards.
 */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Unicode category Cf (bidi controls, zero-width characters, soft hyphen): IDs that look alike but differ. */
const FORMAT_CHARS = /\p{Cf}/u;

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** URL parsers fold these path segments away, so `/v1/sessions/{id}` could never read or delete such a session. */
const DOT_SEGMENTS: ReadonlySet<string> = new Set([".", ".."]);

/** What is wrong with a session ID string, as a sentence, or undefined when it is valid. */
export function sessionIdProblem(value: string): string | undefined {
  if (value === "") return "session ID must be a non-empty string";
  if (DOT_SEGMENTS.has(value)) return 'session ID must not be "." or "..", which no URL path can carry';
  if (value.length > MAX_SESSION_ID_LENGTH) return `session ID must be at most ${MAX_SESSION_ID_LENGTH} characters`;
  // The common case, printable ASCII, has none of the characters below.
  if (PRINTABLE_ASCII.test(value)) return undefined;
  if (CONTROL_CHARS.test(value)) return "session ID must not contain control characters";
  if (LONE_SURROGATE.test(value)) return "session ID must be well-formed UTF-16 (no lone surrogate halves)";
  if (FORMAT_CHARS.test(value)) return "session ID must not contain invisible format characters (Unicode Cf: bidi controls, zero-width)";
  return undefined;
}

export function validateSessionId(value: unknown): string {
  if (typeof value !== "string") throw new SessionError("invalid_session_id", "session ID must be a non-empty string");
  const problem = sessionIdProblem(value);
  if (problem !== undefined) throw new SessionError("invalid_session_id", problem);
  return value;
}

/** Model names may not hold control characters: they reach logs and stats. */
export function hasControlChars(value: string): boolean {
  return CONTROL_CHARS.test(value);
}

/** Tenant namespaces: short, printable, and so free of the key separator (a control character). */
const NAMESPACE = /^[A-Za-z0-9._~-]{1,64}$/;

export function validateNamespace(value: unknown, header = "namespace"): string {
  if (typeof value !== "string" || !NAMESPACE.test(value)) throw invalidRequest(header, "must be 1 to 64 characters from A-Z a-z 0-9 . _ ~ -");
  return value;
}
