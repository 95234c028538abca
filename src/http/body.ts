/** Reads a JSON request body under limits on its bytes, JSON values and nesting, with errors as data. */
import { SessionError, invalidRequest } from "../session/errors";

export interface BodyLimits {
  /** Bytes actually read, whatever `Content-Length` says. */
  bytes: number;
  /** JSON values (strings, numbers, literals, objects, arrays; keys count as strings), checked before parsing. */
  values?: number;
  /** Nesting of objects and arrays, checked before parsing. */
  depth?: number;
}

/** Ordinary routes carry small JSON documents; 64 KiB of JSON parses to well under a megabyte. */
export const DEFAULT_BODY_LIMIT: BodyLimits = { bytes: 64 * 1024 };

/**
 * Resolve carries whole agent histories. A parsed body costs far more heap than
 * its bytes (measured by `npm run bench`: up to about 40 bytes per JSON value,
 * and two bytes per character once one character is outside Latin-1), and a
 * Worker isolate has 128 MB. These limits keep one resolve request's peak at or
 * under 32 MB (bench/parse-memory.mjs measures every worst-case shape at them):
 * - bytes: 4 MiB holds a 1M-token context of text;
 * - values: 250,000 is over 20 values for each of MAX_MESSAGES messages;
 * - depth: tool schemas nest a few dozen levels; 256 keeps any later walk shallow.
 */
export const RESOLVE_BODY_LIMIT: BodyLimits = { bytes: 4 * 1024 * 1024, values: 250_000, depth: 256 };

/** First buffer for a body without a usable Content-Length; it doubles as needed. */
const INITIAL_BUFFER_BYTES = 16 * 1024;

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function tooLarge(message: string, detail: Record<string, number>): SessionError {
  return new SessionError("payload_too_large", message, detail);
}

/**
 * Reads the body chunk by chunk, counting what arrives: a missing, short or
 * lying Content-Length cannot carry more than `limit` bytes into memory. A
 * declared length sizes the buffer, so an honest body is copied once.
 */
async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  const tooBig = () => tooLarge(`request body exceeds ${limit} bytes`, { limitBytes: limit });
  const header = request.headers.get("content-length");
  const declared = header !== null && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
  if (declared !== undefined && declared > limit) throw tooBig();
  if (!request.body) return new Uint8Array(0);
  let buffer = new Uint8Array(declared ?? Math.min(INITIAL_BUFFER_BYTES, limit));
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.byteLength > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooBig();
    }
    if (size + value.byteLength > buffer.length) {
      const grown = new Uint8Array(Math.min(limit, Math.max(buffer.length * 2, size + value.byteLength)));
      grown.set(buffer.subarray(0, size));
      buffer = grown;
    }
    buffer.set(value, size);
    size += value.byteLength;
  }
  return buffer.subarray(0, size);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * One linear pass over the bytes, outside strings: counts values (each string,
 * container and comma-separated element bounds one) and tracks nesting, so a
 * body that would parse into millions of tiny objects is refused before
 * JSON.parse allocates them. Malformed JSON may be miscounted; JSON.parse
 * rejects it next.
 */
function checkShape(bytes: Uint8Array, limits: BodyLimits): void {
  const maxValues = limits.values ?? Infinity;
  const maxDepth = limits.depth ?? Infinity;
  let values = 0;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if (b === QUOTE) {
      inString = true;
      values++;
    } else if (b === COMMA) {
      values++;
    } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      values++;
      if (++depth > maxDepth) throw tooLarge(`request body nests deeper than ${maxDepth} levels`, { limitDepth: maxDepth });
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      depth--;
    }
    if (values > maxValues) throw tooLarge(`request body has more than ${maxValues} JSON values`, { limitValues: maxValues });
  }
}

/** The parsed body, which must be a JSON object. */
export async function readJsonObject(request: Request, limits: BodyLimits = DEFAULT_BODY_LIMIT): Promise<Record<string, unknown>> {
  const bytes = await readLimited(request, limits.bytes);
  checkShape(bytes, limits);
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    // Also catches invalid UTF-8 and nesting deep enough to exhaust the parser's stack.
    throw new SessionError("invalid_json", "request body is not valid UTF-8 JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalidRequest("body", "must be a JSON object");
  return value as Record<string, unknown>;
}
