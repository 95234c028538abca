/**
 * Example edge LLM gateway: an OpenAI-compatible POST /v1/chat/completions that
 * authenticates its caller with a gateway key, asks edge-session for the model
 * with one RPC in that key's session namespace, forwards to an upstream, and
 * records the real cost from the upstream's `usage`.
 */
import type { SessionService } from "../../../src/entrypoints";
import { authenticate, gatewayKeys, GatewayKeysError } from "./auth";
import { routeTier, type Tier } from "./router";
import { GatewayConfigError, sessionFailure, sessionHeaderName, sessionHeaders, SESSION_UNAVAILABLE } from "./session-rpc";

interface Env {
  SESSION: Service<SessionService>;
  /** e.g. https://api.openai.com/v1 or any OpenAI-compatible base URL */
  UPSTREAM_BASE_URL: string;
  UPSTREAM_API_KEY?: string;
  /** Secret, JSON: key ID → key. Callers send the key as a bearer token; the key ID scopes their sessions. */
  GATEWAY_KEYS?: string;
  /** The session header, as the session service's SESSION_HEADER names it (default x-session-id). */
  SESSION_HEADER?: string;
  /** JSON: tier → model, for profile requests ("auto", "eco", "premium"). */
  TIER_MODELS: string | Record<Tier, string>;
  /** JSON: model → {"input": USD per 1M tokens, "output": USD per 1M tokens}. */
  MODEL_PRICES: string | Record<string, { input: number; output: number }>;
}

const PROFILES = ["auto", "eco", "premium"];
/** Real agent histories are long; the session service's resolve takes up to 4 MiB too (over HTTP). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The body's text, counting the bytes that arrive: a missing or lying Content-Length cannot carry more in. */
async function readBody(request: Request): Promise<string | undefined> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(await new Blob(chunks).arrayBuffer());
}

type ChatBody = { model?: unknown; messages?: unknown; stream?: unknown; stream_options?: Record<string, unknown> };
type Usage = { prompt_tokens?: number; completion_tokens?: number };

function jsonOf<T>(value: string | T): T {
  return typeof value === "string" ? (JSON.parse(value) as T) : value;
}

/** OpenAI's error shape, so SDKs raise their own error classes (429 → RateLimitError). */
function openaiError(status: number, code: string, message: string): Response {
  const type = status === 429 ? "rate_limit_exceeded" : status >= 500 ? "server_error" : "invalid_request_error";
  return Response.json({ error: { message, type, code } }, { status });
}

/** Unexpected failures: logged with their detail, answered with a fixed message. */
function internalError(err: unknown): Response {
  console.error("gateway error:", err instanceof Error ? (err.stack ?? err.message) : String(err));
  return openaiError(500, "internal_error", "internal error");
}

function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return "";
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.content))
      return m.content
        .filter((p: any) => p?.type === "text")
        .map((p: any) => p.text)
        .join("\n");
  }
  return "";
}

/** USD per million tokens × tokens = micro-USD. */
function costMicros(env: Env, model: string, usage: Usage | undefined): number {
  const prices = jsonOf(env.MODEL_PRICES);
  // Own properties only: a model named "constructor" must not price itself from Object.prototype.
  const price = Object.hasOwn(prices, model) ? prices[model] : undefined;
  if (!price || !usage) return 0;
  const micros = Math.round((usage.prompt_tokens ?? 0) * price.input + (usage.completion_tokens ?? 0) * price.output);
  // Upstream usage is untrusted input: a non-numeric token count must not become a NaN cost.
  return Number.isSafeInteger(micros) && micros > 0 ? micros : 0;
}

/** Passes an SSE stream through untouched, noting the final chunk's usage; records the cost before closing. */
function meterStream(body: ReadableStream<Uint8Array>, onUsage: (usage: Usage | undefined) => Promise<void>) {
  const decoder = new TextDecoder();
  let buffered = "";
  let usage: Usage | undefined;
  const scan = (text: string) => {
    buffered += text;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      try {
        const chunk = JSON.parse(line.slice(6));
        if (chunk.usage) usage = chunk.usage;
      } catch {
        // Not JSON: pass it through untouched.
      }
    }
  };
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        scan(decoder.decode(chunk, { stream: true }));
        controller.enqueue(chunk);
      },
      async flush() {
        scan(decoder.decode() + "\n");
        await onUsage(usage);
      },
    }),
  );
}

type Scope = () => ReturnType<Env["SESSION"]["forNamespace"]>;

async function chatCompletions(request: Request, env: Env, scope: Scope, sessionHeader: string): Promise<Response> {
  const text = await readBody(request);
  if (text === undefined) return openaiError(413, "payload_too_large", "request body too large");
  let body: ChatBody;
  try {
    body = JSON.parse(text) as ChatBody;
  } catch {
    return openaiError(400, "invalid_json", "request body is not JSON");
  }
  if (typeof body !== "object" || body === null || typeof body.model !== "string") {
    return openaiError(400, "invalid_request", "model is required");
  }

  let routed: { model: string; tier: Tier } | undefined;
  if (PROFILES.includes(body.model)) {
    const tier = routeTier(lastUserText(body.messages));
    routed = { model: jsonOf(env.TIER_MODELS)[tier], tier };
  }

  let decision;
  try {
    decision = await scope().resolve({ headers: sessionHeaders(request.headers, sessionHeader), body, routed });
  } catch (err) {
    const failure = sessionFailure(err);
    if (failure === SESSION_UNAVAILABLE) console.error("session service error:", err instanceof Error ? err.message : String(err));
    return openaiError(failure.status, failure.code, failure.message);
  }

  const stream = body.stream === true;
  const upstreamBody = { ...body, model: decision.model, ...(stream ? { stream_options: { ...body.stream_options, include_usage: true } } : {}) };
  const upstream = await fetch(`${env.UPSTREAM_BASE_URL.replace(/\/+$/, "")}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(env.UPSTREAM_API_KEY ? { authorization: `Bearer ${env.UPSTREAM_API_KEY}` } : {}) },
    body: JSON.stringify(upstreamBody),
  });

  const headers = new Headers({
    "content-type": upstream.headers.get("content-type") ?? "application/json",
    "x-session-id": decision.sessionId ?? "",
    "x-session-model": decision.model,
    "x-session-pinned": String(decision.pinned),
    "x-session-cost-micros": String(decision.sessionCostMicros),
  });
  const sessionId = decision.sessionId;
  // The completion is already produced: a failed cost write is logged, not turned into a failed answer.
  const record = async (usage: Usage | undefined) => {
    const micros = costMicros(env, decision.model, usage);
    if (sessionId === null || micros <= 0) return;
    try {
      await scope().addSessionCost(sessionId, micros);
    } catch (err) {
      console.error("recording session cost failed:", err instanceof Error ? err.message : String(err));
    }
  };

  if (!upstream.ok || !upstream.body) return new Response(upstream.body, { status: upstream.status, headers });
  if (stream) return new Response(meterStream(upstream.body, record), { status: upstream.status, headers });
  const completion = (await upstream.json()) as { usage?: Usage };
  await record(completion.usage);
  return Response.json(completion, { status: upstream.status, headers });
}

/** 401 in OpenAI's shape and code, so SDKs raise AuthenticationError. */
function unauthorized(): Response {
  const res = openaiError(401, "invalid_api_key", "missing or invalid gateway key");
  res.headers.set("www-authenticate", 'Bearer realm="gateway"');
  return res;
}

async function handle(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname === "/health") return Response.json({ ok: true });

  // Fail closed: without keys the gateway would spend the upstream key for anyone.
  let keys;
  let sessionHeader;
  try {
    keys = await gatewayKeys(env.GATEWAY_KEYS);
    sessionHeader = sessionHeaderName(env.SESSION_HEADER);
  } catch (err) {
    if (err instanceof GatewayKeysError) {
      console.error(err.message);
      return openaiError(503, "gateway_not_configured", "gateway keys are not configured");
    }
    if (err instanceof GatewayConfigError) {
      console.error(err.message);
      return openaiError(500, "gateway_misconfigured", "gateway is misconfigured");
    }
    throw err;
  }
  const keyId = await authenticate(request.headers.get("authorization"), keys);
  if (keyId === undefined) return unauthorized();

  if (url.pathname === "/v1/chat/completions") {
    if (request.method !== "POST") return openaiError(405, "method_not_allowed", "use POST");
    // Every session call runs in the key's namespace: two keys never share a session, even with equal IDs.
    return chatCompletions(request, env, () => env.SESSION.forNamespace(keyId), sessionHeader);
  }
  return openaiError(404, "not_found", "no such route");
}

export default {
  async fetch(request, env) {
    try {
      return await handle(request, env);
    } catch (err) {
      return internalError(err);
    }
  },
} satisfies ExportedHandler<Env>;
