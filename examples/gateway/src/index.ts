/**
 * Example edge LLM gateway: an OpenAI-compatible POST /v1/chat/completions that
 * authenticates its caller with a gateway key, asks edge-session for the model
 * with one RPC in that key's session namespace, reserving the request's worst-case
 * cost against the session's budget, forwards to the session's upstream
 * deployment with the session's prompt-cache key (failing over to another
 * deployment once), and settles the reservation at the real cost from the
 * upstream's `usage`, with its cached input tokens.
 */
import type { SessionService } from "../../../src/entrypoints";
import { authenticate, gatewayKeys, GatewayKeysError } from "./auth";
import {
  cacheUsage,
  choicesBytes,
  costMicros,
  defaultMaxTokens,
  estimatedUsage,
  outputLimit,
  priceOf,
  reservation,
  tokensOfBytes,
  type CacheUsage,
  type Prices,
  type Usage,
} from "./budget";
import { alternativeTo, deploymentById, deploymentsOf, roundRobin, type Deployment } from "./deployments";
import { routeTier, type Tier } from "./router";
import { GatewayConfigError, sessionFailure, sessionHeaderName, sessionHeaders, SESSION_UNAVAILABLE } from "./session-rpc";

interface Env {
  SESSION: Service<SessionService>;
  /** e.g. https://api.openai.com/v1 or any OpenAI-compatible base URL: the one deployment when UPSTREAM_DEPLOYMENTS is unset. */
  UPSTREAM_BASE_URL: string;
  /** JSON array of {"id","baseUrl"}: the upstream's deployments (deployments.ts). */
  UPSTREAM_DEPLOYMENTS?: string | Deployment[];
  UPSTREAM_API_KEY?: string;
  /** Secret, JSON: key ID → key. Callers send the key as a bearer token; the key ID scopes their sessions. */
  GATEWAY_KEYS?: string;
  /** The session header, as the session service's SESSION_HEADER names it (default x-session-id). */
  SESSION_HEADER?: string;
  /** JSON: tier → model, for profile requests ("auto", "eco", "premium"). */
  TIER_MODELS: string | Record<Tier, string>;
  /** JSON: model → {"input": USD per 1M tokens, "output": USD per 1M tokens}. */
  MODEL_PRICES: string | Prices;
  /** Output tokens reserved, and sent upstream as max_tokens, for a request without max_tokens (default 4096). */
  DEFAULT_MAX_TOKENS?: string;
}

const PROFILES = ["auto", "eco", "premium"];
/** Real agent histories are long; the session service's resolve takes up to 4 MiB too (over HTTP). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The body's text and size in bytes, counting the bytes that arrive: a missing or lying Content-Length cannot carry more in. */
async function readBody(request: Request): Promise<{ text: string; bytes: number } | undefined> {
  if (!request.body) return { text: "", bytes: 0 };
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
  return { text: new TextDecoder().decode(await new Blob(chunks).arrayBuffer()), bytes: size };
}

type ChatBody = { model?: unknown; messages?: unknown; stream?: unknown; stream_options?: Record<string, unknown>; [field: string]: unknown };

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

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

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

/** What a stream carried by the time it ended: the usage chunk, if one came, and the bytes of text produced. */
type Streamed = { usage: Usage | undefined; outputBytes: number };

/**
 * Passes an SSE stream through untouched, noting the usage chunk and the text
 * each delta produced. `onEnd` runs once: when the upstream ends (awaited
 * before the client sees the end, so the next request sees the cost), or when
 * the client cancels or the upstream fails mid-stream. Cancelling also cancels
 * the upstream, which stops generating. The runtime cancels once a write to a
 * client that left fails: at the next chunk the upstream sends.
 */
function meterStream(body: ReadableStream<Uint8Array>, onEnd: (streamed: Streamed) => Promise<void>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const streamed: Streamed = { usage: undefined, outputBytes: 0 };
  let ended: Promise<void> | undefined;
  const end = () => (ended ??= onEnd(streamed));
  let cancelled = false;
  const scan = (text: string) => {
    buffered += text;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      try {
        const chunk = JSON.parse(line.slice(6));
        if (chunk?.usage) streamed.usage = chunk.usage;
        streamed.outputBytes += choicesBytes(chunk?.choices, "delta");
      } catch {
        // Not JSON: pass it through untouched.
      }
    }
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (err) {
          await end();
          if (!cancelled) controller.error(err);
          return;
        }
        if (cancelled) return;
        if (result.done) {
          scan(decoder.decode() + "\n");
          await end();
          controller.close();
          return;
        }
        scan(decoder.decode(result.value, { stream: true }));
        controller.enqueue(result.value);
      },
      async cancel(reason) {
        cancelled = true;
        const settled = end();
        await reader.cancel(reason).catch(() => undefined);
        await settled;
      },
    },
    // Read the upstream only as fast as the client reads: what was streamed is what the client was sent.
    { highWaterMark: 0 },
  );
}

type Scope = () => ReturnType<Env["SESSION"]["forNamespace"]>;
type Config = { sessionHeader: string; maxTokens: number; deployments: Deployment[] };
type Decision = Awaited<ReturnType<ReturnType<Scope>["resolve"]>>;
/** settle as the gateway calls it: `usage`, the call's input and cached input tokens, adds to the session's cache totals. */
type SettleWithUsage = { settle(id: string, reservationId: string, costMicros: number, usage?: CacheUsage): Promise<unknown> };

/** The deployment each request proposes (deployments.ts): round-robin, per isolate. */
const proposeDeployment = roundRobin();

/** An upstream answer another deployment may serve instead: rate limited, overloaded or failing. */
const retryable = (status: number) => status === 429 || status >= 500;

/**
 * Settles one resolve's reservation once, whichever way its call ends. The
 * Worker stays alive until then (waitUntil), also after the client is gone: a
 * reservation never settled is charged in full.
 */
function settlerOf(decision: Decision, scope: Scope, ctx: ExecutionContext): (micros: number, usage?: CacheUsage) => Promise<void> {
  let finished!: () => void;
  ctx.waitUntil(new Promise<void>((resolve) => (finished = resolve)));
  let settled: Promise<void> | undefined;
  return (micros, usage) =>
    (settled ??= (async () => {
      try {
        const { sessionId, reservationId } = decision;
        if (sessionId !== null && reservationId !== undefined) await (scope() as unknown as SettleWithUsage).settle(sessionId, reservationId, micros, usage);
      } catch (err) {
        // The completion is already produced: a failed settle is logged, not turned into a failed answer.
        console.error("settling the session's reservation failed:", messageOf(err));
      } finally {
        finished();
      }
    })());
}

async function chatCompletions(request: Request, env: Env, ctx: ExecutionContext, scope: Scope, config: Config): Promise<Response> {
  const read = await readBody(request);
  if (read === undefined) return openaiError(413, "payload_too_large", "request body too large");
  let body: ChatBody;
  try {
    body = JSON.parse(read.text) as ChatBody;
  } catch {
    return openaiError(400, "invalid_json", "request body is not JSON");
  }
  if (typeof body !== "object" || body === null || typeof body.model !== "string") {
    return openaiError(400, "invalid_request", "model is required");
  }

  const tierModels = jsonOf(env.TIER_MODELS);
  const prices = jsonOf(env.MODEL_PRICES);
  const profile = PROFILES.includes(body.model);
  const tier = routeTier(lastUserText(body.messages));
  // An explicit model's request carries routed too, for its deployment: the service pins the body's
  // model then, and reads neither routed.model nor routed.tier.
  const routed: { model: string; tier: Tier } = profile ? { model: tierModels[tier], tier } : { model: body.model, tier };

  // The worst case: every output token the request allows, and the prompt estimated from its size.
  const output = outputLimit(body, config.maxTokens);
  const promptTokens = tokensOfBytes(read.bytes);
  const reserveMicros = reservation(prices, profile ? { tierModels } : { model: body.model }, promptTokens, output.tokens);
  const headers = sessionHeaders(request.headers, config.sessionHeader);

  /** The session's decision for a call routed to `deployment`, after a failure on `failover`; a Response when the service refuses. */
  const resolve = async (deployment: string, failover?: string): Promise<Decision | Response> => {
    try {
      return await scope().resolve({
        headers,
        body,
        routed: { ...routed, deployment },
        reserveMicros,
        ...(failover === undefined ? {} : { failover: { deployment: failover } }),
      });
    } catch (err) {
      const failure = sessionFailure(err);
      if (failure === SESSION_UNAVAILABLE) console.error("session service error:", messageOf(err));
      const res = openaiError(failure.status, failure.code, failure.message);
      if (failure.retryAfterSeconds !== undefined) res.headers.set("retry-after", String(failure.retryAfterSeconds));
      return res;
    }
  };

  const stream = body.stream === true;
  const send = (deployment: Deployment, decision: Decision) =>
    fetch(`${deployment.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(env.UPSTREAM_API_KEY ? { authorization: `Bearer ${env.UPSTREAM_API_KEY}` } : {}) },
      body: JSON.stringify({
        ...body,
        model: decision.model,
        // The session's key, over one the client sent: every turn of the session then reaches the same cache.
        ...(decision.cacheKey !== null ? { prompt_cache_key: decision.cacheKey } : {}),
        ...(output.cap ? { max_tokens: config.maxTokens } : {}),
        ...(stream ? { stream_options: { ...body.stream_options, include_usage: true } } : {}),
      }),
    });

  let routedTo = proposeDeployment(config.deployments);
  const first = await resolve(routedTo.id);
  if (first instanceof Response) return first;
  let decision = first;
  let settle = settlerOf(decision, scope, ctx);

  // The call goes to the deployment the session pins (the proposal when it pins none). When that
  // deployment fails (no answer, 429 or 5xx), or is not configured any more, the gateway releases
  // the reservation, resolves again with failover, which moves the pin, and calls the answer's
  // deployment: one failover per request.
  let upstream: Response;
  try {
    for (let attempt = 0; ; attempt++) {
      const pinned = deploymentById(config.deployments, decision.deployment);
      const failedOn = decision.deployment ?? routedTo.id;
      const alternative = attempt === 0 ? alternativeTo(config.deployments, failedOn) : undefined;
      if (alternative === undefined) {
        upstream = await send(pinned ?? routedTo, decision);
        break;
      }
      if (pinned === undefined && decision.deployment !== null) {
        console.warn(`deployment ${failedOn} is pinned but not configured; failing over to ${alternative.id}`);
      } else {
        let answer: Response | undefined;
        try {
          answer = await send(pinned ?? routedTo, decision);
        } catch (err) {
          console.warn(`deployment ${failedOn} did not answer (${messageOf(err)}); failing over to ${alternative.id}`);
        }
        if (answer !== undefined && !retryable(answer.status)) {
          upstream = answer;
          break;
        }
        if (answer !== undefined) {
          console.warn(`deployment ${failedOn} answered ${answer.status}; failing over to ${alternative.id}`);
          await answer.body?.cancel().catch(() => undefined);
        }
      }
      // Nothing was produced: this reservation is released before the next resolve holds another.
      await settle(0);
      const next = await resolve(alternative.id, failedOn);
      if (next instanceof Response) return next;
      [decision, routedTo, settle] = [next, alternative, settlerOf(next, scope, ctx)];
    }
  } catch (err) {
    // No answer (an unreachable upstream, say): nothing was produced.
    await settle(0);
    throw err;
  }

  const price = priceOf(prices, decision.model);
  // The upstream's usage when it reported one, else an estimate from the prompt's size and the text produced.
  // Only a reported usage says how much of the prompt was cached.
  const settleUsage = (usage: Usage | undefined, outputBytes: number) =>
    settle(costMicros(price, usage ?? estimatedUsage(promptTokens, outputBytes)), cacheUsage(usage));

  try {
    const responseHeaders = new Headers({
      "content-type": upstream.headers.get("content-type") ?? "application/json",
      "x-session-id": decision.sessionId ?? "",
      "x-session-model": decision.model,
      "x-session-pinned": String(decision.pinned),
      "x-session-cost-micros": String(decision.sessionCostMicros),
    });

    if (!upstream.ok || !upstream.body) {
      // Nothing was produced: the reservation is released at no cost.
      await settle(0);
      return new Response(upstream.body, { status: upstream.status, headers: responseHeaders });
    }
    if (stream) {
      const metered = meterStream(upstream.body, ({ usage, outputBytes }) => settleUsage(usage, outputBytes));
      return new Response(metered, { status: upstream.status, headers: responseHeaders });
    }
    let completion: { usage?: Usage; choices?: unknown };
    try {
      completion = (await upstream.json()) as typeof completion;
    } catch (err) {
      // The upstream read the prompt but its answer is unreadable: the prompt's estimate is charged.
      await settleUsage(undefined, 0);
      throw err;
    }
    await settleUsage(completion?.usage, choicesBytes(completion?.choices, "message"));
    return Response.json(completion, { status: upstream.status, headers: responseHeaders });
  } catch (err) {
    await settle(0);
    throw err;
  }
}

/** 401 in OpenAI's shape and code, so SDKs raise AuthenticationError. */
function unauthorized(): Response {
  const res = openaiError(401, "invalid_api_key", "missing or invalid gateway key");
  res.headers.set("www-authenticate", 'Bearer realm="gateway"');
  return res;
}

async function handle(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname === "/health") return Response.json({ ok: true });

  // Fail closed: without keys the gateway would spend the upstream key for anyone.
  let keys;
  let config: Config;
  try {
    keys = await gatewayKeys(env.GATEWAY_KEYS);
    config = {
      sessionHeader: sessionHeaderName(env.SESSION_HEADER),
      maxTokens: defaultMaxTokens(env.DEFAULT_MAX_TOKENS),
      deployments: deploymentsOf(env.UPSTREAM_DEPLOYMENTS, env.UPSTREAM_BASE_URL),
    };
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
    return chatCompletions(request, env, ctx, () => env.SESSION.forNamespace(keyId), config);
  }
  return openaiError(404, "not_found", "no such route");
}

export default {
  async fetch(request, env, ctx) {
    try {
      return await handle(request, env, ctx);
    } catch (err) {
      return internalError(err);
    }
  },
} satisfies ExportedHandler<Env>;
