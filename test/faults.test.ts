/** Faults injected while work is in flight: the registry throwing or hanging, alarms failing, storage writes failing. */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SessionObject } from "../src/objects/session-object";
import { shardStub } from "../src/objects/registry-client";
import { configFor } from "../src/session/config";
import { RETRY_JITTER, RETRY_MAX_DELAY_MS, RETRY_MIN_DELAY_MS, retryDelayMs } from "../src/session/retry";
import { shardOf } from "../src/session/stats";
import { ADMIN_TOKEN, call, sessionPath } from "./support/http";
import { registryHas, storedState, stubOf } from "./support/objects";
import { freshId } from "./support/back-ends";
import { clearFault, registryFault, testClock } from "./support/worker";
import { rpcFailure } from "./support/rpc";

const svc = exports.SessionService;
const timeoutMs = configFor(env).timeoutMs;

afterEach(() => {
  registryFault.mode = "none";
  clearFault.mode = "none";
  vi.restoreAllMocks();
});

describe("registry faults during create", () => {
  for (const mode of ["throw", "hang"] as const) {
    it(`registry ${mode}s: 503 registry_unavailable, nothing stored, the next call works`, async () => {
      const id = freshId(`reg-${mode}`);
      registryFault.mode = mode;
      const res = await call("POST", "/v1/resolve", {
        body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content: "x" }] }, routed: { model: "m", tier: "SIMPLE" } },
      });
      expect(res.status).toBe(503);
      expect(res.json.error.code).toBe("registry_unavailable");
      expect(await storedState(id)).toEqual({ kv: undefined, alarm: null });
      registryFault.mode = "none";
      expect(await svc.getSession(id)).toBeNull();
      expect((await svc.setSession(id, "m", "SIMPLE")).requestCount).toBe(1);
      expect(await registryHas(id)).toBe(true);
    });
  }

  it("a model change with the registry down fails and changes nothing", async () => {
    const id = freshId("reg-model");
    const before = await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    registryFault.mode = "throw";
    expect((await call("POST", sessionPath(id, "/escalate"))).json.error.code).toBe("registry_unavailable");
    registryFault.mode = "none";
    expect(await svc.getSession(id)).toEqual(before);
  });
});

describe("alarm faults", () => {
  it("an alarm whose registry call fails keeps the session and its row, and a retry expires it once", async () => {
    const id = freshId("alarm-throw");
    await svc.setSession(id, "m", "SIMPLE");
    testClock.advance(timeoutMs + 1);
    registryFault.mode = "throw";
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    await runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm());
    expect((await storedState(id)).kv).toBeDefined();
    expect(await registryHas(id)).toBe(true);
    registryFault.mode = "none";
    // The platform retries a failed alarm; each retry is safe, however many arrive.
    await runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm());
    await runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm());
    expect(await storedState(id)).toEqual({ kv: undefined, alarm: null });
    expect(await registryHas(id)).toBe(false);
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

describe("storage write failing in the middle of a method", () => {
  it("the caller gets an error and memory does not diverge from storage", async () => {
    const id = freshId("disk");
    await svc.setSession(id, "m", "SIMPLE");
    await svc.addSessionCost(id, 100);
    const before = await svc.getSession(id);
    await runInDurableObject(stubOf(id), (_obj: SessionObject, state) => {
      vi.spyOn(state.storage.kv, "put").mockImplementationOnce(() => {
        throw new Error("injected: disk full");
      });
    });
    const res = await call("POST", sessionPath(id, "/touch"));
    expect(res.status).toBe(500);
    expect(res.json.error.code).toBe("internal_error");
    expect(JSON.stringify(res.json)).not.toContain("disk full");
    // Memory kept the old entry, as storage did.
    expect(await svc.getSession(id)).toEqual(before);
    expect((await storedState(id)).kv!.entry).toEqual((({ id: _id, ...e }) => e)(before!));
    expect((await svc.touchSession(id))!.requestCount).toBe(before!.requestCount + 1);
  });

  it("a failed write while creating removes the registry row it just wrote", async () => {
    const id = freshId("disk-create");
    await runInDurableObject(stubOf(id), (_obj: SessionObject, state) => {
      vi.spyOn(state.storage.kv, "put").mockImplementationOnce(() => {
        throw new Error("injected: disk full");
      });
    });
    // A plain await: RPC promises handed to expect().rejects are reported as unhandled.
    expect(await rpcFailure(svc.setSession(id, "m", "SIMPLE"))).toBe("internal_error: internal error");
    expect(await registryHas(id)).toBe(false);
    expect(await storedState(id)).toEqual({ kv: undefined, alarm: null });
    expect(await svc.getSession(id)).toBeNull();
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
  it("keeps an alarm armed with a growing, capped wait, logs each failure, and expires once the registry is back", async () => {
    const id = freshId("zombie");
    await svc.setSession(id, "m", "SIMPLE");
    testClock.advance(timeoutMs + 1);
    registryFault.mode = "throw";
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const waits: number[] = [];
    const deadline = testClock.now() - 1;
    // Far more failures than the platform's six alarm retries.
    for (let attempt = 0; attempt < 16; attempt++) {
      const overdue = testClock.now() - deadline;
      await runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm());
      const { kv, alarm } = await storedState(id);
      expect(kv, "nothing is lost").toBeDefined();
      expect(await registryHas(id)).toBe(true);
      expect(alarm, `attempt ${attempt}: an alarm stays armed`).not.toBeNull();
      const wait = alarm! - testClock.now();
      // As long again as the session has been overdue (so waits double), within the bounds, less the jitter.
      const full = Math.min(RETRY_MAX_DELAY_MS, Math.max(RETRY_MIN_DELAY_MS, overdue));
      expect(wait, `attempt ${attempt}`).toBeLessThanOrEqual(full);
      expect(wait, `attempt ${attempt}`).toBeGreaterThanOrEqual(Math.floor((1 - RETRY_JITTER) * full));
      waits.push(wait);
      testClock.advance(wait);
    }
    expect(Math.max(...waits)).toBeLessThanOrEqual(RETRY_MAX_DELAY_MS);
    expect(waits.at(-1)).toBeGreaterThanOrEqual((1 - RETRY_JITTER) * RETRY_MAX_DELAY_MS);
    // One line per failed attempt, naming the failure but not the session.
    const lines = errors.mock.calls.map((args) => args.join(" "));
    expect(lines.filter((line) => /expiry.*registry/.test(line))).toHaveLength(16);
    for (const line of lines) expect(line).not.toContain(id);

    registryFault.mode = "none";
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    expect(await storedState(id)).toEqual({ kv: undefined, alarm: null });
    expect(await registryHas(id)).toBe(false);
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

    // The alarm's pass fails too: still armed, still backing off, logged again.
    expect(await runDurableObjectAlarm(shard)).toBe(true);
    expect((await alarmOf())! - Date.now()).toBeGreaterThanOrEqual((1 - RETRY_JITTER) * RETRY_MIN_DELAY_MS - 1);
    expect(errors).toHaveBeenCalledTimes(2);
    for (const id of ids) expect((await storedState(id)).kv).toBeDefined();

    clearFault.mode = "none";
    expect(await runDurableObjectAlarm(shard)).toBe(true);
    expect(await alarmOf()).toBeNull();
    for (const id of ids) {
      expect(await storedState(id)).toEqual({ kv: undefined, alarm: null });
      expect(await registryHas(id)).toBe(false);
    }
  });
});
