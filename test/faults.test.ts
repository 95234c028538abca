/** Faults injected while work is in flight: the registry throwing or hanging, alarms failing, storage commits failing. */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SessionObject } from "../src/objects/session-object";
import { shardStub } from "../src/objects/registry-client";
import { configFor } from "../src/session/config";
import { RETRY_JITTER, RETRY_MAX_DELAY_MS, RETRY_MIN_DELAY_MS, retryDelayMs } from "../src/session/retry";
import { shardOf } from "../src/session/stats";
import { ADMIN_TOKEN, call, sessionPath } from "./support/http";
import { expectEnded, registryHas, rowOf, storedEntryOf, storedState, stubOf } from "./support/objects";
import { registryCaughtUp } from "./support/converge";
import { freshId } from "./support/back-ends";
import { clearFault, commitFault, registryFault, testClock } from "./support/worker";

const svc = exports.SessionService;
const timeoutMs = configFor(env).timeoutMs;

afterEach(() => {
  registryFault.mode = "none";
  commitFault.count = 0;
  clearFault.mode = "none";
  vi.restoreAllMocks();
});

describe("registry faults never fail a request", () => {
  for (const mode of ["throw", "hang"] as const) {
    it(`registry ${mode}s: the creation answers at once, its row waits in the outbox, and the alarm delivers it later`, async () => {
      vi.spyOn(console, "error").mockImplementation(() => undefined);
      const id = freshId(`reg-${mode}`);
      registryFault.mode = mode;
      const res = await call("POST", "/v1/resolve", {
        body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content: "x" }] }, routed: { model: "m", tier: "SIMPLE" } },
      });
      expect(res.status).toBe(200);
      const stored = await storedState(id);
      expect(stored.kv?.entry.model).toBe("m");
      expect(stored.outbox, "the row the registry has not taken").toBeDefined();
      expect(stored.alarm, "the retry is armed").not.toBeNull();
      expect(await rowOf(id)).toBeNull();
      registryFault.mode = "none";
      expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
      expect(await registryHas(id)).toBe(true);
      const after = await storedState(id);
      expect(after.outbox).toBeUndefined();
      expect(after.alarm, "back to the session's deadline").toBe(after.kv!.entry.lastUsedAt + timeoutMs + 1);
    });
  }

  it("a model change with the registry down is answered, and the registry shows it once it is back", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const id = freshId("reg-model");
    await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    await registryCaughtUp();
    registryFault.mode = "throw";
    const res = await call("POST", sessionPath(id, "/escalate"));
    expect(res.status).toBe(200);
    expect(res.json.model).toBe("kimi-k2.5");
    expect((await rowOf(id))?.model).toBe("gemini-2.5-flash");
    registryFault.mode = "none";
    await runDurableObjectAlarm(stubOf(id));
    expect((await rowOf(id))?.model).toBe("kimi-k2.5");
  });
});

describe("alarm faults", () => {
  it("an expiry whose delivery fails ends the session at once; the row is not counted meanwhile, and a retry removes it", async () => {
    const id = freshId("alarm-throw");
    await svc.setSession(id, "m", "SIMPLE");
    await registryCaughtUp();
    testClock.advance(timeoutMs + 1);
    registryFault.mode = "throw";
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    await runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm());
    const { kv, outbox } = await storedState(id);
    expect(kv).toBeUndefined();
    expect(outbox?.ended).toBeDefined();
    expect(await svc.getSession(id)).toBeNull();
    expect(await rowOf(id)).not.toBeNull();
    expect(await registryHas(id), "past its deadline, the row is not counted").toBe(false);
    registryFault.mode = "none";
    // The platform retries a failed alarm; each retry is safe, however many arrive.
    await runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm());
    await runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm());
    expectEnded(await storedState(id));
    expect(await rowOf(id)).toBeNull();
  });

  it("an alarm delivered twice for a live session re-arms and changes nothing else", async () => {
    const id = freshId("alarm-twice");
    const entry = await svc.setSession(id, "m", "SIMPLE");
    await runDurableObjectAlarm(stubOf(id));
    await runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm());
    expect(await svc.getSession(id)).toEqual(entry);
    expect((await storedState(id)).alarm).toBe(entry.lastUsedAt + timeoutMs + 1);
  });
});

describe("a storage commit that fails after the call returned", () => {
  it("the caller gets internal_error with none of the failure's text, the object resets, and memory and storage keep the old entry", async () => {
    const id = freshId("disk");
    await svc.setSession(id, "m", "SIMPLE");
    await svc.addSessionCost(id, 100);
    const before = await svc.getSession(id);
    commitFault.target = env.SESSIONS.idFromName(id);
    commitFault.count = 1;
    const res = await call("POST", sessionPath(id, "/touch"));
    expect(res.status).toBe(500);
    expect(res.json.error.code).toBe("internal_error");
    expect(JSON.stringify(res.json)).not.toContain("injected");
    expect(await svc.getSession(id)).toEqual(before);
    // What is stored is the view without its ID and the figures the view derives.
    expect((await storedState(id)).kv!.entry).toEqual(storedEntryOf(before!));
    expect((await svc.touchSession(id))!.requestCount).toBe(before!.requestCount + 1);
  });
});

describe("retry backoff", () => {
  it("waits as long as the work has been failing, within the bounds, less up to the jitter", () => {
    expect(retryDelayMs(0, 0)).toBe(RETRY_MIN_DELAY_MS);
    expect(retryDelayMs(5_000, 0)).toBe(5_000);
    expect(retryDelayMs(5_000, 0.5)).toBe(5_000 * (1 - RETRY_JITTER / 2));
    expect(retryDelayMs(10 * RETRY_MAX_DELAY_MS, 0)).toBe(RETRY_MAX_DELAY_MS);
    expect(retryDelayMs(0, 0.999_999)).toBeGreaterThan((1 - RETRY_JITTER) * RETRY_MIN_DELAY_MS - 1);
  });

  it("doubles from attempt to attempt until the cap, whatever the jitter", () => {
    for (const random of [0, 0.5, 0.999_999]) {
      let failingFor = 0;
      const waits: number[] = [];
      for (let i = 0; i < 20; i++) {
        waits.push(retryDelayMs(failingFor, random));
        failingFor += waits.at(-1)!;
      }
      expect(waits.at(-1)).toBe(Math.round(RETRY_MAX_DELAY_MS * (1 - RETRY_JITTER * random)));
      for (let i = 1; i < waits.length; i++) expect(waits[i]).toBeGreaterThanOrEqual(waits[i - 1]!);
    }
  });
});

describe("expiry while the registry is down", () => {
  it("keeps an alarm armed with a growing, capped wait, logs each failure, and removes the row once the registry is back", async () => {
    const id = freshId("zombie");
    await svc.setSession(id, "m", "SIMPLE");
    await registryCaughtUp();
    testClock.advance(timeoutMs + 1);
    registryFault.mode = "throw";
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const waits: number[] = [];
    let since: number | undefined;
    // Far more failures than the platform's six alarm retries.
    for (let attempt = 0; attempt < 16; attempt++) {
      since ??= testClock.peek();
      const failingFor = testClock.peek() - since;
      await runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm());
      const { outbox, alarm } = await storedState(id);
      expect(outbox?.ended, "nothing is lost: the end of the session waits in the outbox").toBeDefined();
      expect(await rowOf(id)).not.toBeNull();
      expect(alarm, `attempt ${attempt}: an alarm stays armed`).not.toBeNull();
      const wait = alarm! - testClock.peek();
      // As long again as the delivery has been failing (so waits double), within the bounds, less the jitter.
      const full = Math.min(RETRY_MAX_DELAY_MS, Math.max(RETRY_MIN_DELAY_MS, failingFor));
      expect(wait, `attempt ${attempt}`).toBeLessThanOrEqual(full);
      expect(wait, `attempt ${attempt}`).toBeGreaterThanOrEqual(Math.floor((1 - RETRY_JITTER) * full));
      waits.push(wait);
      testClock.advance(wait);
    }
    expect(Math.max(...waits)).toBeLessThanOrEqual(RETRY_MAX_DELAY_MS);
    expect(waits.at(-1)).toBeGreaterThanOrEqual((1 - RETRY_JITTER) * RETRY_MAX_DELAY_MS);
    // One line per failed attempt, naming the failure but not the session.
    const lines = errors.mock.calls.map((args) => args.join(" "));
    expect(lines.filter((line) => /registry could not/.test(line))).toHaveLength(16);
    for (const line of lines) expect(line).not.toContain(id);

    registryFault.mode = "none";
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    expectEnded(await storedState(id));
    expect(await rowOf(id)).toBeNull();
  });
});

describe("clear-all while sessions cannot be cleared", () => {
  it("backs off instead of re-arming at once, logs, and finishes once the sessions answer", async () => {
    expect((await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN })).status).toBe(200);
    const ids: string[] = [];
    while (ids.length < 3) {
      const id = freshId("stuck");
      if (shardOf(id, configFor(env).registryShards) === 0) ids.push(id);
    }
    for (const id of ids) await svc.setSession(id, "m", "SIMPLE");
    const shard = shardStub(env, 0);
    const alarmOf = () => runInDurableObject(shard, (_obj, state) => state.storage.getAlarm());
    clearFault.mode = "throw";
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);

    const before = Date.now();
    const res = await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
    expect(res).toMatchObject({ status: 202, json: { cleared: 0, pending: 3 } });
    const first = (await alarmOf())!;
    expect(first - before).toBeGreaterThanOrEqual((1 - RETRY_JITTER) * RETRY_MIN_DELAY_MS);
    expect(first - Date.now()).toBeLessThanOrEqual(RETRY_MAX_DELAY_MS);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(errors.mock.calls[0]!.join(" ")).toMatch(/clear.*3.*injected clear failure/);

    // The alarm's pass, when it is due, fails too: still armed, still backing off, logged again.
    testClock.advance(first - testClock.peek());
    expect(await runDurableObjectAlarm(shard)).toBe(true);
    expect((await alarmOf())! - Date.now()).toBeGreaterThanOrEqual((1 - RETRY_JITTER) * RETRY_MIN_DELAY_MS - 1);
    expect(errors).toHaveBeenCalledTimes(2);
    for (const id of ids) expect((await storedState(id)).kv).toBeDefined();

    clearFault.mode = "none";
    testClock.advance((await alarmOf())! - testClock.peek());
    expect(await runDurableObjectAlarm(shard)).toBe(true);
    // What is left on the shard's alarm is the next check of rows it holds, not another clear pass.
    const next = await alarmOf();
    expect(next === null || next - testClock.peek() > 60_000).toBe(true);
    for (const id of ids) {
      expectEnded(await storedState(id));
      expect(await registryHas(id)).toBe(false);
    }
  });
});
