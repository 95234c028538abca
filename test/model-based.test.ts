/**
 * Model-based random testing: random histories of operations over a few
 * sessions, applied to MemoryStore (the model) and to the real Durable Objects
 * through RPC (the system). Every observable result must be identical.
 *
 * MODEL_RUNS=5000 npm run test:unit -- model-based   checks more; MODEL_SEED=<seed> replays a failure.
 */
import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { configFor } from "../src/session/config";
import { TIERS, type Tier } from "../src/session/types";
import { memoryPort, outcome, rpcPort, type Outcome, type SessionPort } from "./support/ports";
import { testClock } from "./support/worker";

const timeoutMs = configFor(env).timeoutMs;
const runs = Number(env.MODEL_RUNS);
const seed = env.MODEL_SEED === "" ? undefined : Number(env.MODEL_SEED);
const SESSIONS_PER_RUN = 3;

type Op =
  | { kind: "set"; s: number; model: string; tier: Tier; explicit: boolean }
  | { kind: "touch" | "get" | "escalate" | "cost" | "clear" | "evict" | "alarm"; s: number }
  | { kind: "hash"; s: number; hash: string }
  | { kind: "addCost"; s: number; micros: number }
  | { kind: "resolve"; s: number; model: string; routedTier: (typeof TIERS)[number]; text: string; tool: string | null; cost: number | undefined }
  | { kind: "advance"; ms: number };

const session = fc.integer({ min: 0, max: SESSIONS_PER_RUN - 1 });
const model = fc.constantFrom("gemini-2.5-flash", "kimi-k2.5", "gemini-3.1-pro", "custom-model");
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), s: session, model, tier: fc.constantFrom<Tier>("", ...TIERS), explicit: fc.boolean() }),
  fc.record({ kind: fc.constantFrom("touch" as const, "get" as const, "escalate" as const, "cost" as const, "clear" as const, "evict" as const, "alarm" as const), s: session }),
  fc.record({ kind: fc.constant("hash" as const), s: session, hash: fc.constantFrom("a", "b") }),
  fc.record({ kind: fc.constant("addCost" as const), s: session, micros: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.constant(-1), fc.constant(Number.MAX_SAFE_INTEGER)) }),
  fc.record({
    kind: fc.constant("resolve" as const),
    s: session,
    model: fc.constantFrom("auto", "eco", "my-model"),
    routedTier: fc.constantFrom(...TIERS),
    text: fc.constantFrom("hi", "loop", "fix it"),
    tool: fc.constantFrom(null, "read_file", "run_tests"),
    cost: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
  }),
  fc.record({ kind: fc.constant("advance" as const), ms: fc.constantFrom(1, 1000, timeoutMs - 1, timeoutMs, timeoutMs + 1) }),
);

function resolveInput(id: string, op: Extract<Op, { kind: "resolve" }>) {
  const messages: unknown[] = [{ role: "user", content: op.text }];
  if (op.tool) messages.push({ role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: op.tool, arguments: "{}" } }] });
  return { sessionId: id, body: { model: op.model, messages }, routed: { model: `${op.routedTier.toLowerCase()}-model`, tier: op.routedTier }, costMicros: op.cost };
}

let runCounter = 0;

/** Applies one history to a port; `system` adds the platform-only steps (eviction, alarms). */
async function apply(port: SessionPort, ops: Op[], ids: string[], system: boolean, evictAfterEvery: boolean): Promise<Outcome[]> {
  const log: Outcome[] = [];
  const stub = (s: number) => env.SESSIONS.get(env.SESSIONS.idFromName(ids[s]!));
  for (const op of ops) {
    if (op.kind === "advance") {
      testClock.advance(op.ms);
      continue;
    }
    const id = ids[op.s]!;
    switch (op.kind) {
      case "set": log.push(await outcome(() => port.setSession(id, op.model, op.tier, op.explicit))); break;
      case "touch": log.push(await outcome(() => port.touchSession(id))); break;
      case "get": log.push(await outcome(() => port.getSession(id))); break;
      case "escalate": log.push(await outcome(() => port.escalateSession(id))); break;
      case "cost": log.push(await outcome(() => port.getSessionCostUSD(id))); break;
      case "clear": log.push(await outcome(() => port.clearSession(id))); break;
      case "hash": log.push(await outcome(() => port.recordRequestHash(id, op.hash))); break;
      case "addCost": log.push(await outcome(() => port.addSessionCost(id, op.micros))); break;
      case "resolve": log.push(await outcome(() => port.resolve(resolveInput(id, op)))); break;
      // Eviction and alarms have no observable result of their own; what follows must not change.
      case "evict": if (system) await evictDurableObject(stub(op.s)).catch(() => undefined); break;
      case "alarm": if (system) await runDurableObjectAlarm(stub(op.s)); break;
    }
    if (system && evictAfterEvery) await evictDurableObject(stub(op.s)).catch(() => undefined);
  }
  // Finally read every session back: hidden state must agree too.
  for (const id of ids) log.push(await outcome(() => port.getSession(id)));
  return log;
}

async function check(ops: Op[], evictAfterEvery: boolean): Promise<void> {
  const run = ++runCounter;
  const ids = Array.from({ length: SESSIONS_PER_RUN }, (_, s) => `model-${run}-${s}-${crypto.randomUUID().slice(0, 8)}`);
  const start = testClock.offsetMs;
  const expected = await apply(memoryPort(), ops, ids, false, false);
  testClock.offsetMs = start;
  const actual = await apply(rpcPort(), ops, ids, true, evictAfterEvery);
  expect(actual).toEqual(expected);
}

describe("model-based: MemoryStore and the Durable Objects agree on random histories", () => {
  it(`${runs} random histories`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => check(ops, false)),
      { numRuns: runs, seed, verbose: 1 },
    );
  });

  it("with the object evicted between every pair of operations", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 15 }), (ops) => check(ops, true)),
      { numRuns: Math.max(20, Math.round(runs / 6)), seed, verbose: 1 },
    );
  });
});
