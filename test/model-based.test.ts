/**
 * Model-based random testing: random histories of operations over a few
 * sessions, applied in lockstep to the independent model (test/model/, written
 * from the docs and the reference godoc, sharing no rule with src/session)
 * and to the facade over one back end: the real Durable Objects, or the
 * in-memory map (MemoryStore). Compared, result by result:
 * - every call's result or error code;
 * - every session read back at the end (hidden state: hashes, strikes, cost);
 * - stats (count, byModel, byTier, and the sessions list with truncated and full
 *   IDs, tiers, ages and paused; each row's cost, strikes and request count and
 *   the cache and spend totals too for MemoryStore, whose stats are exact, while
 *   the registry's trail by design: test/cache-usage.test.ts,
 *   test/registry-rows.test.ts) and how many sessions clear-all removes.
 *
 * A third set of histories adds faults (registry outages, commits that fail and
 * reset the object) and compares stats after the documented convergence time.
 *
 * Stats need two preparations on the object side. The registry learns of expiry
 * only when a session's alarm fires, so every session's alarm is fired first
 * (`settle`); MemoryStore sweeps instead. And stats are global within this
 * file's storage, so each history starts with clear-all: then the totals, not
 * only the list, must equal the model's. Clear-all at the start costs one
 * fan-out over the shards per history; filtering by the history's IDs would
 * have left count, byModel and byTier unchecked.
 *
 * MODEL_RUNS=5000 npm run test:unit -- model-based   checks more; MODEL_SEED=<seed> replays a failure.
 */
import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import type { Sessions } from "../src/facade";
import type { RoutedTier, Tier } from "../src/session/types";
import { modelHash } from "./model/hash";
import type { ResolveCall } from "./model/model-sessions";
import { memoryFacade, objectsFacade, outcome, settle, statsView, testConfig, theModel, withoutKeyValues, type Outcome } from "./support/back-ends";
import { converge } from "./support/converge";
import { commitFault, registryFault, testClock } from "./support/worker";

/** What a history calls: the facade over a back end, or the model behind the same names. */
type Target = Sessions | ReturnType<typeof theModel>;

const { timeoutMs, budgetMicros, reservationTtlMs } = testConfig();
const runs = Number(env.MODEL_RUNS);
const seed = env.MODEL_SEED === "" ? undefined : Number(env.MODEL_SEED);
const SESSIONS_PER_RUN = 3;
const TIERS: RoutedTier[] = ["SIMPLE", "MEDIUM", "COMPLEX", "REASONING"];

type ResolveOp = {
  kind: "resolve";
  s: number;
  model: string;
  routedModel: string;
  routedTier: RoutedTier;
  text: string;
  tool: string | null;
  cost: number | undefined;
  reserve: number | undefined;
};
type Op =
  | { kind: "set"; s: number; model: string; tier: Tier; explicit: boolean }
  | { kind: "touch" | "get" | "escalate" | "cost" | "clear" | "evict" | "alarm"; s: number }
  | { kind: "hash"; s: number; hash: string | { text: string } }
  | { kind: "addCost"; s: number; micros: number; usage: Usage | undefined }
  /** Settles the k-th reservation this target handed out in the history (any session's), or an ID never handed out. */
  | { kind: "settle"; s: number; k: number; micros: number; usage: Usage | undefined }
  | { kind: "budget"; s: number; micros: number | null }
  | ResolveOp
  | { kind: "advance"; ms: number };
/** Faults, in the histories that have them: a registry outage begins or ends; an operation's commit fails. */
type FaultOp = Op | { kind: "outage"; on: boolean } | { kind: "commitFails"; op: Exclude<Op, { kind: "advance" }> };

const session = fc.integer({ min: 0, max: SESSIONS_PER_RUN - 1 });
type Usage = { inputTokens: number; cachedInputTokens: number };
/** Issue 15's usage: mostly valid (cached at most input), sometimes more cached than input, or totals that would overflow. */
const usageArb: fc.Arbitrary<Usage | undefined> = fc.option(
  fc.oneof(
    {
      arbitrary: fc
        .integer({ min: 0, max: 2000 })
        .chain((input) => fc.record({ inputTokens: fc.constant(input), cachedInputTokens: fc.integer({ min: 0, max: input }) })),
      weight: 6,
    },
    { arbitrary: fc.constant({ inputTokens: 1, cachedInputTokens: 2 }), weight: 1 },
    { arbitrary: fc.constant({ inputTokens: Number.MAX_SAFE_INTEGER, cachedInputTokens: Number.MAX_SAFE_INTEGER }), weight: 1 },
  ),
  { nil: undefined },
);
// TIER_MODELS names, names outside it, and names an object's prototype or the byModel cap could mistake.
const model = fc.constantFrom("gemini-2.5-flash", "kimi-k2.5", "gemini-3.1-pro", "custom-model", "__proto__", "(other)");
const texts = ["hi", "loop", "fix it"];
/**
 * An explicit pin is sticky and switches off upgrades and escalation for the rest of the
 * session, so it is drawn one time in five: most histories keep exercising the tier rules.
 */
const rarely = <T>(common: fc.Arbitrary<T>, rare: fc.Arbitrary<T>) => fc.oneof({ arbitrary: common, weight: 4 }, { arbitrary: rare, weight: 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("set" as const),
    s: session,
    model,
    tier: fc.constantFrom<Tier>("", ...TIERS),
    explicit: rarely(fc.constant(false), fc.constant(true)),
  }),
  fc.record({
    kind: fc.constantFrom("touch" as const, "get" as const, "escalate" as const, "cost" as const, "clear" as const, "evict" as const, "alarm" as const),
    s: session,
  }),
  // Raw hashes, and the hash a resolve of "loop" without tools records, so the two paths share a window.
  fc.record({ kind: fc.constant("hash" as const), s: session, hash: fc.constantFrom<string | { text: string }>("a", "b", { text: "loop" }) }),
  fc.record({
    kind: fc.constant("addCost" as const),
    s: session,
    micros: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.constant(-1), fc.constant(Number.MAX_SAFE_INTEGER)),
    usage: usageArb,
  }),
  // Resolve, the gateway's one call, is drawn three times as often as any other operation.
  ...Array.from({ length: 3 }, () =>
    fc.record({
      kind: fc.constant("resolve" as const),
      s: session,
      model: rarely(fc.constantFrom("auto", "eco"), fc.constantFrom("my-model", "kimi-k2.5")),
      // The routed model may equal the pinned one: an upgrade must move the tier all the same.
      routedModel: fc.constantFrom("gemini-2.5-flash", "kimi-k2.5", "routed-model"),
      routedTier: fc.constantFrom(...TIERS),
      text: fc.constantFrom(...texts),
      tool: fc.constantFrom(null, "read_file", "run_tests"),
      // Small costs, and one that crosses SESSION_BUDGET_MICROS within a few requests.
      cost: fc.option(fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant(Math.ceil((budgetMicros ?? 0) / 2))), { nil: undefined }),
      // Reservations against budgets the "budget" operation sets small enough to reach.
      reserve: fc.option(fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constant(Math.ceil((budgetMicros ?? 0) / 3))), { nil: undefined }),
    }),
  ),
  fc.record({
    kind: fc.constant("settle" as const),
    s: session,
    k: fc.integer({ min: 0, max: 6 }),
    micros: fc.oneof(fc.integer({ min: 0, max: 500 }), fc.constant(-1)),
    usage: usageArb,
  }),
  fc.record({ kind: fc.constant("budget" as const), s: session, micros: fc.option(fc.integer({ min: 0, max: 1500 }), { nil: null }) }),
  fc.record({
    kind: fc.constant("advance" as const),
    ms: fc.constantFrom(1, 1000, timeoutMs - 1, timeoutMs, timeoutMs + 1, reservationTtlMs, reservationTtlMs + 1),
  }),
);

/**
 * Histories with faults: registry outages that start and end anywhere (so deliveries
 * fail and are retried from alarms), and operations whose storage commit fails after
 * the call returned, resetting the object. The model applies an operation only when
 * the objects did not answer internal_error for it.
 */
const faultyOpArb: fc.Arbitrary<FaultOp> = fc.oneof(
  { arbitrary: opArb, weight: 6 },
  { arbitrary: fc.record({ kind: fc.constant("outage" as const), on: fc.boolean() }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant("commitFails" as const),
      op: opArb.filter((op): op is Exclude<Op, { kind: "advance" }> => !["advance", "evict", "alarm"].includes(op.kind)),
    }),
    weight: 1,
  },
);

function resolveCall(sessionId: string, op: ResolveOp): ResolveCall {
  const messages: ResolveCall["body"]["messages"] = [{ role: "user", content: op.text }];
  if (op.tool) messages.push({ role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: op.tool, arguments: "{}" } }] });
  const call: ResolveCall = { sessionId, body: { model: op.model, messages }, routed: { model: op.routedModel, tier: op.routedTier } };
  if (op.cost !== undefined) call.costMicros = op.cost;
  if (op.reserve !== undefined) call.reserveMicros = op.reserve;
  return call;
}

/**
 * Session IDs unique to one history. The first is short: 8 code points or fewer but
 * more than 8 UTF-16 units, so stats must show it whole; the others start with
 * astral characters, so a cut by UTF-16 units would differ from the first 8 code points.
 */
let runCounter = 0;
function historyIds(): string[] {
  const run = ++runCounter;
  return Array.from({ length: SESSIONS_PER_RUN }, (_, s) => (s === 0 ? `😀😀😀😀${run % 1000}` : `${s}😀é-history-${run}`));
}

/**
 * One step on one target; eviction and alarms exist only on the objects and have no result of their own.
 * `handedOut` collects the reservation IDs the target answered, in order: a resolve's outcome shows
 * its ID's index instead of the ID (each target makes its own), and a settle names one by index.
 */
async function step(port: Target, op: Exclude<Op, { kind: "advance" }>, id: string, objects: boolean, handedOut: string[]): Promise<Outcome | undefined> {
  const stub = () => env.SESSIONS.get(env.SESSIONS.idFromName(id));
  switch (op.kind) {
    case "set":
      return outcome(() => port.setSession(id, op.model, op.tier, op.explicit));
    case "touch":
      return outcome(() => port.touchSession(id));
    case "get":
      return outcome(() => port.getSession(id));
    case "escalate":
      return outcome(() => port.escalateSession(id));
    case "cost":
      return outcome(() => port.getSessionCostUSD(id));
    case "clear":
      return outcome(() => port.clearSession(id));
    case "hash": {
      const hash = typeof op.hash === "string" ? op.hash : await modelHash(op.hash.text);
      return outcome(() => port.recordRequestHash(id, hash));
    }
    case "addCost":
      return outcome(() => port.addSessionCost(id, op.micros, op.usage));
    case "resolve": {
      const result = await outcome(() => (port.resolve as (input: ResolveCall) => Promise<unknown>)(resolveCall(id, op)));
      if ("ok" in result && typeof (result.ok as { reservationId?: unknown }).reservationId === "string") {
        const answer = result.ok as { reservationId: string };
        handedOut.push(answer.reservationId);
        return { ok: { ...answer, reservationId: `#${handedOut.length - 1}` } };
      }
      return result;
    }
    case "settle":
      return outcome(() => port.settle(id, handedOut[op.k] ?? "never-handed-out", op.micros, op.usage));
    case "budget":
      return outcome(() => port.setBudget(id, op.micros));
    case "evict":
      if (objects) await evictDurableObject(stub()).catch(() => undefined);
      return undefined;
    case "alarm":
      if (objects) await runDurableObjectAlarm(stub());
      return undefined;
  }
}

interface Trace {
  steps: (Outcome | undefined)[];
  readBack: Outcome[];
  stats: Outcome;
  cleared: Outcome;
}

/** What a target shows after a history: reads, then stats (with the usage figures and totals when `cache`) and clear-all once due sessions have expired. */
async function finish(port: Target, ids: string[], steps: (Outcome | undefined)[], cache: boolean, faulty = false): Promise<Trace> {
  if (faulty && !("model" in port)) {
    // Everything reachable again: the documented convergence time passes (the model reads the same clock).
    registryFault.mode = "none";
    await converge();
  }
  const readBack = await Promise.all(ids.map((id) => outcome(() => port.getSession(id))));
  if (!("model" in port)) await settle(port, ids);
  const stats = await outcome(async () => statsView(await port.getStats(), cache));
  return { steps, readBack, stats, cleared: await outcome(async () => (await port.clearAll()).cleared) };
}

/** Runs the history on the model and on one back end at the same instants, and returns both traces. */
async function lockstep(system: Sessions, ops: FaultOp[], ids: string[], objects: boolean, evictAfterEvery: boolean): Promise<{ model: Trace; system: Trace }> {
  const model = theModel();
  const modelSteps: (Outcome | undefined)[] = [];
  const systemSteps: (Outcome | undefined)[] = [];
  const faulty = ops.some((op) => op.kind === "outage" || op.kind === "commitFails");
  const modelIds: string[] = [];
  const systemIds: string[] = [];
  await system.clearAll();
  for (const op of ops) {
    if (op.kind === "advance") {
      testClock.advance(op.ms);
      continue;
    }
    if (op.kind === "outage") {
      registryFault.mode = op.on ? "throw" : "none";
      continue;
    }
    if (op.kind === "commitFails") {
      const id = ids[op.op.s]!;
      commitFault.target = env.SESSIONS.idFromName(id);
      commitFault.count = 1;
      let actual: Outcome | undefined;
      try {
        actual = await step(system, op.op, id, objects, systemIds);
      } catch (err) {
        // The commit failed: the object reset and nothing changed, as the model leaves it.
        if (String(err).includes("injected commit failure")) continue;
        throw err;
      } finally {
        commitFault.count = 0;
      }
      systemSteps.push(actual);
      modelSteps.push(await step(model, op.op, id, false, modelIds));
      continue;
    }
    const id = ids[op.s]!;
    modelSteps.push(await step(model, op, id, false, modelIds));
    systemSteps.push(await step(system, op, id, objects, systemIds));
    if (objects && evictAfterEvery) await evictDurableObject(env.SESSIONS.get(env.SESSIONS.idFromName(id))).catch(() => undefined);
  }
  // The objects first: their convergence moves the clock the model then reads.
  const systemTrace = await finish(system, ids, systemSteps, !objects, faulty);
  return { model: await finish(model, ids, modelSteps, !objects), system: systemTrace };
}

async function check(system: () => Sessions, objects: boolean, ops: FaultOp[], evictAfterEvery = false): Promise<void> {
  const { model, system: actual } = await lockstep(system(), ops, historyIds(), objects, evictAfterEvery);
  expect(withoutKeyValues(actual)).toEqual(withoutKeyValues(model));
}

const histories = (maxLength: number) => fc.array(opArb, { minLength: 1, maxLength });

describe("model-based: the facade over the Durable Objects agrees with the model on random histories", () => {
  it(`${runs} random histories`, async () => {
    await fc.assert(
      fc.asyncProperty(histories(25), (ops) => check(objectsFacade, true, ops)),
      { numRuns: runs, seed, verbose: 1 },
    );
    // About 40 s alone; a clean-clone CI run beside the rest of the suite takes longer.
  }, 240_000);

  it("with the object evicted between every pair of operations", async () => {
    await fc.assert(
      fc.asyncProperty(histories(15), (ops) => check(objectsFacade, true, ops, true)),
      {
        numRuns: Math.max(20, Math.round(runs / 6)),
        seed,
        verbose: 1,
      },
    );
  });
});

describe("model-based: with registry outages and failed commits, the objects' stats converge to the model's", () => {
  it("random histories, compared after the documented convergence time", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(faultyOpArb, { minLength: 1, maxLength: 25 }), (ops) => check(objectsFacade, true, ops)),
        { numRuns: Math.max(20, Math.round(runs / 6)), seed, verbose: 1 },
      );
    } finally {
      registryFault.mode = "none";
      commitFault.count = 0;
      vi.restoreAllMocks();
    }
  });
});

describe("model-based: the facade over the in-memory map (MemoryStore) agrees with the model on random histories", () => {
  it(`${runs} random histories`, async () => {
    await fc.assert(
      fc.asyncProperty(histories(25), (ops) => check(memoryFacade, false, ops)),
      { numRuns: runs, seed, verbose: 1 },
    );
  });
});
