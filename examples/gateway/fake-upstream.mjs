#!/usr/bin/env node
/**
 * A fake OpenAI-compatible upstream for local runs and tests. It answers
 * POST /v1/chat/completions (streaming or not) with deterministic usage, and
 * records which model each call asked for (GET /calls).
 *
 *   node examples/gateway/fake-upstream.mjs            # listens on 127.0.0.1:8788 (PORT to change)
 */
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

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
    calls.push({ model: body.model, stream: body.stream === true, usage });
    const text = `echo from ${body.model}`;
    if (body.stream === true) {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const send = (obj) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
      const base = { id, object: "chat.completion.chunk", created, model: body.model };
      send({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] });
      for (const word of text.split(" ")) send({ ...base, choices: [{ index: 0, delta: { content: word + " " }, finish_reason: null }] });
      send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
      if (body.stream_options?.include_usage) send({ ...base, choices: [], usage });
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
        usage,
      }),
    );
  });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const { port: bound } = server.address();
      resolve({ url: `http://${host}:${bound}/v1`, calls, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = await startFakeUpstream({ port: Number(process.env.PORT ?? 8788) });
  console.log(`fake upstream on ${upstream.url}`);
}
