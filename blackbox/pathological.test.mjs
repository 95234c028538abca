/**
 * Issue 10 §1 from outside: hostile resolve bodies at the limits of docs/http-api.md
 * (4 MiB, 250,000 JSON values, nesting 256, 10,000 messages, 1,024 tool names)
 * sent over real HTTP to `wrangler dev`. Each gets a documented 2xx or 4xx,
 * never a 5xx or a hang, and the server answers the next request.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, it } from "node:test";
import { API_TOKEN, BASE_URL, call, freshId, sessionPath } from "./client.mjs";

const MAX_BYTES = 4 * 1024 * 1024;
const MEDIUM = { model: "kimi-k2.5", tier: "MEDIUM" };
/** A hang is a failure: no shape may take the server this long (a generous bound, not a speed test). */
const SHAPE_TIMEOUT = { timeout: 120_000 };
const encoder = new TextEncoder();

const input = (id, bodyJson) => `{"sessionId":${JSON.stringify(id)},"routed":${JSON.stringify(MEDIUM)},"body":${bodyJson}}`;
const list = (item, n) => "[" + Array(n).fill(item).join(",") + "]";

/** One user message whose content (JSON string text of `room` bytes) makes the input exactly `bytes` long. */
function userTextAtSize(id, bytes, fill) {
  const frame = encoder.encode(input(id, `{"model":"auto","messages":[{"role":"user","content":""}]}`)).length;
  const text = input(id, `{"model":"auto","messages":[{"role":"user","content":"${fill(bytes - frame)}"}]}`);
  assert.equal(encoder.encode(text).length, bytes);
  return text;
}

async function expectStillServing() {
  const id = freshId("bb-after");
  const next = await call("POST", "/v1/resolve", {
    body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content: "ok" }] }, routed: MEDIUM },
  });
  assert.equal(next.status, 200);
  assert.equal(next.json.sessionId, id);
}

/** A documented answer: 2xx, or 4xx with the error shape. */
async function expectDocumented(res, allowed) {
  assert.ok(allowed.includes(res.status), `status ${res.status}: ${JSON.stringify(res.json).slice(0, 200)}`);
  if (res.status >= 400) assert.equal(typeof res.json.error.code, "string");
  await expectStillServing();
}

const resolveRaw = (rawBody, headers) => call("POST", "/v1/resolve", { rawBody, headers });

describe("pathological resolve bodies over HTTP", () => {
  it("a 4 MiB whitespace run between two letters resolves", SHAPE_TIMEOUT, async () => {
    const id = freshId("bb-ws");
    const res = await resolveRaw(userTextAtSize(id, MAX_BYTES, (room) => "a" + " ".repeat(room - 2) + "b"));
    await expectDocumented(res, [200]);
  });

  it("4 MiB of multi-byte text resolves; one byte more is 413", SHAPE_TIMEOUT, async () => {
    for (const fill of [(room) => "文".repeat(Math.floor(room / 3)) + "a".repeat(room % 3), (room) => "a".repeat(room - 4) + "😀"]) {
      await expectDocumented(await resolveRaw(userTextAtSize(freshId("bb-mb"), MAX_BYTES, fill)), [200]);
    }
    const id = freshId("bb-mb-over");
    const over = await resolveRaw(userTextAtSize(id, MAX_BYTES + 1, (room) => "a".repeat(room - 3) + "文"));
    assert.equal(over.json.error.code, "payload_too_large");
    await expectDocumented(over, [413]);
    assert.equal((await call("GET", sessionPath(id))).status, 404);
  });

  it("100,000 messages get a 4xx; 10,000 resolve", SHAPE_TIMEOUT, async () => {
    await expectDocumented(
      await resolveRaw(input(freshId("bb-100k"), `{"model":"auto","messages":${list('{"role":"user","content":"hi"}', 100_000)}}`)),
      [400, 413],
    );
    const tenK = list("{}", 9_999).replace(/^\[/, '[{"role":"user","content":"go"},');
    await expectDocumented(await resolveRaw(input(freshId("bb-10k"), `{"model":"auto","messages":${tenK}}`)), [200]);
  });

  it("100,000 tool names get a 4xx; 1,024 resolve", SHAPE_TIMEOUT, async () => {
    const body = (n) => ({
      model: "auto",
      messages: [
        { role: "user", content: "go" },
        { role: "assistant", content: null, tool_calls: Array.from({ length: n }, () => ({ type: "function", function: { name: "t" } })) },
      ],
    });
    await expectDocumented(await call("POST", "/v1/resolve", { body: { sessionId: freshId("bb-tools"), body: body(100_000), routed: MEDIUM } }), [400, 413]);
    await expectDocumented(await call("POST", "/v1/resolve", { body: { sessionId: freshId("bb-tools"), body: body(1024), routed: MEDIUM } }), [200]);
  });

  it("nesting to the limit resolves; 4 MiB of brackets and 4 MiB of tiny values are 413", SHAPE_TIMEOUT, async () => {
    await expectDocumented(await resolveRaw(input(freshId("bb-deep"), `{"model":"auto","messages":[],"x":${"[".repeat(254)}${"]".repeat(254)}}`)), [200]);
    await expectDocumented(await resolveRaw("[".repeat(MAX_BYTES)), [413]);
    await expectDocumented(await resolveRaw(input(freshId("bb-zeros"), `{"model":"auto","messages":[],"x":${list("0", 2_000_000)}}`)), [413]);
  });
});

describe("body length over real HTTP", () => {
  it("a chunked body over 4 MiB with no Content-Length is 413", SHAPE_TIMEOUT, async () => {
    const bytes = encoder.encode(userTextAtSize(freshId("bb-chunked"), MAX_BYTES + 1, (room) => "a".repeat(room)));
    const body = new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += 64 * 1024) c.enqueue(bytes.subarray(i, i + 64 * 1024));
        c.close();
      },
    });
    const res = await fetch(`${BASE_URL}/v1/resolve`, { method: "POST", headers: { authorization: `Bearer ${API_TOKEN}` }, body, duplex: "half" });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, "payload_too_large");
    await expectStillServing();
  });

  it(
    "a Content-Length smaller than the body sent: the server reads only the declared bytes, so the rest never reaches the limit check as body",
    SHAPE_TIMEOUT,
    async () => {
      const url = new URL(BASE_URL);
      const id = freshId("bb-lying");
      const body = JSON.stringify({ model: "m", tier: "SIMPLE", pad: "x".repeat(200 * 1024) });
      const head = `PUT ${sessionPath(id)} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${API_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n`;
      const answer = await new Promise((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname);
        let data = "";
        socket.on("data", (d) => (data += d));
        socket.on("end", () => resolve(data));
        socket.on("close", () => resolve(data));
        socket.on("error", (err) => (data ? resolve(data) : reject(err)));
        socket.write(head + body);
      });
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
      // The first 20 bytes are not a whole JSON document.
      assert.equal(status, 400, answer.slice(0, 300));
      assert.match(answer, /invalid_json/);
      assert.equal((await call("GET", sessionPath(id))).status, 404);
      await expectStillServing();
    },
  );
});
