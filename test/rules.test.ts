import { describe, expect, it } from "vitest";
import { nextTier, tierRank } from "../src/session/tiers";
import { applyAddCost, applyEscalate, applyRecordHash, applySet, applyTouch, costOf, createEntry, isExpired } from "../src/session/entry";
import { SessionError } from "../src/session/errors";
import { defaultConfig } from "../src/session/config";
import { effectsOf, resolve } from "../src/session/rules";
import type { Entry, RoutedTier } from "../src/session/types";

const T0 = 1_700_000_000_000;

describe("tier order", () => {
  it("ranks SIMPLE 0, MEDIUM 1, COMPLEX 2, REASONING 3, and '' or unknown as 1", () => {
    expect(["SIMPLE", "MEDIUM", "COMPLEX", "REASONING", "", "BOGUS"].map(tierRank)).toEqual([0, 1, 2, 3, 1, 1]);
  });

  it("escalates one step: SIMPLE→MEDIUM, MEDIUM→COMPLEX, COMPLEX→REASONING, REASONING stays, '' (rank 1)→COMPLEX", () => {
    expect(nextTier("SIMPLE")).toBe("MEDIUM");
    expect(nextTier("MEDIUM")).toBe("COMPLEX");
    expect(nextTier("COMPLEX")).toBe("REASONING");
    expect(nextTier("REASONING")).toBe("REASONING");
    expect(nextTier("")).toBe("COMPLEX");
  });
});

describe("expiry", () => {
  it("expires only when idle strictly longer than the timeout", () => {
    const e = createEntry("m", "SIMPLE", false, T0);
    expect(isExpired(e, T0 + 1000, 1000)).toBe(false);
    expect(isExpired(e, T0 + 1001, 1000)).toBe(true);
  });
});

describe("set", () => {
  it("creates with createdAt = lastUsedAt = now, one request, empty hashes, no strikes, no cost", () => {
    expect(applySet(undefined, "m", "MEDIUM", false, T0)).toEqual({
      model: "m",
      tier: "MEDIUM",
      createdAt: T0,
      lastUsedAt: T0,
      requestCount: 1,
      recentHashes: [],
      strikes: 0,
      escalated: false,
      userExplicit: false,
      sessionCostMicros: 0,
    });
  });

  it("updates lastUsedAt and requestCount, and moves model and tier only when the model differs", () => {
    const e = { ...createEntry("m", "SIMPLE", false, T0), strikes: 2, sessionCostMicros: 5, recentHashes: ["h"] };
    const same = applySet(e, "m", "COMPLEX", false, T0 + 5);
    expect(same).toMatchObject({ model: "m", tier: "SIMPLE", lastUsedAt: T0 + 5, requestCount: 2, strikes: 2, sessionCostMicros: 5, recentHashes: ["h"] });
    const moved = applySet(e, "n", "COMPLEX", false, T0 + 6);
    expect(moved).toMatchObject({ model: "n", tier: "COMPLEX", createdAt: T0, requestCount: 2 });
  });

  it("keeps userExplicit sticky once true", () => {
    const explicit = applySet(undefined, "m", "", true, T0);
    expect(applySet(explicit, "n", "SIMPLE", false, T0).userExplicit).toBe(true);
    expect(applySet(createEntry("m", "SIMPLE", false, T0), "m", "SIMPLE", true, T0).userExplicit).toBe(true);
  });
});

describe("touch", () => {
  it("bumps lastUsedAt and requestCount only", () => {
    const e = createEntry("m", "SIMPLE", false, T0);
    expect(applyTouch(e, T0 + 9)).toEqual({ ...e, lastUsedAt: T0 + 9, requestCount: 2 });
  });
});

describe("recordRequestHash", () => {
  it("gives 0,1,2,2,3 for a,a,a,b,b and keeps the last 3 hashes", () => {
    let e = createEntry("m", "SIMPLE", false, T0);
    const strikes: number[] = [];
    for (const h of ["a", "a", "a", "b", "b"]) {
      e = applyRecordHash(e, h);
      strikes.push(e.strikes);
    }
    expect(strikes).toEqual([0, 1, 2, 2, 3]);
    expect(e.recentHashes).toEqual(["a", "b", "b"]);
  });

  it("never resets strikes", () => {
    let e = createEntry("m", "SIMPLE", false, T0);
    for (const h of ["a", "a", "b", "c", "d"]) e = applyRecordHash(e, h);
    expect(e.strikes).toBe(1);
  });
});

describe("escalate", () => {
  const models = { MEDIUM: "mid", COMPLEX: "big" };

  it("moves one tier up, marks escalated, keeps strikes, and follows TIER_MODELS", () => {
    const e = { ...createEntry("small", "SIMPLE", false, T0), strikes: 3 };
    expect(applyEscalate(e, models)).toMatchObject({ tier: "MEDIUM", model: "mid", escalated: true, strikes: 3 });
  });

  it("keeps the model when TIER_MODELS does not name the new tier", () => {
    const e = createEntry("big", "COMPLEX", false, T0);
    expect(applyEscalate(e, models)).toMatchObject({ tier: "REASONING", model: "big", escalated: true });
  });

  it("leaves a userExplicit session unchanged", () => {
    const e = createEntry("mine", "", true, T0);
    expect(applyEscalate(e, models)).toBe(e);
  });
});

describe("cost", () => {
  it("adds micros and reports USD as micros / 1e6", () => {
    const e = applyAddCost(applyAddCost(createEntry("m", "SIMPLE", false, T0), 1200), 800);
    expect(costOf(e)).toEqual({ sessionCostMicros: 2000, costUSD: 0.002 });
  });

  it("refuses a total beyond a safe integer", () => {
    const e = applyAddCost(createEntry("m", "SIMPLE", false, T0), Number.MAX_SAFE_INTEGER);
    expect(() => applyAddCost(e, 1)).toThrow(SessionError);
  });
});

describe("stats merge", () => {
  it("merges shard pages in ID order and stops at the limit", async () => {
    const { mergeSorted } = await import("../src/session/stats");
    const row = (id: string) => ({ id, model: "m", tier: "SIMPLE" as const, createdAt: 0, sessionCostMicros: 0, strikes: 0, requestCount: 0, paused: false });
    const merged = mergeSorted([[row("a"), row("d")], [], [row("b"), row("c"), row("e")]], 4);
    expect(merged.map((r) => r.id)).toEqual(["a", "b", "c", "d"]);
    expect(mergeSorted([[row("a")], [row("b")]], 10).map((r) => r.id)).toEqual(["a", "b"]);
  });
});

describe("registry effects: every model or tier change reaches the registry", () => {
  const TIMEOUT = defaultConfig.timeoutMs;
  const tierModels = { MEDIUM: "kimi-k2.5" };
  const config = { ...defaultConfig, tierModels };

  it("upserts when escalation moves the tier but keeps the model", () => {
    const e = createEntry("kimi-k2.5", "SIMPLE", false, T0);
    const next = applyEscalate(e, tierModels);
    expect(next).toMatchObject({ model: "kimi-k2.5", tier: "MEDIUM" });
    expect(effectsOf(e, e, next, T0, TIMEOUT).registry).toEqual({ kind: "upsert", entry: next });
  });

  it("upserts on a model change and on creation, removes on delete", () => {
    const e = createEntry("m", "SIMPLE", false, T0);
    const moved = applySet(e, "n", "SIMPLE", false, T0);
    expect(effectsOf(e, e, moved, T0, TIMEOUT).registry).toEqual({ kind: "upsert", entry: moved });
    expect(effectsOf(undefined, undefined, e, T0, TIMEOUT).registry).toEqual({ kind: "upsert", entry: e });
    expect(effectsOf(e, e, undefined, T0, TIMEOUT).registry).toEqual({ kind: "remove" });
  });

  it("stays silent on touch, hash, cost and an escalation that keeps model and tier", () => {
    const e = createEntry("top", "REASONING", false, T0);
    for (const next of [applyTouch(e, T0 + 1), applyRecordHash(e, "h"), applyAddCost(e, 5), applyEscalate(e, tierModels)]) {
      expect(effectsOf(e, e, next, T0, TIMEOUT)).toMatchObject({ changed: true, registry: undefined });
    }
  });

  it("upserts when an operator pauses or resumes the session: stats show it at once, not with the next usage report", () => {
    const e = createEntry("m", "SIMPLE", false, T0);
    const paused: Entry = { ...e, paused: T0 + 5 };
    expect(effectsOf(e, e, paused, T0 + 5, TIMEOUT).registry).toEqual({ kind: "upsert", entry: paused });
    const resumed: Entry = { ...paused };
    delete resumed.paused;
    expect(effectsOf(paused, paused, resumed, T0 + 9, TIMEOUT).registry).toEqual({ kind: "upsert", entry: resumed });
    // A step on a paused session that leaves it paused (a read of its cost, a hash) stays silent.
    expect(effectsOf(paused, paused, applyRecordHash(paused, "h"), T0 + 6, TIMEOUT).registry).toBeUndefined();
  });

  it("reports a deadline that moves earlier (a settle closing the reservation that kept an idle session alive), and ends a session the step left expired", () => {
    const day = 24 * 60 * 60 * 1000;
    const e = { ...createEntry("m", "SIMPLE", false, T0), reservations: [{ id: "r", micros: 5, expiresAt: T0 + day }] };
    const settled = { ...e, reservations: [], lastUsedAt: T0 + 10 };
    expect(effectsOf(e, e, settled, T0 + 10, TIMEOUT).registry).toEqual({ kind: "upsert", entry: settled });
    // Closing it without restarting the idle time, past the timeout: the session ends in the same step.
    const closed = { ...e, reservations: [] };
    expect(effectsOf(e, e, closed, T0 + TIMEOUT + 1, TIMEOUT)).toMatchObject({ next: undefined, changed: true, registry: { kind: "remove" } });
    // A deadline that moves later (a touch) stays silent.
    expect(effectsOf(e, e, applyTouch(e, T0 + 1), T0 + 1, TIMEOUT).registry).toBeUndefined();
  });

  it("a resolve whose loop check escalates the tier with the same model upserts", () => {
    let e: Entry | undefined = createEntry("kimi-k2.5", "SIMPLE", false, T0);
    const req = { choice: { kind: "profile" as const, model: "kimi-k2.5", tier: "SIMPLE" as const }, hash: "h" };
    const ctx = { now: T0, config: { ...config, strikeThreshold: 1 }, newKey: (prefix: string) => `${prefix}test` };
    e = resolve(e, req, ctx).next;
    const step = resolve(e, req, ctx);
    expect(step.result).toMatchObject({ escalated: true, model: "kimi-k2.5", tier: "MEDIUM" });
    expect(effectsOf(e, e, step.next, T0, TIMEOUT).registry).toEqual({ kind: "upsert", entry: step.next });
  });
});

describe("resolve upgrade: a harder request moves the session up to `routed`", () => {
  const TIMEOUT = defaultConfig.timeoutMs;
  const ctx = { now: T0, config: { ...defaultConfig, tierModels: {} }, newKey: (prefix: string) => `${prefix}test` };
  const profile = (model: string, tier: RoutedTier) => ({ choice: { kind: "profile" as const, model, tier } });

  it("moves the tier up even when the routed model is the pinned one", () => {
    const e = createEntry("m", "SIMPLE", false, T0);
    const step = resolve(e, profile("m", "COMPLEX"), ctx);
    expect(step.result).toMatchObject({ model: "m", tier: "COMPLEX", pinned: true, requestCount: 2 });
    expect(effectsOf(e, e, step.next, T0, TIMEOUT).registry).toEqual({ kind: "upsert", entry: step.next });
  });

  it("a later loop escalation starts from the routed tier, not the old one", () => {
    let e: Entry | undefined = createEntry("m", "SIMPLE", false, T0);
    e = resolve(e, profile("m", "COMPLEX"), ctx).next;
    expect(applyEscalate(e!, {}).tier).toBe("REASONING");
  });

  it("moves model and tier together to a new routed model, and never down", () => {
    const e = createEntry("m", "MEDIUM", false, T0);
    expect(resolve(e, profile("n", "REASONING"), ctx).result).toMatchObject({ model: "n", tier: "REASONING" });
    expect(resolve(e, profile("n", "SIMPLE"), ctx).result).toMatchObject({ model: "m", tier: "MEDIUM" });
    expect(resolve(e, profile("m", "MEDIUM"), ctx).result).toMatchObject({ model: "m", tier: "MEDIUM" });
  });

  it("leaves PUT (reference SetSession) as it is: same model keeps the tier", () => {
    const e = createEntry("m", "SIMPLE", false, T0);
    expect(applySet(e, "m", "COMPLEX", false, T0).tier).toBe("SIMPLE");
  });

  it("keeps a userExplicit session's model and tier", () => {
    const e = createEntry("mine", "", true, T0);
    expect(resolve(e, profile("mine", "REASONING"), ctx).result).toMatchObject({ model: "mine", tier: "" });
  });
});
