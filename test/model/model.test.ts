/**
 * The model itself against oracles outside src/: the Go-computed hash vectors
 * and the docs' worked examples (docs/http-api.md). A model that misread the contract would
 * otherwise agree with nothing and be blamed on the back ends, or agree with a
 * back end that misread it the same way.
 */
import { describe, expect, it } from "vitest";
import vectorText from "../vectors/hash.json?raw";
import { modelHash } from "./hash";
import { SessionModel, type ModelConfig } from "./session-model";

interface Vector {
  name: string;
  content: [string, number][];
  tools: string[];
  hash: string;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const vectors = (JSON.parse(vectorText) as { hash: Vector[] }).hash;
const ascii = vectors.filter((v) => [...v.content.map(([piece]) => piece), ...v.tools].every((s) => PRINTABLE_ASCII.test(s)));

describe("the model's hash", () => {
  it(`matches the Go vectors on all ${ascii.length} printable-ASCII inputs`, async () => {
    expect(ascii.length).toBeGreaterThan(50);
    for (const v of ascii) {
      const content = v.content.map(([piece, n]) => piece.repeat(n)).join("");
      expect(await modelHash(content, v.tools), v.name).toBe(v.hash);
    }
  });

  it("refuses what it does not model", async () => {
    await expect(modelHash("tab\there")).rejects.toThrow(/printable ASCII/);
    await expect(modelHash("x", ["caf\u00e9"])).rejects.toThrow(/printable ASCII/);
  });
});

/** The documented configuration (wrangler.toml [vars], docs/configuration.md). */
const config: ModelConfig = {
  timeoutMs: 1_800_000,
  strikeThreshold: 2,
  tierModels: { SIMPLE: "gemini-2.5-flash", MEDIUM: "kimi-k2.5", COMPLEX: "gemini-3.1-pro", REASONING: "grok-4-1-fast-reasoning" },
  routingProfiles: ["auto", "eco", "premium"],
  budgetMicros: undefined,
  reservationTtlMs: 600_000,
};

describe("the model follows the documented examples (docs/http-api.md)", () => {
  it("the same OpenAI request sent three times escalates on the third: strikes 2, MEDIUM, kimi-k2.5", async () => {
    const model = new SessionModel(config, () => 0);
    const hash = await modelHash("Fix the failing test", ["run_tests"]);
    const send = () => model.resolve({ sessionId: "agent-7", model: "auto", routed: { model: "gemini-2.5-flash", tier: "SIMPLE" }, hash, costMicros: 300 });
    send();
    send();
    expect(send()).toMatchObject({ strikes: 2, escalated: true, tier: "MEDIUM", model: "kimi-k2.5", requestCount: 3, sessionCostMicros: 900 });
  });

  it("expires when idle strictly longer than the timeout", () => {
    let now = 0;
    const model = new SessionModel(config, () => now);
    model.set("conv-42", "kimi-k2.5", "MEDIUM");
    now = config.timeoutMs;
    expect(model.get("conv-42")).not.toBeNull();
    now = 2 * config.timeoutMs + 1;
    expect(model.get("conv-42")).toBeNull();
  });

  it("stats cut IDs to 8 code points plus ... and count ages in whole seconds", () => {
    let now = 0;
    const model = new SessionModel(config, () => now);
    model.set("😀😀😀😀😀😀😀😀😀", "kimi-k2.5", "MEDIUM");
    model.set("conv-42", "gemini-3.1-pro", "COMPLEX");
    now = 40_999;
    /** docs/http-api.md "Entries and costs": a new session has made 1 request, has no strikes and no cost. */
    const fresh = { sessionCostMicros: 0, strikes: 0, requestCount: 1, paused: false };
    expect(model.stats()).toEqual({
      count: 2,
      sessions: [
        { id: "conv-42", sessionId: "conv-42", model: "gemini-3.1-pro", tier: "COMPLEX", age: 40, ...fresh },
        { id: "😀😀😀😀😀😀😀😀...", sessionId: "😀😀😀😀😀😀😀😀😀", model: "kimi-k2.5", tier: "MEDIUM", age: 40, ...fresh },
      ],
      byModel: { "kimi-k2.5": 1, "gemini-3.1-pro": 1 },
      byTier: { MEDIUM: 1, COMPLEX: 1 },
      cache: { inputTokens: 0, cachedInputTokens: 0, hitRatio: null },
      spendMicros: 0,
    });
  });
});
