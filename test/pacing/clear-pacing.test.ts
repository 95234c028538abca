/**
 * Clear-all under a short pass budget (CLEAR_BUDGET_MS, CLEAR_BATCH_SIZE set for
 * this project in vitest.config.ts): the request answers 202 with what is pending,
 * and the shards' alarms finish the clear.
 */
import { exports } from "cloudflare:workers";
import { afterEach, expect, it } from "vitest";
import { runDueAlarms } from "../support/converge";
import { ADMIN_TOKEN, call } from "../support/http";
import { testClock } from "../support/worker";

const svc = exports.SessionService;
const admin = exports.SessionAdmin;
const SESSIONS = 200;

afterEach(() => {
  testClock.tickMs = 0;
});

it("answers 202 with pending when it cannot finish in one request, and the shards' alarms finish", async () => {
  for (let i = 0; i < SESSIONS; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => svc.setSession(`slow-${i + j}-${crypto.randomUUID()}`, "m", "SIMPLE")));
  }
  // Time moves with every read, so a pass runs out of its budget after one batch.
  testClock.tickMs = 1;
  const res = await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
  expect(res.status).toBe(202);
  expect(res.json.pending).toBeGreaterThan(0);
  expect(res.json.cleared + res.json.pending).toBe(SESSIONS);
  // The shards' alarms finish the clear: each pass is due a millisecond after the last.
  let rounds = 0;
  while ((await admin.getStats()).count > 0) {
    expect(++rounds).toBeLessThan(20);
    testClock.advance(1);
    await runDueAlarms();
  }
  testClock.tickMs = 0;
  expect((await admin.getStats()).count).toBe(0);
});
