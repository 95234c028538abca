/**
 * Without a SESSION_EVENTS binding (this project binds none), the service
 * works as before and decides no lifecycle message: nothing waits to be sent.
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect, it } from "vitest";

it("ends and crosses budget thresholds with nothing stored to send", async () => {
  const id = `no-queue-${crypto.randomUUID()}`;
  expect((env as { SESSION_EVENTS?: unknown }).SESSION_EVENTS).toBeUndefined();
  await exports.SessionService.resolve({
    sessionId: id,
    body: { model: "auto", messages: [{ role: "user", content: "a" }] },
    routed: { model: "m", tier: "SIMPLE" },
  });
  await exports.SessionService.setBudget(id, 10);
  await exports.SessionService.addSessionCost(id, 10);
  const events = await exports.SessionService.getEvents(id);
  expect(events.events.filter((e) => e.type === "budget_threshold")).toHaveLength(3);
  await exports.SessionService.clearSession(id);
  const keys = await runInDurableObject(env.SESSIONS.get(env.SESSIONS.idFromName(id)), async (_o, state) => [...state.storage.kv.list()].map(([k]) => k));
  expect(keys.filter((k) => k === "sends" || k.startsWith("send:"))).toEqual([]);
  expect(keys).toContain("journal");
});
