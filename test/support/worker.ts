/**
 * The Worker under test: the real entry, with time and failures made
 * controllable from outside the production classes. Tests and objects share
 * this isolate, so the controls below reach every object the tests create:
 * - time: production reads `Date.now()`; here it reads the virtual clock below;
 * - the registry: a subclass of the registry object throws, hangs or delays deliveries,
 *   or resets the session that sent one;
 * - storage: a subclass of the session object makes chosen commits fail, resetting the object;
 * - clear-all: the same subclass fails or holds the clears it is asked for.
 */
import type { Env } from "../../src/env";
import { RegistryObject as ProductionRegistryObject } from "../../src/objects/registry-object";
import { SessionObject as ProductionSessionObject, type ClearAnswer } from "../../src/objects/session-object";
import type { Delivery } from "../../src/session/registry";
import type { LifecycleMessage } from "../../src/session/lifecycle";

export { default, SessionAdmin, SessionService } from "../../src/index";

/**
 * A virtual clock: starts a day ahead of the real time and moves only when a
 * test says so, so the objects and a MemoryStore model read identical
 * instants. The day ahead means no alarm an object arms comes due in real time
 * while the tests run: the platform never runs one beside a test's own
 * `runDurableObjectAlarm`, and tests run every alarm themselves. With
 * `tickMs` set, every read also moves it on, so two transitions never share an
 * instant and two incarnations of one session show different `createdAt`.
 */
export const testClock = {
  base: Date.now() + 24 * 60 * 60_000,
  offsetMs: 0,
  tickMs: 0,
  now(): number {
    const t = this.base + this.offsetMs;
    this.offsetMs += this.tickMs;
    return t;
  },
  /** The time, without moving the clock on. */
  peek(): number {
    return this.base + this.offsetMs;
  },
  advance(ms: number): void {
    this.offsetMs += ms;
  },
};

/** The one clock of the isolate: production code reads Date.now(), and in tests that is the virtual clock. */
Date.now = () => testClock.now();

/**
 * What a shard does with a session's delivery: take it, throw, or never answer.
 * `delayMs` holds each delivery that long before the shard takes it: longer than
 * REGISTRY_TIMEOUT_MS, it lands after the session gave up on it. `resetCaller`
 * resets the session object that sent it, before the shard takes it (the
 * delivery is lost) or after (the session never hears that it landed).
 */
export const registryFault = {
  mode: "none" as "none" | "throw" | "hang" | "hold",
  /** Stats and clear-all fail as an unreachable shard would: they throw the platform's kind of error. */
  readsFail: false,
  /** In "hold" mode, deliveries wait on this gate (see `holdDeliveries`). */
  gate: Promise.resolve(),
  calls: 0,
  delayMs: 0,
  resetCaller: "none" as "none" | "before" | "after",
};

/**
 * Storage commits that fail: the next `count` writes (puts or deletes) of the
 * session object `target` fail at commit, after the method that made them has
 * returned, and the object resets, as a broken output gate does.
 */
export const commitFault = { target: null as DurableObjectId | null, count: 0 };

/** The session objects (by ID string) whose outbox holds a delivery the registry has not taken yet. */
export const pendingOutboxes = new Set<string>();

/** Every alarm the objects have set and not deleted, by object ID string: what the test clock may find due. */
export const armedAlarms = new Map<string, { namespace: "SESSIONS" | "REGISTRY"; at: number }>();

/** Records the alarms an object sets and deletes in `armedAlarms`. */
function trackAlarms(ctx: DurableObjectState, namespace: "SESSIONS" | "REGISTRY"): void {
  const storage = ctx.storage;
  const setAlarm = storage.setAlarm.bind(storage);
  const deleteAlarm = storage.deleteAlarm.bind(storage);
  Object.defineProperty(storage, "setAlarm", {
    value: (at: number | Date, options?: DurableObjectSetAlarmOptions) => {
      armedAlarms.set(ctx.id.toString(), { namespace, at: Number(at) });
      return setAlarm(at, options);
    },
    writable: true,
    configurable: true,
  });
  Object.defineProperty(storage, "deleteAlarm", {
    value: (options?: DurableObjectSetAlarmOptions) => {
      armedAlarms.delete(ctx.id.toString());
      return deleteAlarm(options);
    },
    writable: true,
    configurable: true,
  });
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

/** Holds every delivery that reaches a shard until `release()`: they land when the test says so. */
export function holdDeliveries(): { release: () => void } {
  let release!: () => void;
  registryFault.gate = new Promise<void>((r) => (release = r));
  registryFault.mode = "hold";
  return {
    release: () => {
      registryFault.mode = "none";
      release();
    },
  };
}

/**
 * What the SESSION_EVENTS queue does with a session's send: take it, fail it,
 * or take it and then reset the sender before it can record the send
 * ("reset-after"), or reset the sender before the queue takes it ("reset-before").
 * `accepted` lists every message the queue took, in order, copies included.
 */
export const queueFault = {
  mode: "none" as "none" | "throw" | "reset-after" | "reset-before",
  /** How many sends the fault applies to; then sends go through. */
  count: Infinity,
  accepted: [] as LifecycleMessage[],
  /** How many resets the faults have made so far. */
  resets: 0,
  /** The messages the queue took for one session, copies included. */
  acceptedFor(sessionId: string): LifecycleMessage[] {
    return this.accepted.filter((m) => m.sessionId === sessionId);
  },
  /** Back to a queue that takes every send. */
  heal(): void {
    this.mode = "none";
    this.count = Infinity;
  },
};

function reset(ctx: DurableObjectState, reason: string): void {
  queueFault.resets++;
  ctx.abort(reason);
}

/** The queue binding as the objects see it: the real producer, behind `queueFault`. */
function faultyQueue(queue: Queue<LifecycleMessage> | undefined, ctx: DurableObjectState): Queue<LifecycleMessage> | undefined {
  if (queue === undefined) return undefined;
  return Object.create(queue, {
    send: {
      value: async (message: LifecycleMessage, options?: QueueSendOptions) => {
        const mode = queueFault.count > 0 ? queueFault.mode : "none";
        if (mode !== "none") queueFault.count--;
        if (mode === "throw") throw new Error("injected queue failure");
        // After the step's commit (the send starts inside the step), before the queue takes the message.
        if (mode === "reset-before") await new Promise((r) => setTimeout(r, 1)).then(() => reset(ctx, "injected reset before the send"));
        const answer = await queue.send(message, options);
        queueFault.accepted.push(structuredClone(message));
        if (mode === "reset-after") reset(ctx, "injected reset after the send");
        return answer;
      },
    },
  });
}

export class SessionObject extends ProductionSessionObject {
  constructor(ctx: DurableObjectState, env: Env) {
    // Before the production constructor, so what it writes and arms is seen too.
    trackAlarms(ctx, "SESSIONS");
    const kv = ctx.storage.kv;
    for (const method of ["put", "delete"] as const) {
      const original = kv[method].bind(kv) as (...args: unknown[]) => unknown;
      Object.defineProperty(kv, method, {
        value: (...args: unknown[]) => {
          const result = original(...args);
          if (args[0] === "outbox") {
            if (method === "put") pendingOutboxes.add(ctx.id.toString());
            else pendingOutboxes.delete(ctx.id.toString());
          }
          if (commitFault.count > 0 && commitFault.target?.equals(ctx.id)) {
            commitFault.count--;
            // The write itself succeeded; its commit, at the end of this turn, does not.
            queueMicrotask(() => ctx.abort("injected commit failure"));
          }
          return result;
        },
        writable: true,
        configurable: true,
      });
    }
    super(ctx, Object.create(env, { SESSION_EVENTS: { value: faultyQueue(env.SESSION_EVENTS, ctx), enumerable: true } }) as Env);
  }

  /** A reset from outside, as an eviction, a deploy or a crash does. */
  reset(): void {
    this.ctx.abort("injected reset");
  }

  override async clearBefore(clearStartedAt: number, inc: string): Promise<ClearAnswer> {
    if (clearFault.mode === "throw") throw new Error("injected clear failure");
    if (clearFault.mode === "block") {
      clearFault.onBlocked();
      await clearFault.gate;
    }
    return super.clearBefore(clearStartedAt, inc);
  }
}

function deliveryId(delivery: Delivery): string {
  return delivery.kind === "upsert" ? delivery.row.id : delivery.id;
}

export class RegistryObject extends ProductionRegistryObject {
  constructor(ctx: DurableObjectState, env: Env) {
    // Before the production constructor, so the alarm a shard's upgrade arms is seen too.
    trackAlarms(ctx, "REGISTRY");
    super(ctx, env);
  }

  override page(...args: Parameters<ProductionRegistryObject["page"]>): ReturnType<ProductionRegistryObject["page"]> {
    if (registryFault.readsFail) throw new Error("injected registry failure: storage is unavailable");
    return super.page(...args);
  }

  override async clearAll(): ReturnType<ProductionRegistryObject["clearAll"]> {
    if (registryFault.readsFail) throw new Error("injected registry failure: storage is unavailable");
    return super.clearAll();
  }

  override async deliver(delivery: Delivery): Promise<boolean> {
    registryFault.calls++;
    if (registryFault.mode === "throw") throw new Error("injected registry failure");
    if (registryFault.mode === "hang") await new Promise(() => undefined);
    if (registryFault.mode === "hold") await registryFault.gate;
    if (registryFault.delayMs > 0) await new Promise((r) => setTimeout(r, registryFault.delayMs));
    const caller = this.env.SESSIONS.get(this.env.SESSIONS.idFromName(deliveryId(delivery))) as unknown as DurableObjectStub<SessionObject>;
    if (registryFault.resetCaller === "before") {
      await caller.reset().catch(() => undefined);
      throw new Error("injected: the sender was reset before its delivery landed");
    }
    const taken = super.deliver(delivery);
    if (registryFault.resetCaller === "after") await caller.reset().catch(() => undefined);
    return taken;
  }
}
