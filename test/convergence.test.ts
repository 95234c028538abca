/**
 * The registry converges to the sessions: every window in which a fault used to
 * leave a row without a session, or a live session without a row, reproduced
 * with the fault injected the way it happens (a commit that fails after the
 * method returned, a reset between two steps, a delivery that lands after its
 * sender gave up), then the documented convergence time, then a comparison of
 * what the registry counts with what the public API finds.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { freshId } from "./support/back-ends";
import { converge, counted, found, registryCaughtUp } from "./support/converge";
import { ADMIN_TOKEN, call } from "./support/http";
import { storedState, stubOf } from "./support/objects";
import { rpcFailure } from "./support/rpc";
import { blockClears, commitFault, holdDeliveries, registryFault, testClock } from "./support/worker";

const svc = exports.SessionService;
const TIMEOUT_MS = 1_800_000; // SESSION_TIMEOUT_MS in wrangler.toml
const REGISTRY_TIMEOUT_MS = 1_000; // vitest.config.ts
const LATE_MS = REGISTRY_TIMEOUT_MS + 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(() => {
  registryFault.mode = "none";
  registryFault.delayMs = 0;
  registryFault.resetCaller = "none";
  commitFault.count = 0;
  commitFault.target = null;
  vi.restoreAllMocks();
});

/** Quiet: injected faults are logged by the code under test. */
function quiet() {
  vi.spyOn(console, "error").mockImplementation(() => undefined);
}

async function expectConverged(ids: string[]): Promise<void> {
  await converge();
  expect(await counted(ids)).toEqual(await found(ids));
}

const failCommitOf = (id: string) => {
  commitFault.target = env.SESSIONS.idFromName(id);
  commitFault.count = 1;
};

type Step = "create" | "model change" | "clear" | "expiry";
const steps: Record<Step, { prepare: (id: string) => Promise<unknown>; run: (id: string) => Promise<unknown> }> = {
  create: { prepare: async () => undefined, run: (id) => svc.setSession(id, "gemini-2.5-flash", "SIMPLE") },
  "model change": { prepare: (id) => svc.setSession(id, "gemini-2.5-flash", "SIMPLE"), run: (id) => svc.escalateSession(id) },
  clear: { prepare: (id) => svc.setSession(id, "gemini-2.5-flash", "SIMPLE"), run: (id) => svc.clearSession(id) },
  expiry: {
    prepare: async (id) => {
      await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
      await registryCaughtUp();
      testClock.advance(TIMEOUT_MS + 1);
    },
    run: (id) => runDurableObjectAlarm(stubOf(id)),
  },
};

type Fault = "the commit fails after the call returned" | "a reset before the delivery lands" | "a reset after the delivery lands" | "the delivery lands late";
const faults: Record<Fault, { arm: (id: string) => void; after?: () => Promise<unknown> }> = {
  "the commit fails after the call returned": { arm: failCommitOf },
  "a reset before the delivery lands": { arm: () => (registryFault.resetCaller = "before") },
  "a reset after the delivery lands": { arm: () => (registryFault.resetCaller = "after") },
  "the delivery lands late": { arm: () => (registryFault.delayMs = LATE_MS), after: () => sleep(LATE_MS + 200) },
};

describe("a fault between any two steps: the registry converges to the sessions", () => {
  for (const [stepName, step] of Object.entries(steps)) {
    for (const [faultName, fault] of Object.entries(faults)) {
      it(`${stepName}: ${faultName}`, async () => {
        quiet();
        const id = freshId("window");
        await step.prepare(id);
        await registryCaughtUp();
        fault.arm(id);
        await step.run(id).catch(() => undefined);
        await fault.after?.();
        registryFault.resetCaller = "none";
        registryFault.delayMs = 0;
        commitFault.count = 0;
        await expectConverged([id]);
      });
    }
  }
});

describe("the windows that used to leave the registry wrong", () => {
  it("a reset between the registry write and the local write of a creation leaves no row without a session", async () => {
    quiet();
    const id = freshId("create-reset");
    registryFault.resetCaller = "after";
    await svc.setSession(id, "m", "SIMPLE").catch(() => undefined);
    registryFault.resetCaller = "none";
    await expectConverged([id]);
  });

  it("a creation whose commit fails after the call returned leaves no row", async () => {
    quiet();
    const id = freshId("create-commit");
    failCommitOf(id);
    expect(await rpcFailure(svc.setSession(id, "m", "SIMPLE"))).toBe("internal_error: internal error");
    expect(await svc.getSession(id)).toBeNull();
    await expectConverged([id]);
    expect(await counted([id])).toEqual(new Map());
  });

  it("a creation whose delivery lands after it gave up: the session exists and is counted once", async () => {
    quiet();
    const id = freshId("create-late");
    registryFault.delayMs = LATE_MS;
    const created = await svc.setSession(id, "m", "SIMPLE").catch(() => null);
    await sleep(LATE_MS + 200);
    registryFault.delayMs = 0;
    expect(created).not.toBeNull();
    await expectConverged([id]);
    expect(await counted([id])).toEqual(new Map([[id, "m/SIMPLE"]]));
  });

  it("a model change whose delivery lands late never overwrites the later one", async () => {
    quiet();
    const id = freshId("late-version");
    await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    await registryCaughtUp();
    registryFault.delayMs = LATE_MS;
    await svc.escalateSession(id).catch(() => undefined); // -> MEDIUM, its delivery lands late
    registryFault.delayMs = 0;
    await sleep(REGISTRY_TIMEOUT_MS + 100); // the sender has given up on it
    await svc.escalateSession(id).catch(() => undefined); // -> COMPLEX
    await registryCaughtUp();
    await sleep(LATE_MS); // the late delivery has landed by now
    expect(await counted([id])).toEqual(await found([id]));
    expect((await svc.getSession(id))?.tier).toBe("COMPLEX");
    await expectConverged([id]);
  });

  it("a model change whose commit fails leaves the old model in the registry", async () => {
    quiet();
    const id = freshId("model-commit");
    await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    await registryCaughtUp();
    failCommitOf(id);
    expect(await rpcFailure(svc.escalateSession(id))).toBe("internal_error: internal error");
    await expectConverged([id]);
    expect(await counted([id])).toEqual(new Map([[id, "gemini-2.5-flash/SIMPLE"]]));
  });

  it("a clear of one session interrupted after its row went leaves no live session uncounted", async () => {
    quiet();
    const id = freshId("clear-reset");
    await svc.setSession(id, "m", "SIMPLE");
    await registryCaughtUp();
    registryFault.resetCaller = "after";
    await svc.clearSession(id).catch(() => undefined);
    registryFault.resetCaller = "none";
    await expectConverged([id]);
  });

  it("a clear whose remove lands after it gave up leaves no live session uncounted", async () => {
    quiet();
    const id = freshId("clear-late");
    await svc.setSession(id, "m", "SIMPLE");
    await registryCaughtUp();
    registryFault.delayMs = LATE_MS;
    await svc.clearSession(id).catch(() => undefined);
    await sleep(LATE_MS + 200);
    registryFault.delayMs = 0;
    await expectConverged([id]);
  });

  it("a session past its deadline is not counted, even before its alarm fires", async () => {
    const id = freshId("expired-count");
    await svc.setSession(id, "m", "SIMPLE");
    await registryCaughtUp();
    expect(await counted([id])).toEqual(new Map([[id, "m/SIMPLE"]]));
    testClock.advance(TIMEOUT_MS + 1);
    expect(await counted([id])).toEqual(new Map());
    const stats = (await call("GET", "/v1/stats?limit=1000", { token: ADMIN_TOKEN })).json;
    expect(stats.sessions.map((s: { id: string }) => s.id)).not.toContain(id.slice(0, 8) + "...");
  });

  it("a session in use keeps being counted past the deadline its row was written with", async () => {
    const id = freshId("in-use");
    await svc.setSession(id, "m", "SIMPLE");
    await registryCaughtUp();
    for (let i = 0; i < 4; i++) {
      testClock.advance(TIMEOUT_MS / 2);
      await svc.touchSession(id);
      await registryCaughtUp();
      expect(await counted([id])).toEqual(new Map([[id, "m/SIMPLE"]]));
    }
  });

  it("a registry outage longer than the platform's alarm retries: creations and changes succeed, and the registry catches up", async () => {
    quiet();
    const ids = [freshId("outage-a"), freshId("outage-b"), freshId("outage-c")];
    const [a, b, c] = ids as [string, string, string];
    await svc.setSession(c, "gemini-2.5-flash", "SIMPLE");
    await registryCaughtUp();
    registryFault.mode = "throw";
    await svc.setSession(a, "gemini-2.5-flash", "SIMPLE");
    await svc.setSession(b, "kimi-k2.5", "MEDIUM");
    await svc.escalateSession(a);
    await svc.clearSession(c);
    const before = registryFault.calls;
    // An hour of outage, the sessions in use all along: every retry fails, far more than six times each.
    for (let i = 0; i < 6; i++) {
      await converge(10 * 60_000);
      await svc.touchSession(a);
      await svc.touchSession(b);
    }
    expect(registryFault.calls - before).toBeGreaterThan(3 * 6);
    registryFault.mode = "none";
    await expectConverged(ids);
    expect(await counted(ids)).toEqual(
      new Map([
        [a, "kimi-k2.5/MEDIUM"],
        [b, "kimi-k2.5/MEDIUM"],
      ]),
    );
  });

  it("a row whose session no longer exists is found and dropped without anyone reading that session", async () => {
    const id = freshId("orphan");
    const shard = env.REGISTRY.get(env.REGISTRY.idFromName("shard-0"));
    // A row for a session nothing ever created, as a lost write would leave.
    await shard.deliver({
      kind: "upsert",
      row: { id, inc: "x", version: 0, model: "m", tier: "SIMPLE", createdAt: Date.now(), expiresAt: Date.now() + TIMEOUT_MS },
    });
    const rows = async () => (await shard.page(null, 1_000_000, false)).rows.filter((r) => r.id === id).length;
    expect(await rows()).toBe(1);
    await converge(TIMEOUT_MS, 5 * 60_000);
    expect(await rows()).toBe(0);
    expect(await storedState(id)).toEqual({ kv: undefined, alarm: null });
  });
});

describe("clear-all races creations and model changes", () => {
  it("a session created before the clear began, whose row lands after it, is removed; one created after survives", async () => {
    quiet();
    const early = freshId("race-early");
    const late = freshId("race-late");
    const held = holdDeliveries();
    await svc.setSession(early, "m", "SIMPLE"); // answered; its row is held back
    testClock.advance(1);
    const cleared = await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
    expect(cleared.status).toBe(200);
    testClock.advance(1);
    held.release();
    await svc.setSession(late, "m", "SIMPLE");
    await expectConverged([early, late]);
    expect(await svc.getSession(early)).toBeNull();
    expect(await counted([early, late])).toEqual(new Map([[late, "m/SIMPLE"]]));
  });

  it("a model change and a creation during a clear that holds the session: the old incarnation goes, the new one stays", async () => {
    quiet();
    const id = freshId("race-model");
    const other = freshId("race-new");
    await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    await registryCaughtUp();
    const gate = blockClears();
    testClock.advance(1);
    const clearing = call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
    await gate.blocked; // the clear-all is certainly under way, holding this session
    await svc.escalateSession(id); // lands while the clear holds the row
    await svc.setSession(other, "m", "SIMPLE");
    await registryCaughtUp();
    gate.release();
    expect((await clearing).status).toBe(200);
    await expectConverged([id, other]);
    expect(await svc.getSession(id)).toBeNull();
    expect(await counted([id, other])).toEqual(new Map([[other, "m/SIMPLE"]]));
  });
});
