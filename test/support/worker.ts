/**
 * The Worker under test: the real entry, with time and two failure points made
 * controllable from outside the production classes. Tests and objects share
 * this isolate, so the controls below reach every object the tests create:
 * - time: production reads `Date.now()`; here it reads the virtual clock below;
 * - the registry: a subclass of the registry object throws, hangs or delays its writes;
 * - clear-all: a subclass of the session object fails or holds the clears it is asked for.
 */
import type { RegistryRow } from "../../src/session/stats";
import { RegistryObject as ProductionRegistryObject } from "../../src/objects/registry-object";
import { SessionObject as ProductionSessionObject } from "../../src/objects/session-object";

export { default, SessionAdmin, SessionService } from "../../src/index";

/**
 * A virtual clock: starts at the real time and moves only when a test says so,
 * so the objects and a MemoryStore model read identical instants. With
 * `tickMs` set, every read also moves it on, so two transitions never share an
 * instant and two incarnations of one session show different `createdAt`.
 */
export const testClock = {
  base: Date.now(),
  offsetMs: 0,
  tickMs: 0,
  now(): number {
    const t = this.base + this.offsetMs;
    this.offsetMs += this.tickMs;
    return t;
  },
  advance(ms: number): void {
    this.offsetMs += ms;
  },
};

/** The one clock of the isolate: production code reads Date.now(), and in tests that is the virtual clock. */
Date.now = () => testClock.now();

/**
 * What registry writes do: pass through, throw, or never answer. `delayMs`
 * holds every passing call that long first, so calls that await the registry
 * before writing (creation, model and tier changes) overlap each other.
 */
export const registryFault = { mode: "none" as "none" | "throw" | "hang", calls: 0, delayMs: 0 };

async function registryWrite(): Promise<void> {
  registryFault.calls++;
  if (registryFault.mode === "throw") throw new Error("injected registry failure");
  if (registryFault.mode === "hang") await new Promise(() => undefined);
  if (registryFault.delayMs > 0) await new Promise((r) => setTimeout(r, registryFault.delayMs));
}

/**
 * What a session does when clear-all asks it to clear: comply, throw as an
 * unreachable object would, or wait at the gate `blockClears` sets up.
 */
export const clearFault = {
  mode: "none" as "none" | "throw" | "block",
  /** Released by the test; clears that arrive meanwhile wait on it. */
  gate: Promise.resolve(),
  /** Called each time a clear reaches the gate, before it waits. */
  onBlocked: (): void => undefined,
};

/**
 * Makes every clear-all request to a session wait until `release()` is called.
 * `blocked` settles once a clear is waiting inside a session object, which proves
 * a clear-all is under way.
 */
export function blockClears(): { blocked: Promise<void>; release: () => void } {
  let release!: () => void;
  let reportBlocked!: () => void;
  const blocked = new Promise<void>((r) => (reportBlocked = r));
  clearFault.gate = new Promise<void>((r) => (release = r));
  clearFault.onBlocked = reportBlocked;
  clearFault.mode = "block";
  return {
    blocked,
    release: () => {
      clearFault.mode = "none";
      release();
    },
  };
}

export class SessionObject extends ProductionSessionObject {
  override async clearIncarnation(createdAt: number): Promise<boolean> {
    if (clearFault.mode === "throw") throw new Error("injected clear failure");
    if (clearFault.mode === "block") {
      clearFault.onBlocked();
      await clearFault.gate;
    }
    return super.clearIncarnation(createdAt);
  }
}

export class RegistryObject extends ProductionRegistryObject {
  override async upsert(row: RegistryRow): Promise<void> {
    await registryWrite();
    super.upsert(row);
  }

  override async remove(id: string): Promise<void> {
    await registryWrite();
    super.remove(id);
  }
}
