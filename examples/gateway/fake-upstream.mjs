#!/usr/bin/env node
/**
 * A fake OpenAI-compatible upstream for local runs and tests. It answers
 * POST /v1/chat/completions (streaming or not) with deterministic usage, and
 * records each call (GET /calls): its model, max_tokens, usage, and whether the
 * caller cut the stream.
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

export function startFakeUpstream({ port = 0, host = "127.0.0.1" } = {}) {
  const calls = [];
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
    const usage = usageFor(body);
    const id = `chatcmpl-${calls.length + 1}`;
    const created = Math.floor(Date.now() / 1000);
    const call = { model: body.model, stream: body.stream === true, max_tokens: body.max_tokens, usage, cut: false };
    calls.push(call);
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
      resolve({ url: `http://${host}:${bound}/v1`, calls, close });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = await startFakeUpstream({ port: Number(process.env.PORT ?? 8788) });
  console.log(`fake upstream on ${upstream.url}`);
}
