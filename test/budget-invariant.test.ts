/**
 * The budget's promise as a property, independent of any model: whatever the
 * order of reservations, settles at or below their reservation, budget changes
 * and expiries, a session's cost plus what it holds never passes its budget,
 * and a reservation is refused only when it would have passed it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../src/memory";
import { testClock } from "./support/worker";

const TTL_MS = 60_000;
const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" as const };

type Op =
  { kind: "reserve"; micros: number } | { kind: "settle"; k: number; fraction: number } | { kind: "budget"; micros: number } | { kind: "wait"; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("reserve" as const), micros: fc.integer({ min: 0, max: 300 }) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("settle" as const), k: fc.nat(40), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("budget" as const), micros: fc.integer({ min: 0, max: 2000 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("wait" as const), ms: fc.constantFrom(1, 30_000, TTL_MS, TTL_MS + 1) }), weight: 1 },
);

describe("a budget never overshoots", () => {
  it("cost + reserved ≤ budget after every step, and every refusal was needed", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2000 }), fc.array(op, { maxLength: 60 }), async (initial, ops) => {
        const store = new MemoryStore({ config: { reservationTtlMs: TTL_MS, timeoutMs: 10 * TTL_MS, budgetMicros: undefined }, sweepIntervalMs: 0 });
        const id = "invariant";
        const body = { model: "auto", messages: [{ role: "user", content: "go" }] };
        await store.resolve({ sessionId: id, body, routed: SIMPLE });
        await store.setBudget(id, initial);
        const handed: { id: string; micros: number }[] = [];
        for (const step of ops) {
          const before = (await store.getSession(id))!;
          if (step.kind === "reserve") {
            const fits =
              before.sessionCostMicros < before.budgetMicros! && before.sessionCostMicros + before.reservedMicros + step.micros <= before.budgetMicros!;
            try {
              const answer = await store.resolve({ sessionId: id, body, routed: SIMPLE, reserveMicros: step.micros });
              expect(fits).toBe(true);
              handed.push({ id: answer.reservationId!, micros: step.micros });
            } catch (err) {
              expect((err as { code?: string }).code).toBe("session_budget_exceeded");
              expect(fits).toBe(false);
            }
          } else if (step.kind === "settle" && handed.length > 0) {
            const r = handed[step.k % handed.length]!;
            await store.settle(id, r.id, Math.floor(r.micros * step.fraction));
          } else if (step.kind === "budget") {
            // Lowering the budget below what is spent and held is allowed: it pauses the session.
            await store.setBudget(id, step.micros);
          } else if (step.kind === "wait") {
            testClock.advance(step.ms);
            await store.touchSession(id);
          }
          const after = (await store.getSession(id))!;
          if (step.kind !== "budget") {
            // No step but a lowered budget can leave cost + reserved above the budget it had before.
            expect(after.sessionCostMicros + after.reservedMicros).toBeLessThanOrEqual(
              Math.max(before.budgetMicros!, before.sessionCostMicros + before.reservedMicros),
            );
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
