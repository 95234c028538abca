/**
 * Clear-all under a short pass budget (CLEAR_BUDGET_MS, CLEAR_BATCH_SIZE set for
 * this project in vitest.config.ts): the request answers 202 with what is pending,
 * and the shards' alarms finish the clear.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, expect, it } from "vitest";
import { shardStub } from "../../src/objects/registry-client";
import { configFor } from "../../src/session/config";
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
  // Run the shards' alarms until none is left. The runtime may also fire one on its own
  // while this loop runs (its time is the virtual clock's), so go round until stats agree.
  let rounds = 0;
  while ((await admin.getStats()).count > 0) {
    expect(++rounds).toBeLessThan(20);
    for (let k = 0; k < configFor(env).registryShards; k++) {
      const shard = shardStub(env, k);
      while (await runDurableObjectAlarm(shard));
    }
  }
  testClock.tickMs = 0;
  expect((await admin.getStats()).count).toBe(0);
});
