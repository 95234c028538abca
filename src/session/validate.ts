import { invalidRequest, SessionError } from "./errors";
import { isRoutedTier, isTier } from "./tiers";
import type { RoutedTier, Tier } from "./types";

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
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Unicode category Cf (bidi controls, zero-width characters, soft hyphen): IDs that look alike but differ. */
const FORMAT_CHARS = /\p{Cf}/u;

/** URL parsers fold these path segments away, so `/v1/sessions/{id}` could never read or delete such a session. */
const DOT_SEGMENTS: ReadonlySet<string> = new Set([".", ".."]);

export function validateSessionId(value: unknown): string {
  if (typeof value !== "string" || value === "") {
    throw new SessionError("invalid_session_id", "session ID must be a non-empty string");
  }
  if (DOT_SEGMENTS.has(value)) {
    throw new SessionError("invalid_session_id", 'session ID must not be "." or "..", which no URL path can carry');
  }
  if (value.length > MAX_SESSION_ID_LENGTH) {
    throw new SessionError("invalid_session_id", `session ID must be at most ${MAX_SESSION_ID_LENGTH} characters`);
  }
  if (CONTROL_CHARS.test(value)) {
    throw new SessionError("invalid_session_id", "session ID must not contain control characters");
  }
  if (LONE_SURROGATE.test(value)) {
    throw new SessionError("invalid_session_id", "session ID must be well-formed UTF-16 (no lone surrogate halves)");
  }
  if (FORMAT_CHARS.test(value)) {
    throw new SessionError("invalid_session_id", "session ID must not contain invisible format characters (Unicode Cf: bidi controls, zero-width)");
  }
  return value;
}

export function requireString(field: string, value: unknown, opts: { max?: number; nonEmpty?: boolean } = {}): string {
  if (typeof value !== "string") throw invalidRequest(field, "must be a string");
  if (opts.nonEmpty && value === "") throw invalidRequest(field, "must not be empty");
  if (opts.max !== undefined && value.length > opts.max) throw invalidRequest(field, `must be at most ${opts.max} characters`);
  return value;
}

export function validateModel(field: string, value: unknown): string {
  const model = requireString(field, value, { nonEmpty: true, max: MAX_MODEL_LENGTH });
  if (CONTROL_CHARS.test(model)) throw invalidRequest(field, "must not contain control characters");
  return model;
}

export function validateTier(field: string, value: unknown): Tier {
  if (!isTier(value)) throw invalidRequest(field, 'must be one of "SIMPLE", "MEDIUM", "COMPLEX", "REASONING" or ""');
  return value;
}

/** A router's decision names one of the four tiers; `""` marks explicit pins only. */
export function validateRoutedTier(field: string, value: unknown): RoutedTier {
  if (!isRoutedTier(value)) throw invalidRequest(field, 'must be one of "SIMPLE", "MEDIUM", "COMPLEX", "REASONING"');
  return value;
}

export function validateHash(field: string, value: unknown): string {
  return requireString(field, value, { nonEmpty: true, max: MAX_HASH_LENGTH });
}

export function validateMicros(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw invalidRequest(field, "must be a non-negative safe integer (micro-USD)");
  }
  return value;
}

export function optionalBoolean(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw invalidRequest(field, "must be a boolean");
  return value;
}

export function validateToolNames(field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalidRequest(field, "must be an array of strings");
  if (value.length > MAX_TOOL_NAMES) throw invalidRequest(field, `must have at most ${MAX_TOOL_NAMES} names`);
  value.forEach((name, i) => requireString(`${field}[${i}]`, name));
  return value as string[];
}

/** Tenant namespaces: short, printable, and so free of the key separator (a control character). */
const NAMESPACE = /^[A-Za-z0-9._~-]{1,64}$/;

export function validateNamespace(value: string, header = "namespace"): string {
  if (!NAMESPACE.test(value)) throw invalidRequest(header, "must be 1 to 64 characters from A-Z a-z 0-9 . _ ~ -");
  return value;
}
