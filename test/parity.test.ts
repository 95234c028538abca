/**
 * Scripted scenarios, each run at the same instants on the independent model
 * (test/model/, written from the docs and the reference godoc) and on each
 * back end, through the same facade: the in-memory map (MemoryStore) and the
 * Durable Objects. Every step's result
 * must match the model's, then stats (after expiring what is due; each row's
 * usage figures and the totals for MemoryStore only) and clear-all.
 * The random histories in model-based.test.ts cover the same operations; these
 * scenarios pin the cases a random draw reaches rarely: exact expiry boundaries,
 * invalid input, cost overflow, and byModel beyond its 100 listed models.
 */
import { describe, expect, it } from "vitest";
import type { Sessions } from "../src/facade";
import type { ResolveCall } from "./model/model-sessions";
import { freshId, memoryFacade, objectsFacade, outcome, settle, statsView, testConfig, theModel, withoutKeyValues, type Outcome } from "./support/back-ends";
import { testClock } from "./support/worker";

/** The facade over a back end, or the model behind the same names; resolve takes the histories' inputs. */
type Target = Omit<Sessions | ReturnType<typeof theModel>, "resolve"> & { resolve(input: ResolveCall): Promise<unknown> };
type Step = { advance: number } | ((port: Target, ids: string[]) => Promise<unknown>);

const timeout = testConfig().timeoutMs;
const body = (text: string, model = "auto"): ResolveCall["body"] => ({ model, messages: [{ role: "user", content: text }] });
/** docs/http-api.md "Stats and clear-all": byModel lists at most 100 models; two more go to "(other)", with one literally named so. */
const MANY_MODELS = 102;

const scenarios: Record<string, Step[]> = {
  "create, read, update, touch": [
    (p, [a]) => p.getSession(a!),
    (p, [a]) => p.setSession(a!, "small", "SIMPLE"),
    { advance: 1000 },
    (p, [a]) => p.touchSession(a!),
    (p, [a]) => p.setSession(a!, "small", "COMPLEX"),
    (p, [a]) => p.setSession(a!, "big", "COMPLEX", true),
    (p, [a]) => p.setSession(a!, "other", "SIMPLE", false),
    (p, [a]) => p.getSession(a!),
  ],
  "strikes and escalation": [
    (p, [a]) => p.recordRequestHash(a!, "h"),
    (p, [a]) => p.setSession(a!, "gemini-2.5-flash", "SIMPLE"),
    ...["a", "a", "a", "b", "b"].map(
      (h): Step =>
        (p, [a]) =>
          p.recordRequestHash(a!, h),
    ),
    (p, [a]) => p.escalateSession(a!),
    (p, [a]) => p.escalateSession(a!),
    (p, [a]) => p.escalateSession(a!),
    (p, [a]) => p.escalateSession(a!),
    (p, [b]) => p.escalateSession(b! + "-missing"),
  ],
  "explicit pins resist escalation": [(p, [a]) => p.setSession(a!, "my-model", "", true), (p, [a]) => p.escalateSession(a!), (p, [a]) => p.getSession(a!)],
  cost: [
    (p, [a]) => p.addSessionCost(a!, 5),
    (p, [a]) => p.getSessionCostUSD(a!),
    (p, [a]) => p.setSession(a!, "m", "MEDIUM"),
    (p, [a]) => p.addSessionCost(a!, 1200),
    (p, [a]) => p.addSessionCost(a!, 0),
    (p, [a]) => p.getSessionCostUSD(a!),
    (p, [a]) => p.addSessionCost(a!, -1),
    (p, [a]) => p.addSessionCost(a!, 1.5),
    (p, [a]) => p.addSessionCost(a!, Number.MAX_SAFE_INTEGER),
    (p, [a]) => p.getSessionCostUSD(a!),
  ],
  "expiry at the boundary and re-creation": [
    (p, [a]) => p.setSession(a!, "m", "SIMPLE"),
    { advance: timeout },
    (p, [a]) => p.getSession(a!),
    (p, [a]) => p.touchSession(a!),
    { advance: timeout + 1 },
    (p, [a]) => p.getSession(a!),
    (p, [a]) => p.touchSession(a!),
    (p, [a]) => p.setSession(a!, "n", "COMPLEX"),
    (p, [a]) => p.getSession(a!),
  ],
  "clear twice": [(p, [a]) => p.setSession(a!, "m", "SIMPLE"), (p, [a]) => p.clearSession(a!), (p, [a]) => p.clearSession(a!), (p, [a]) => p.getSession(a!)],
  "bad input": [
    (p) => p.getSession(""),
    (p) => p.getSession("x".repeat(257)),
    (p) => p.getSession("bad\nid"),
    (p) => p.getSession("zero\u200bwidth"),
    (p) => p.getSession("lone\ud800half"),
    (p) => p.getSession("x".repeat(256)),
    (p, [a]) => p.setSession(a!, "", "SIMPLE"),
    (p, [a]) => p.setSession(a!, "m", "TINY" as never),
    (p, [a]) => p.recordRequestHash(a!, ""),
    (p, [a]) => p.getSession(a!),
    (p, [a]) => p.setSession(a!, "m", "SIMPLE"),
  ],
  "byModel lists the top 100 models and sums the rest under (other)": [
    ...Array.from(
      { length: MANY_MODELS },
      (_, i): Step =>
        (p, [a]) =>
          p.setSession(`${a}-${i}`, `model-${String(i % 101).padStart(3, "0")}`, "SIMPLE"),
    ),
    (p, [a]) => p.setSession(a!, "(other)", "MEDIUM"),
    { advance: 2500 },
    (p, [a]) => p.setSession(`${a}-0`, "__proto__", "REASONING"),
  ],
  "resolve: pin, upgrade, loop, cost": [
    (p, [a]) => p.resolve({ sessionId: a!, body: body("hi"), routed: { model: "gemini-2.5-flash", tier: "SIMPLE" } }),
    (p, [a]) => p.resolve({ sessionId: a!, body: body("hard"), routed: { model: "gemini-3.1-pro", tier: "COMPLEX" }, costMicros: 10 }),
    (p, [a]) => p.resolve({ sessionId: a!, body: body("easy"), routed: { model: "gemini-2.5-flash", tier: "SIMPLE" } }),
    (p, [a]) => p.resolve({ sessionId: a!, body: body("easy"), routed: { model: "gemini-2.5-flash", tier: "SIMPLE" } }),
    (p, [a]) => p.resolve({ sessionId: a!, body: body("easy"), routed: { model: "gemini-2.5-flash", tier: "SIMPLE" } }),
    (p, [a]) => p.resolve({ sessionId: a!, body: body("mine", "my-model") }),
    (p, [a]) => p.resolve({ sessionId: a!, body: body("mine", "auto") }),
    (p, [a]) => p.getSession(a!),
  ],
};

/** Plays the steps, then reads stats (with the usage figures when `usage`: statsView) and clears. */
async function play(port: Target, steps: Step[], ids: string[], usage: boolean): Promise<Outcome[]> {
  const log: Outcome[] = [];
  for (const step of steps) {
    if (typeof step === "function") log.push(await outcome(() => step(port, ids)));
    else testClock.advance(step.advance);
  }
  if (!("model" in port)) await settle(port as Sessions, ids);
  log.push(await outcome(async () => statsView(await port.getStats(), usage)));
  log.push(await outcome(async () => (await port.clearAll()).cleared));
  return log;
}

for (const [name, system] of [
  ["the facade over the in-memory map (MemoryStore)", memoryFacade],
  ["the facade over the Durable Objects", objectsFacade],
] as const) {
  describe(`${name} agrees with the model`, () => {
    for (const [scenario, steps] of Object.entries(scenarios)) {
      it(scenario, async () => {
        const ids = [freshId("parity"), freshId("parity")];
        const port = system() as unknown as Target;
        // Stats are global within this file's storage: start from none.
        await port.clearAll();
        const start = testClock.offsetMs;
        // MemoryStore's stats are exact; the registry's usage figures trail by design.
        const usage = system === memoryFacade;
        const expected = await play(theModel() as Target, steps, ids, usage);
        testClock.offsetMs = start;
        expect(withoutKeyValues(await play(port, steps, ids, usage))).toEqual(withoutKeyValues(expected));
        // The scenario must exercise real state, not only errors or nulls.
        expect(expected.some((o) => "ok" in o && o.ok !== null && typeof o.ok === "object")).toBe(true);
      });
    }
  });
}
