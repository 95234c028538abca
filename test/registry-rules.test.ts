/**
 * The shard's rules for deliveries (src/session/registry.ts), against the contract:
 * whatever order a session's deliveries land in, and however often, the shard ends
 * holding the session's latest state, and a removed incarnation never comes back.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkAt, CHECK_LEAD_MS, decideUpsert, reportsUsage, type RowState } from "../src/session/registry";
import type { Entry } from "../src/session/types";

type Delivery = { kind: "upsert"; row: RowState } | { kind: "remove"; inc: string };

/** A shard holding one session ID, applying deliveries by the rules. */
function shard() {
  let held: RowState | undefined;
  const retired = new Set<string>();
  return {
    upsert(row: RowState) {
      const d = decideUpsert(held, retired.has(row.inc), row);
      if (d.kind === "stale") {
        if (d.retire) retired.add(d.retire);
        return;
      }
      if (d.kind === "replace") retired.add(d.retire);
      if (d.kind === "refresh") held = { ...held!, expiresAt: Math.max(held!.expiresAt, row.expiresAt) };
      else held = row;
    },
    remove(inc: string) {
      retired.add(inc);
      if (held?.inc === inc) held = undefined;
    },
    apply(d: Delivery) {
      if (d.kind === "upsert") this.upsert(d.row);
      else this.remove(d.inc);
    },
    get held() {
      return held;
    },
  };
}

/**
 * What one session object sends over a history, as the contract says it numbers them:
 * each creation or model change a higher version, a new incarnation after the last.
 */
function history(steps: ("create" | "change" | "end")[], start: number): { sent: Delivery[]; last: RowState | undefined } {
  const sent: Delivery[] = [];
  let current: RowState | undefined;
  let version = -1;
  let t = start;
  steps.forEach((step, i) => {
    t += i % 3; // some steps share an instant
    if (step === "create" && !current) {
      current = { id: "s", inc: `inc-${i}`, createdAt: t, version: ++version, model: `m${i}`, tier: "SIMPLE", expiresAt: t + 1000 };
      sent.push({ kind: "upsert", row: current });
    } else if (step === "change" && current) {
      current = { ...current, version: ++version, model: `m${i}`, expiresAt: t + 1000 };
      sent.push({ kind: "upsert", row: current });
    } else if (step === "end" && current) {
      sent.push({ kind: "remove", inc: current.inc });
      current = undefined;
    }
  });
  return { sent, last: current };
}

describe("deliveries, in any order and repeated, leave the latest state", () => {
  it("the last delivery the session sent decides, whatever order the others land in", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("create" as const, "change" as const, "end" as const), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (steps, noise) => {
          const { sent, last } = history(steps, 1_000);
          if (sent.length === 0) return;
          // Every delivery but the last may land late, twice, in any order; the last lands after the
          // session's final state was sent (a session retries until the shard takes its latest state).
          const early = sent.slice(0, -1);
          const order = [...early, ...noise.map((n) => early[n % Math.max(1, early.length)]!).filter(Boolean)];
          for (let i = order.length - 1; i > 0; i--) {
            const j = noise[i % Math.max(1, noise.length)]! % (i + 1) || 0;
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          const s = shard();
          const lastSent = sent.at(-1)!;
          // Half the early ones land before the last, the rest after it.
          const cut = Math.floor(order.length / 2);
          for (const d of order.slice(0, cut)) s.apply(d);
          s.apply(lastSent);
          for (const d of order.slice(cut)) s.apply(d);
          expect(s.held?.inc).toBe(last?.inc);
          expect(s.held?.model).toBe(last?.model);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("what a session answers when asked is taken whatever its version, but never over a retired incarnation", () => {
    const row: RowState = { id: "s", inc: "a", createdAt: 1, version: 3, model: "m", tier: "SIMPLE", expiresAt: 10 };
    expect(decideUpsert(undefined, true, row, true).kind).toBe("stale");
    expect(decideUpsert({ inc: "b", createdAt: 5, version: 9, expiresAt: 10 }, false, row, true)).toEqual({ kind: "replace", retire: "b" });
    // Same incarnation and version, as a row and a session stored before versions exist both read: the answer's model is taken.
    expect(decideUpsert({ inc: "a", createdAt: 1, version: 3, expiresAt: 10 }, false, row, true).kind).toBe("update");
    expect(decideUpsert({ inc: "a", createdAt: 1, version: 3, expiresAt: 10 }, false, row).kind).toBe("refresh");
  });
});

describe("when a shard checks a row", () => {
  it("shortly before its deadline hint while that is ahead, and just after it once it is near", () => {
    expect(checkAt(100_000, 0)).toBe(100_000 - CHECK_LEAD_MS);
    expect(checkAt(100_000, 100_000 - CHECK_LEAD_MS)).toBe(100_001);
    expect(checkAt(100_000, 200_000)).toBe(200_000);
  });
});

describe("when a session reports its usage", () => {
  /** docs/http-api.md "Stats and clear-all": at most once a minute, a change of token totals, cost, strikes or request count. */
  const MINUTE = 60_000;
  const e: Entry = {
    model: "m",
    tier: "SIMPLE",
    createdAt: 0,
    lastUsedAt: 0,
    requestCount: 1,
    recentHashes: [],
    strikes: 0,
    escalated: false,
    userExplicit: false,
    sessionCostMicros: 0,
  };
  const changes: [string, Entry][] = [
    ["cost", { ...e, sessionCostMicros: 5 }],
    ["strikes", { ...e, strikes: 1 }],
    ["requests", { ...e, requestCount: 2 }],
    ["input tokens", { ...e, inputTokens: 10 }],
    ["cached input tokens", { ...e, cachedInputTokens: 3 }],
  ];

  it("reports a change of any figure once its last report is a minute old, and never sooner", () => {
    for (const [name, after] of changes) {
      expect(reportsUsage(e, after, 0, MINUTE), name).toBe(true);
      expect(reportsUsage(e, after, undefined, 1), name).toBe(true);
      expect(reportsUsage(e, after, 0, MINUTE - 1), name).toBe(false);
    }
  });

  it("reports nothing when no figure moved (absent tokens read as 0), or with no entry before or after", () => {
    expect(reportsUsage(e, { ...e, inputTokens: 0, cachedInputTokens: 0 }, 0, MINUTE)).toBe(false);
    expect(reportsUsage(e, { ...e, lastUsedAt: 5, recentHashes: ["h"] }, 0, MINUTE)).toBe(false);
    expect(reportsUsage(undefined, e, 0, MINUTE)).toBe(false);
    expect(reportsUsage(e, undefined, 0, MINUTE)).toBe(false);
  });
});
