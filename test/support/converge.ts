/**
 * Driving the registry to convergence under the test clock, and comparing what
 * it counts with what the sessions say through the public API.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { armedAlarms, pendingOutboxes, testClock } from "./worker";

/**
 * The documented convergence bound (docs/design.md, "The registry"): once every object is
 * reachable, the registry matches the sessions within the longest retry wait (10 minutes)
 * plus a minute for the passes that follow it.
 */
export const CONVERGENCE_BOUND_MS = 11 * 60_000;
/** REGISTRY_SHARDS in wrangler.toml. */
const SHARDS = 16;

const shardStubs = () => Array.from({ length: SHARDS }, (_, k) => env.REGISTRY.get(env.REGISTRY.idFromName(`shard-${k}`)));

/**
 * Runs every alarm that is due by the test clock, until none is, as the platform
 * would have. (The platform fires alarms by the real clock, which the test clock
 * has left behind.) The objects' alarms are known from `armedAlarms`.
 */
export async function runDueAlarms(): Promise<void> {
  for (let round = 0; round < 200; round++) {
    const due = [...armedAlarms].filter(([, { at }]) => at <= testClock.peek());
    if (due.length === 0) return;
    for (const [id, { namespace }] of due) {
      armedAlarms.delete(id);
      const ns = env[namespace] as unknown as DurableObjectNamespace;
      await runDurableObjectAlarm(ns.get(ns.idFromString(id)));
    }
  }
  throw new Error("alarms were still due after 200 rounds");
}

/** Lets `ms` of test time pass in steps, firing what falls due as the platform would. */
export async function converge(ms = CONVERGENCE_BOUND_MS, stepMs = 60_000): Promise<void> {
  await runDueAlarms();
  for (let passed = 0; passed < ms; passed += stepMs) {
    testClock.advance(Math.min(stepMs, ms - passed));
    await runDueAlarms();
  }
  // Deliveries still on their way land now, late.
  await registryCaughtUp();
}

/** What stats count for these sessions: key → "model/tier", from every shard's rows. */
export async function counted(ids: readonly string[]): Promise<Map<string, string>> {
  const wanted = new Set(ids);
  const out = new Map<string, string>();
  for (const shard of shardStubs()) {
    for (const row of (await shard.page(null, 1_000_000, false)).rows) if (wanted.has(row.id)) out.set(row.id, `${row.model}/${row.tier}`);
  }
  return out;
}

/** What the public API finds for these sessions: key → "model/tier" for each that exists. */
export async function found(ids: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of ids) {
    const entry = await exports.SessionService.getSession(id);
    if (entry) out.set(id, `${entry.model}/${entry.tier}`);
  }
  return out;
}

/**
 * Lets the registry catch up, as a read a moment later would see it: the alarm of
 * each session with a pending outbox waits for its delivery and sends what is
 * left, then the shards run the checks that are due by the test clock (a test
 * that moves the clock on skips the instants the platform would have run them).
 * For tests about what stats show once the registry has caught up.
 */
export async function registryCaughtUp(): Promise<void> {
  await deliveriesSettled();
  await runDueAlarms();
}

async function deliveriesSettled(): Promise<void> {
  for (let round = 0; round < 20 && pendingOutboxes.size > 0; round++) {
    for (const id of pendingOutboxes) {
      const stub = env.SESSIONS.get(env.SESSIONS.idFromString(id));
      if (!(await runDurableObjectAlarm(stub))) pendingOutboxes.delete(id);
    }
  }
}
