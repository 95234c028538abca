#!/usr/bin/env node
/**
 * A fake OpenAI-compatible upstream for local runs and tests. It answers
 * POST /v1/chat/completions (streaming or not) with deterministic usage, and
 * records each call (GET /calls): its deployment (the `name` it was started
 * with), model, max_tokens, prompt_cache_key, status, usage, and whether the
 * caller cut the stream. Several fakes can share one `calls` array, as the
 * deployments of one upstream.
 *
 * Its prompt cache: a fake remembers, per prompt_cache_key, the prompt tokens
 * of its last call with that key; the next call with the key reports as many
 * of its own prompt tokens cached (prompt_tokens_details.cached_tokens, at
 * most its prompt tokens). Another deployment, or another key, starts cold.
 *
 * Setting `failStatus` on a started fake (503, say) makes it answer every
 * call with that status and an OpenAI-shaped error, recorded too.
 *
 * A stream whose messages contain HANG_BEFORE_FINISH stops after its content
 * deltas, and one with HANG_BEFORE_USAGE after its finish_reason chunk; both
 * then send only SSE comments until the caller closes the connection, so that
 * a test can cut a stream at a known point. With NO_USAGE in its messages a
 * call reports no usage, streaming or not.
 *
 *   node examples/gateway/fake-upstream.mjs            # listens on 127.0.0.1:8788 (PORT to change)
 */
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

export const HANG_BEFORE_FINISH = "[fake-upstream: hang before finish]";
export const HANG_BEFORE_USAGE = "[fake-upstream: hang before usage]";
export const NO_USAGE = "[fake-upstream: no usage]";

/** Completion tokens every answer reports. */
export const COMPLETION_TOKENS = 12;

export function usageFor(body) {
  const chars = JSON.stringify(body.messages ?? []).length;
  const prompt_tokens = Math.ceil(chars / 4);
  return { prompt_tokens, completion_tokens: COMPLETION_TOKENS, total_tokens: prompt_tokens + COMPLETION_TOKENS };
}

export function startFakeUpstream({ port = 0, host = "127.0.0.1", name = "default", calls = [] } = {}) {
  /** prompt_cache_key → the prompt tokens of this deployment's last call with it. */
  const cache = new Map();
  const fake = { calls, failStatus: undefined };
  const server = createServer(async (req, res) => {
    if (req.method === "GET" && req.url === "/calls") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(calls));
      return;
    }
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "not found" } }));
      return;
    }
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const body = JSON.parse(raw);
    const key = typeof body.prompt_cache_key === "string" ? body.prompt_cache_key : undefined;
    const call = { deployment: name, model: body.model, stream: body.stream === true, max_tokens: body.max_tokens, prompt_cache_key: key, cut: false };
    calls.push(call);
    if (fake.failStatus !== undefined) {
      call.status = fake.failStatus;
      res
        .writeHead(fake.failStatus, { "content-type": "application/json" })
        .end(JSON.stringify({ error: { message: "fake upstream failing", type: "server_error" } }));
      return;
    }
    call.status = 200;
    const usage = usageFor(body);
    if (key !== undefined) {
      usage.prompt_tokens_details = { cached_tokens: Math.min(cache.get(key) ?? 0, usage.prompt_tokens) };
      cache.set(key, usage.prompt_tokens);
    }
    call.usage = usage;
    const id = `chatcmpl-${calls.length}`;
    const created = Math.floor(Date.now() / 1000);
    const text = `echo from ${body.model}`;
    const messages = JSON.stringify(body.messages ?? []);
    const reported = messages.includes(NO_USAGE) ? undefined : usage;
    if (body.stream === true) {
      // An SSE comment every 100 ms, as real upstreams send while they think: a proxy notices a
      // closed client only when it writes.
      const hang = async () => {
        const timer = setInterval(() => res.write(": still thinking\n\n"), 100);
        await new Promise((resolve) => res.once("close", resolve));
        clearInterval(timer);
        call.cut = true;
      };
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const send = (obj) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
      const base = { id, object: "chat.completion.chunk", created, model: body.model };
      send({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] });
      for (const word of text.split(" ")) send({ ...base, choices: [{ index: 0, delta: { content: word + " " }, finish_reason: null }] });
      if (messages.includes(HANG_BEFORE_FINISH)) return hang();
      send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
      if (messages.includes(HANG_BEFORE_USAGE)) return hang();
      if (body.stream_options?.include_usage && reported) send({ ...base, choices: [], usage: reported });
      res.end("data: [DONE]\n\n");
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        id,
        object: "chat.completion",
        created,
        model: body.model,
        choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
        usage: reported,
      }),
    );
  });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const { port: bound } = server.address();
      // Closing also drops the connections of streams still hanging.
      const close = () => new Promise((r) => (server.close(r), server.closeAllConnections()));
      resolve(Object.assign(fake, { name, url: `http://${host}:${bound}/v1`, close }));
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = await startFakeUpstream({ port: Number(process.env.PORT ?? 8788) });
  console.log(`fake upstream on ${upstream.url}`);
}
