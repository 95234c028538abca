/** Issue 4's contract from outside: POST /v1/resolve with OpenAI and Anthropic bodies. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { call, freshId, sessionPath } from "./client.mjs";

const BUDGET = Number(process.env.BLACKBOX_BUDGET_MICROS ?? 1_000_000);
const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const MEDIUM = { model: "kimi-k2.5", tier: "MEDIUM" };
const COMPLEX = { model: "gemini-3.1-pro", tier: "COMPLEX" };

const openai = (model, messages) => ({ model, messages: [{ role: "system", content: "be brief" }, ...messages], stream: false });
const resolve = (input) => call("POST", "/v1/resolve", { body: input });

describe("resolve over HTTP", () => {
  it("derives the session from the first user message (OpenAI string, Anthropic text parts)", async () => {
    const text = `first ${crypto.randomUUID()}`;
    const expected = createHash("sha256").update(text).digest("hex");
    const a = await resolve({ body: openai("auto", [{ role: "user", content: text }]), routed: MEDIUM });
    assert.equal(a.status, 200);
    assert.equal(a.json.sessionId, expected);
    assert.equal(a.json.source, "derived");
    const b = await resolve({
      body: {
        model: "auto",
        system: "sys",
        max_tokens: 10,
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "p1" + text },
              { type: "text", text: "p2" },
            ],
          },
        ],
      },
      routed: MEDIUM,
    });
    assert.equal(b.json.sessionId, createHash("sha256").update(`p1${text}\np2`).digest("hex"));
  });

  it("pins, upgrades but never downgrades, and sets x-session-pinned", async () => {
    const id = freshId("bb-resolve");
    const r1 = await resolve({ sessionId: id, body: openai("auto", [{ role: "user", content: "hi" }]), routed: SIMPLE });
    assert.equal(r1.headers.get("x-session-pinned"), "false");
    assert.equal(r1.json.model, "gemini-2.5-flash");
    const r2 = await resolve({ sessionId: id, body: openai("auto", [{ role: "user", content: "hard" }]), routed: COMPLEX });
    assert.equal(r2.headers.get("x-session-pinned"), "true");
    assert.equal(r2.json.model, "gemini-3.1-pro");
    const r3 = await resolve({ sessionId: id, body: openai("auto", [{ role: "user", content: "easy" }]), routed: SIMPLE });
    assert.equal(r3.json.model, "gemini-3.1-pro");
    assert.equal(r3.json.requestCount, 3);
  });

  it("escalates on the third and fourth identical requests, not when the tool differs", async () => {
    const id = freshId("bb-loop");
    const body = (tool) =>
      openai("auto", [
        { role: "user", content: "fix the test" },
        { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: tool, arguments: "{}" } }] },
        { role: "tool", tool_call_id: "c1", content: "FAIL" },
      ]);
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await resolve({ sessionId: id, body: body("run_tests"), routed: SIMPLE })).json);
    assert.deepEqual(
      seen.map((r) => [r.strikes, r.escalated, r.model]),
      [
        [0, false, "gemini-2.5-flash"],
        [1, false, "gemini-2.5-flash"],
        [2, true, "kimi-k2.5"],
        [3, true, "gemini-3.1-pro"],
      ],
    );
    const other = freshId("bb-noloop");
    const strikes = [];
    for (const tool of ["a", "b", "c"]) strikes.push((await resolve({ sessionId: other, body: body(tool), routed: SIMPLE })).json.strikes);
    assert.deepEqual(strikes, [0, 0, 0]);
  });

  it("an explicit model pins and wins over profiles and loops", async () => {
    const id = freshId("bb-explicit");
    assert.equal((await resolve({ sessionId: id, body: openai("my-model", [{ role: "user", content: "x" }]) })).json.userExplicit, true);
    for (let i = 0; i < 4; i++) {
      const r = await resolve({ sessionId: id, body: openai("auto", [{ role: "user", content: "x" }]), routed: COMPLEX });
      assert.equal(r.json.model, "my-model");
      assert.equal(r.json.escalated, false);
    }
  });

  it(`adds cost and enforces the budget (server budget ${BUDGET} micros) with 429`, async () => {
    const id = freshId("bb-budget");
    const r = await resolve({ sessionId: id, body: openai("auto", [{ role: "user", content: "x" }]), routed: MEDIUM, costMicros: BUDGET - 10 });
    assert.equal(r.json.sessionCostMicros, BUDGET - 10);
    const over = await resolve({ sessionId: id, body: openai("auto", [{ role: "user", content: "y" }]), routed: MEDIUM, costMicros: 11 });
    assert.equal(over.status, 429);
    assert.equal(over.json.error.code, "session_budget_exceeded");
    assert.equal(over.json.error.sessionCostMicros, BUDGET - 10);
    assert.equal((await call("GET", sessionPath(id))).json.requestCount, 1);
  });

  it("rejects bad input with 400 naming the field, 413 over the 4 MiB body limit, and stores nothing", async () => {
    const id = freshId("bb-bad");
    const cases = [
      [{ sessionId: id }, "body"],
      [{ sessionId: id, body: { model: "auto", messages: {} }, routed: MEDIUM }, "messages"],
      [{ sessionId: id, body: openai("auto", [{ role: "user", content: "x" }]) }, "routed"],
      [{ sessionId: id, body: openai("auto", [{ role: "user", content: "x" }]), routed: { model: "m", tier: "BIG" } }, "routed.tier"],
    ];
    for (const [input, field] of cases) {
      const res = await resolve(input);
      assert.equal(res.status, 400);
      assert.equal(res.json.error.code, "invalid_request");
      assert.match(res.json.error.message, new RegExp(field.replace(".", "\\.")));
    }
    const huge = await call("POST", "/v1/resolve", {
      rawBody: JSON.stringify({ sessionId: id, body: openai("auto", [{ role: "user", content: "x".repeat(4 * 1024 * 1024) }]), routed: MEDIUM }),
    });
    assert.equal(huge.status, 413);
    assert.equal((await call("GET", sessionPath(id))).status, 404);
  });
});
