/**
 * The Worker under test: the real entry, with the session object's clock and
 * registry seam made controllable. Tests and objects share this isolate, so
 * the controls below reach every object the tests create.
 */
import { RegistryObject as ProductionRegistryObject } from "../../src/objects/registry-object";
import { SessionObject as ProductionSessionObject } from "../../src/objects/session-object";
import type { RegistryEffect } from "../../src/session/operations";

export { default, SessionAdmin, SessionService } from "../../src/index";

/**
 * A virtual clock: starts at the real time and moves only when a test says so,
 * so the objects and a MemoryStore model read identical instants.
 */
export const testClock = {
  base: Date.now(),
  offsetMs: 0,
  now(): number {
    return this.base + this.offsetMs;
  },
  advance(ms: number): void {
    this.offsetMs += ms;
  },
};

/** What the registry seam does: pass through, throw, or never answer. */
export const registryFault = { mode: "none" as "none" | "throw" | "hang", calls: 0, timeoutMs: undefined as number | undefined };

/** What a session does when clear-all asks it to clear: comply, or throw as an unreachable object would. */
export const clearFault = { mode: "none" as "none" | "throw" };

export class SessionObject extends ProductionSessionObject {
  override clearIncarnation(createdAt: number): Promise<boolean> {
    if (clearFault.mode === "throw") return Promise.reject(new Error("injected clear failure"));
    return super.clearIncarnation(createdAt);
  }

  protected override now(): number {
    return testClock.now();
  }

  protected override get registryTimeoutMs(): number {
    return registryFault.timeoutMs ?? super.registryTimeoutMs;
  }

  protected override async tellRegistry(id: string, effect: NonNullable<RegistryEffect>): Promise<void> {
    registryFault.calls++;
    if (registryFault.mode === "throw") throw new Error("injected registry failure");
    if (registryFault.mode === "hang") await new Promise(() => undefined);
    return super.tellRegistry(id, effect);
  }
}

/** Clear-all pacing; tests shrink it to force the 202-and-alarm path. Undefined means production values. */
export const clearPacing: { budgetMs?: number; batchSize?: number } = {};

export class RegistryObject extends ProductionRegistryObject {
  protected override get clearBudgetMs(): number {
    return clearPacing.budgetMs ?? super.clearBudgetMs;
  }

  protected override get clearBatchSize(): number {
    return clearPacing.batchSize ?? super.clearBatchSize;
  }
}
