/**
 * Hostile resolve bodies at the limits (issue 10 §1), through the real router in
 * workerd: each gets a documented 2xx or 4xx, never a 5xx or a hang, and the
 * Worker answers the next request. Limits are docs/http-api.md's "Resolve limits": 4 MiB, 250,000 JSON
 * values, nesting 256, 10,000 messages, 1,024 tool names.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, sessionPath } from "./support/http";
import { freshId } from "./support/back-ends";
import { rpcFailure } from "./support/rpc";

const MAX_BYTES = 4 * 1024 * 1024;
const MAX_VALUES = 250_000;
const MAX_DEPTH = 256;
const MAX_MESSAGES = 10_000;
const MAX_TOOL_NAMES = 1024;
const MEDIUM = { model: "kimi-k2.5", tier: "MEDIUM" };
const encoder = new TextEncoder();

/** A resolve input whose JSON text is `{"sessionId":…,"routed":…,"body":` + body + `}`. */
function input(id: string, bodyJson: string): string {
  return `{"sessionId":${JSON.stringify(id)},"routed":${JSON.stringify(MEDIUM)},"body":${bodyJson}}`;
}

/** The body with `filler` as the JSON of an ignored field, sized so the whole input is exactly `bytes` long. */
function atSize(id: string, bytes: number, filler: (room: number) => string): string {
  const frame = input(id, `{"model":"auto","messages":[{"role":"user","content":"go"}],"x":}`);
  const text = input(id, `{"model":"auto","messages":[{"role":"user","content":"go"}],"x":${filler(bytes - encoder.encode(frame).length)}}`);
  expect(encoder.encode(text).length).toBe(bytes);
  return text;
}

/** One user message whose content (JSON string text of `room` bytes from `fill`) makes the whole input exactly `bytes` long. */
function userTextAtSize(id: string, bytes: number, fill: (room: number) => string): string {
  const frame = encoder.encode(input(id, `{"model":"auto","messages":[{"role":"user","content":""}]}`)).length;
  const text = input(id, `{"model":"auto","messages":[{"role":"user","content":"${fill(bytes - frame)}"}]}`);
  expect(encoder.encode(text).length).toBe(bytes);
  return text;
}

async function resolveRaw(rawBody: string) {
  return call("POST", "/v1/resolve", { rawBody });
}

/** The documented answer for a rejection, and proof the Worker still serves a normal resolve. */
async function expectRejected(res: { status: number; json: any }, status: number, code: string, mention?: string) {
  expect(res.status).toBe(status);
  expect(res.json.error.code).toBe(code);
  if (mention) expect(res.json.error.message).toContain(mention);
  await expectStillServing();
}

async function expectStillServing() {
  const id = freshId("after");
  const next = await call("POST", "/v1/resolve", {
    body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content: "ok" }] }, routed: MEDIUM },
  });
  expect(next.status).toBe(200);
  expect(next.json).toMatchObject({ sessionId: id, requestCount: 1 });
}

/** JSON text padded with spaces to `bytes`. */
function padded(json: string, bytes: number): string {
  return json + " ".repeat(bytes - json.length);
}

/** The error code and message an RPC call was rejected with. */

function list(item: string, n: number): string {
  return "[" + Array(n).fill(item).join(",") + "]";
}

describe("long whitespace runs", () => {
  it("resolves a 4 MiB body whose last user message is one whitespace run between two letters", async () => {
    const id = freshId("ws");
    const res = await resolveRaw(userTextAtSize(id, MAX_BYTES, (room) => "a" + " ".repeat(room - 2) + "b"));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ sessionId: id, requestCount: 1 });
    await expectStillServing();
  });

  it("resolves a 4 MiB body of escaped whitespace (\\t\\n pairs) in the first and last message", async () => {
    const id = freshId("ws-escaped");
    const res = await resolveRaw(userTextAtSize(id, MAX_BYTES, (room) => "x" + "\\t\\n".repeat(Math.floor((room - 2) / 4)) + "y".repeat(((room - 2) % 4) + 1)));
    expect(res.status).toBe(200);
    await expectStillServing();
  });
});

describe("multi-byte text", () => {
  it("resolves 4 MiB of 3-byte characters, of 4-byte characters, and ASCII with one character outside Latin-1", async () => {
    const fills: ((room: number) => string)[] = [
      (room) => "文".repeat(Math.floor(room / 3)) + "a".repeat(room % 3),
      (room) => "😀".repeat(Math.floor(room / 4)) + "a".repeat(room % 4),
      (room) => "a".repeat(room - 3) + "文",
    ];
    for (const fill of fills) {
      const id = freshId("mb");
      const res = await resolveRaw(userTextAtSize(id, MAX_BYTES, fill));
      expect(res.status).toBe(200);
      expect(res.json.sessionId).toBe(id);
    }
    await expectStillServing();
  });

  it("answers 413 one byte over the limit, and 400 for a 4 MiB body with invalid UTF-8", async () => {
    const id = freshId("mb-over");
    await expectRejected(await resolveRaw(userTextAtSize(id, MAX_BYTES + 1, (room) => "a".repeat(room - 3) + "文")), 413, "payload_too_large");
    const bytes = encoder.encode(userTextAtSize(id, MAX_BYTES, (room) => "a".repeat(room)));
    bytes[bytes.length - 10] = 0xff;
    await expectRejected(await call("POST", "/v1/resolve", { rawBody: bytes }), 400, "invalid_json");
    expect((await call("GET", sessionPath(id))).status).toBe(404);
  });
});

describe("many values", () => {
  it("resolves a body at the value cap and answers 413 for 4 MiB of tiny values", async () => {
    // Counted as docs/http-api.md "Resolve limits" says (strings, "{", "[" and "," outside strings): 27 + 2n for n objects here.
    const withObjects = (n: number) => input(freshId("values"), `{"model":"auto","messages":[{"role":"user","content":"go"}],"x":${list("{}", n)}}`);
    expect((await resolveRaw(withObjects((MAX_VALUES - 28) / 2))).status).toBe(200);
    await expectRejected(await resolveRaw(withObjects((MAX_VALUES - 28) / 2 + 1)), 413, "payload_too_large", `${MAX_VALUES}`);
    const zeros = atSize(freshId("zeros"), MAX_BYTES, (room) => padded(list("0", Math.floor((room - 1) / 2)), room));
    await expectRejected(await resolveRaw(zeros), 413, "payload_too_large", `${MAX_VALUES}`);
    const objects = atSize(freshId("objects"), MAX_BYTES, (room) => padded(list("{}", Math.floor((room - 1) / 3)), room));
    await expectRejected(await resolveRaw(objects), 413, "payload_too_large");
  });

  it("counts values outside strings only: commas, quotes and brackets inside text cost nothing", async () => {
    const id = freshId("in-string");
    const res = await resolveRaw(userTextAtSize(id, MAX_BYTES, (room) => '[{\\",'.repeat(Math.floor(room / 5)) + "a".repeat(room % 5)));
    expect(res.status).toBe(200);
  });
});

describe("nesting", () => {
  it("resolves nesting to the depth cap and answers 413 beyond it, up to 4 MiB of brackets", async () => {
    const nest = (n: number) => "[".repeat(n) + "]".repeat(n);
    // The input object and the body are two levels; the filler adds the rest.
    expect((await resolveRaw(input(freshId("deep"), `{"model":"auto","messages":[],"x":${nest(MAX_DEPTH - 2)}}`))).status).toBe(200);
    await expectRejected(
      await resolveRaw(input(freshId("deeper"), `{"model":"auto","messages":[],"x":${nest(MAX_DEPTH - 1)}}`)),
      413,
      "payload_too_large",
      `${MAX_DEPTH}`,
    );
    const deepest = atSize(freshId("deepest"), MAX_BYTES, (room) => padded(nest(Math.floor(room / 2)), room));
    await expectRejected(await resolveRaw(deepest), 413, "payload_too_large");
    await expectRejected(await resolveRaw("[".repeat(MAX_BYTES)), 413, "payload_too_large");
  });
});

describe("messages", () => {
  it("resolves 10,000 messages and answers 400 naming body.messages for 10,001", async () => {
    const msgs = (n: number) => list("{}", n - 1).replace(/^\[/, '[{"role":"user","content":"go"},');
    const ok = await resolveRaw(input(freshId("msgs"), `{"model":"auto","messages":${msgs(MAX_MESSAGES)}}`));
    expect(ok.status).toBe(200);
    const id = freshId("msgs-over");
    await expectRejected(await resolveRaw(input(id, `{"model":"auto","messages":${msgs(MAX_MESSAGES + 1)}}`)), 400, "invalid_request", "body.messages");
    expect((await call("GET", sessionPath(id))).status).toBe(404);
  });

  it("answers 100,000 messages with a 4xx over HTTP, and 400 naming body.messages over RPC", async () => {
    const id = freshId("msgs-100k");
    const hundredK = list('{"role":"user","content":"hi"}', 100_000);
    const res = await resolveRaw(input(id, `{"model":"auto","messages":${hundredK}}`));
    expect([400, 413]).toContain(res.status);
    await expectStillServing();
    const rpc = await rpcFailure(exports.SessionService.resolve({ sessionId: id, body: { model: "auto", messages: JSON.parse(hundredK) }, routed: MEDIUM }));
    expect(rpc).toMatch(/^invalid_request: body\.messages must have at most 10000 messages/);
    expect((await call("GET", sessionPath(id))).status).toBe(404);
  });
});

describe("tool names", () => {
  const body = (n: number, name = "read_file") => ({
    model: "auto",
    messages: [
      { role: "user", content: "go" },
      {
        role: "assistant",
        content: null,
        tool_calls: Array.from({ length: n }, (_, i) => ({ id: `c${i}`, type: "function", function: { name, arguments: "{}" } })),
      },
    ],
  });

  it("resolves 1,024 tool calls and answers 400 naming the message for 1,025, in OpenAI and Anthropic shape", async () => {
    expect((await call("POST", "/v1/resolve", { body: { sessionId: freshId("tools"), body: body(MAX_TOOL_NAMES), routed: MEDIUM } })).status).toBe(200);
    const id = freshId("tools-over");
    await expectRejected(
      await call("POST", "/v1/resolve", { body: { sessionId: id, body: body(MAX_TOOL_NAMES + 1), routed: MEDIUM } }),
      400,
      "invalid_request",
      "body.messages[1]",
    );
    const blocks = Array.from({ length: MAX_TOOL_NAMES + 1 }, (_, i) => ({ type: "tool_use", id: `t${i}`, name: "grep", input: {} }));
    const anthropicBody = {
      model: "auto",
      max_tokens: 10,
      messages: [
        { role: "user", content: "go" },
        { role: "assistant", content: blocks },
      ],
    };
    await expectRejected(
      await call("POST", "/v1/resolve", { body: { sessionId: id, body: anthropicBody, routed: MEDIUM } }),
      400,
      "invalid_request",
      "body.messages[1]",
    );
    expect((await call("GET", sessionPath(id))).status).toBe(404);
  });

  it("resolves 1,024 long tool names filling 4 MiB", async () => {
    const name = "t".repeat(Math.floor(MAX_BYTES / MAX_TOOL_NAMES) - 80);
    const res = await call("POST", "/v1/resolve", { body: { sessionId: freshId("long-tools"), body: body(MAX_TOOL_NAMES, name), routed: MEDIUM } });
    expect(res.status).toBe(200);
  });

  it("answers 100,000 tool names with a 4xx over HTTP, and 400 naming the message over RPC", async () => {
    const id = freshId("tools-100k");
    const res = await call("POST", "/v1/resolve", { body: { sessionId: id, body: body(100_000, "t"), routed: MEDIUM } });
    expect([400, 413]).toContain(res.status);
    await expectStillServing();
    const rpc = await rpcFailure(exports.SessionService.resolve({ sessionId: id, body: body(100_000, "t"), routed: MEDIUM }));
    expect(rpc).toMatch(/^invalid_request: body\.messages\[1\] must call at most 1024 tools/);
    expect((await call("GET", sessionPath(id))).status).toBe(404);
  });
});

describe("body reading counts the bytes that arrive", () => {
  const big = JSON.stringify({ model: "m", tier: "SIMPLE", pad: "x".repeat(100 * 1024) });
  const streamOf = (text: string) =>
    new ReadableStream({
      start(c) {
        const bytes = encoder.encode(text);
        for (let i = 0; i < bytes.length; i += 16 * 1024) c.enqueue(bytes.subarray(i, i + 16 * 1024));
        c.close();
      },
    });

  it("answers 413 to a body longer than the 64 KiB limit whose Content-Length claims it is small, and stores nothing", async () => {
    const id = freshId("lying-length");
    for (const rawBody of [big, streamOf(big)]) {
      const res = await call("PUT", sessionPath(id), { rawBody, headers: { "content-length": "100" } });
      expect(res.status).toBe(413);
      expect(res.json.error.code).toBe("payload_too_large");
    }
    expect((await call("GET", sessionPath(id))).status).toBe(404);
  });

  it("answers 413 to a resolve body over 4 MiB sent with a small Content-Length or none", async () => {
    const id = freshId("lying-resolve");
    const text = userTextAtSize(id, MAX_BYTES + 1, (room) => "a".repeat(room));
    for (const headers of [{ "content-length": "1000" }, {}] as Record<string, string>[]) {
      const res = await call("POST", "/v1/resolve", { rawBody: streamOf(text), headers });
      expect(res.status).toBe(413);
    }
    expect((await call("GET", sessionPath(id))).status).toBe(404);
    await expectStillServing();
  });
});
