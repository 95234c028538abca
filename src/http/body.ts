/** Reads a JSON request body under a size limit, with errors as data. */
import { SessionError, invalidRequest } from "../session/errors";

/** Ordinary routes carry small JSON documents. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;
/** Resolve carries whole agent histories, which run long. */
export const RESOLVE_BODY_LIMIT = 8 * 1024 * 1024;

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function tooLarge(limit: number): SessionError {
  return new SessionError("payload_too_large", `request body exceeds ${limit} bytes`, { limitBytes: limit });
}

async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared)) {
    if (Number(declared) > limit) throw tooLarge(limit);
    // The runtime holds a body to its declared length, so one native read is safe here.
    return new Uint8Array(await request.arrayBuffer());
  }
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

/** The parsed body, which must be a JSON object. */
export async function readJsonObject(request: Request, limit = DEFAULT_BODY_LIMIT): Promise<Record<string, unknown>> {
  const bytes = await readLimited(request, limit);
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
