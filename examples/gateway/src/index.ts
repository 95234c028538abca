/**
 * Example edge LLM gateway: an OpenAI-compatible POST /v1/chat/completions that
 * asks edge-session for the model with one RPC, forwards to an upstream, and
 * records the real cost from the upstream's `usage`.
 */
import type { SessionService } from "../../../src/client";
import { routeTier, type Tier } from "./router";

interface Env {
  SESSION: Service<SessionService>;
  /** e.g. https://api.openai.com/v1 or any OpenAI-compatible base URL */
  UPSTREAM_BASE_URL: string;
  UPSTREAM_API_KEY?: string;
  /** JSON: tier → model, for profile requests ("auto", "eco", "premium"). */
  TIER_MODELS: string | Record<Tier, string>;
  /** JSON: model → {"input": USD per 1M tokens, "output": USD per 1M tokens}. */
  MODEL_PRICES: string | Record<string, { input: number; output: number }>;
}

const PROFILES = ["auto", "eco", "premium"];
/** Real agent histories are long; the session service accepts up to 8 MiB too. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

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

function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return "";
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.content)) return m.content.filter((p: any) => p?.type === "text").map((p: any) => p.text).join("\n");
  }
  return "";
}

/** USD per million tokens × tokens = micro-USD. */
function costMicros(env: Env, model: string, usage: Usage | undefined): number {
  const price = jsonOf(env.MODEL_PRICES)[model];
  if (!price || !usage) return 0;
  return Math.round((usage.prompt_tokens ?? 0) * price.input + (usage.completion_tokens ?? 0) * price.output);
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

async function chatCompletions(request: Request, env: Env): Promise<Response> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) return openaiError(413, "payload_too_large", "request body too large");
  let body: ChatBody;
  try {
    body = (await request.json()) as ChatBody;
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
    decision = await env.SESSION.resolve({ headers: Object.fromEntries(request.headers), body, routed });
  } catch (err) {
    const [code, ...rest] = String((err as Error).message).split(": ");
    const message = rest.join(": ") || String(err);
    if (code === "session_budget_exceeded") return openaiError(429, code, message);
    if (code === "invalid_request" || code === "invalid_session_id") return openaiError(400, code, message);
    return openaiError(502, "session_unavailable", message);
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
  });
  const sessionId = decision.sessionId;
  const record = async (usage: Usage | undefined) => {
    const micros = costMicros(env, decision.model, usage);
    if (sessionId !== null && micros > 0) await env.SESSION.addSessionCost(sessionId, micros);
  };

  if (!upstream.ok || !upstream.body) return new Response(upstream.body, { status: upstream.status, headers });
  if (stream) return new Response(meterStream(upstream.body, record), { status: upstream.status, headers });
  const completion = (await upstream.json()) as { usage?: Usage };
  await record(completion.usage);
  return Response.json(completion, { status: upstream.status, headers });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return Response.json({ ok: true });
    if (url.pathname === "/v1/chat/completions") {
      if (request.method !== "POST") return openaiError(405, "method_not_allowed", "use POST");
      return chatCompletions(request, env);
    }
    // For the walkthrough: what the session layer holds for a conversation.
    const match = /^\/sessions\/([^/]+)$/.exec(url.pathname);
    if (match && request.method === "GET") {
      const session = await env.SESSION.getSession(decodeURIComponent(match[1]!));
      return session ? Response.json(session) : openaiError(404, "session_not_found", "no such session");
    }
    return openaiError(404, "not_found", "no such route");
  },
} satisfies ExportedHandler<Env>;
