/**
 * The same scenario list, run against MemoryStore and against the Durable
 * Objects over RPC, must give identical results step for step.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { configFor } from "../src/session/config";
import { freshId, memoryPort, outcome, rpcPort, type Outcome, type SessionPort } from "./support/ports";
import { testClock } from "./support/worker";

type Step = { advance: number } | ((port: SessionPort, ids: string[]) => Promise<unknown>);

const timeout = configFor(env).timeoutMs;
const body = (text: string, model = "auto") => ({ model, messages: [{ role: "user", content: text }] });

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
    ...["a", "a", "a", "b", "b"].map((h): Step => (p, [a]) => p.recordRequestHash(a!, h)),
    (p, [a]) => p.escalateSession(a!),
    (p, [a]) => p.escalateSession(a!),
    (p, [a]) => p.escalateSession(a!),
    (p, [a]) => p.escalateSession(a!),
    (p, [b]) => p.escalateSession(b! + "-missing"),
  ],
  "explicit pins resist escalation": [
    (p, [a]) => p.setSession(a!, "my-model", "", true),
    (p, [a]) => p.escalateSession(a!),
    (p, [a]) => p.getSession(a!),
  ],
  "cost": [
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
  "clear twice": [
    (p, [a]) => p.setSession(a!, "m", "SIMPLE"),
    (p, [a]) => p.clearSession(a!),
    (p, [a]) => p.clearSession(a!),
    (p, [a]) => p.getSession(a!),
  ],
  "bad input": [
    (p) => p.getSession(""),
    (p) => p.getSession("x".repeat(257)),
    (p) => p.getSession("bad\nid"),
    (p, [a]) => p.setSession(a!, "", "SIMPLE"),
    (p, [a]) => p.setSession(a!, "m", "TINY" as never),
    (p, [a]) => p.recordRequestHash(a!, ""),
    (p, [a]) => p.getSession(a!),
    (p, [a]) => p.setSession(a!, "m", "SIMPLE"),
  ],
  "resolve: pin, upgrade, loop, cost": [
    (p, [a]) => p.resolve({ sessionId: a, body: body("hi"), routed: { model: "gemini-2.5-flash", tier: "SIMPLE" } }),
    (p, [a]) => p.resolve({ sessionId: a, body: body("hard"), routed: { model: "gemini-3.1-pro", tier: "COMPLEX" }, costMicros: 10 }),
    (p, [a]) => p.resolve({ sessionId: a, body: body("easy"), routed: { model: "gemini-2.5-flash", tier: "SIMPLE" } }),
    (p, [a]) => p.resolve({ sessionId: a, body: body("easy"), routed: { model: "gemini-2.5-flash", tier: "SIMPLE" } }),
    (p, [a]) => p.resolve({ sessionId: a, body: body("easy"), routed: { model: "gemini-2.5-flash", tier: "SIMPLE" } }),
    (p, [a]) => p.resolve({ sessionId: a, body: body("mine", "my-model") }),
    (p, [a]) => p.resolve({ sessionId: a, body: body("mine", "auto") }),
    (p, [a]) => p.getSession(a!),
  ],
};

async function play(port: SessionPort, steps: Step[], ids: string[]): Promise<Outcome[]> {
  const log: Outcome[] = [];
  for (const step of steps) {
    if (typeof step === "function") log.push(await outcome(() => step(port, ids)));
    else testClock.advance(step.advance);
  }
  return log;
}

describe("MemoryStore and the Durable Objects agree", () => {
  for (const [name, steps] of Object.entries(scenarios)) {
    it(name, async () => {
      const ids = [freshId("parity"), freshId("parity")];
      const start = testClock.offsetMs;
      const model = await play(memoryPort(), steps, ids);
      testClock.offsetMs = start;
      const system = await play(rpcPort(), steps, ids);
      expect(system).toEqual(model);
      // The scenario must exercise real state, not only errors or nulls.
      expect(model.some((o) => "ok" in o && o.ok !== null && typeof o.ok === "object")).toBe(true);
    });
  }
});
