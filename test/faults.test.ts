/** Faults injected while work is in flight: the registry throwing or hanging, alarms failing, storage writes failing. */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SessionObject } from "../src/objects/session-object";
import { configFor } from "../src/session/config";
import { call, sessionPath } from "./support/http";
import { registryHas, storedState, stubOf } from "./support/objects";
import { freshId } from "./support/ports";
import { registryFault, testClock } from "./support/worker";

const svc = exports.SessionService;
const timeoutMs = configFor(env).timeoutMs;

afterEach(() => {
  registryFault.mode = "none";
  registryFault.timeoutMs = undefined;
});

describe("registry faults during create", () => {
  for (const mode of ["throw", "hang"] as const) {
    it(`registry ${mode}s: 503 registry_unavailable, nothing stored, the next call works`, async () => {
      const id = freshId(`reg-${mode}`);
      registryFault.mode = mode;
      registryFault.timeoutMs = 200;
      const res = await call("POST", "/v1/resolve", { body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content: "x" }] }, routed: { model: "m", tier: "SIMPLE" } } });
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
  it("an alarm that throws keeps the session and its row, and a retry expires it once", async () => {
    const id = freshId("alarm-throw");
    await svc.setSession(id, "m", "SIMPLE");
    testClock.advance(timeoutMs + 1);
    registryFault.mode = "throw";
    await expect(runInDurableObject(stubOf(id), (obj: SessionObject) => obj.alarm())).rejects.toThrow(/registry/);
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
    const err = await svc.setSession(id, "m", "SIMPLE").then(() => null, (e: Error) => e);
    expect(err?.message).toBe("internal_error: internal error");
    expect(await registryHas(id)).toBe(false);
    expect(await storedState(id)).toEqual({ kv: undefined, alarm: null });
    expect(await svc.getSession(id)).toBeNull();
  });
});
