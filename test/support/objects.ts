import { expect } from "vitest";
import { JOURNAL_RETENTION_MS } from "../../src/objects/session-object";
/** Direct looks at what the objects hold: a session object's storage and alarm, and its registry row. */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { shardFor } from "../../src/objects/registry-client";
import type { Entry, SessionView } from "../../src/session/types";

export const stubOf = (id: string) => env.SESSIONS.get(env.SESSIONS.idFromName(id));

/** The stored record (what the object writes under "session"), its pending registry delivery ("outbox") and the armed alarm, if any. */
export async function storedState(target: string | DurableObjectId) {
  const stub = typeof target === "string" ? stubOf(target) : env.SESSIONS.get(target);
  return runInDurableObject(stub, async (_obj, state) => ({
    kv: state.storage.kv.get<{ id: string; entry: Entry; inc: string; version: number }>("session"),
    outbox: state.storage.kv.get<{ since: number; ended?: { inc: string } }>("outbox"),
    alarm: await state.storage.getAlarm(),
    /** The journal's bounds while it is kept (src/objects/session-object.ts). */
    journal: state.storage.kv.get<{ next: number; first: number; endedAt?: number }>("journal"),
  }));
}

/** Every key the object holds: an object with nothing to keep holds none. */
export async function storedKeys(target: string | DurableObjectId): Promise<string[]> {
  const stub = typeof target === "string" ? stubOf(target) : env.SESSIONS.get(target);
  return runInDurableObject(stub, async (_obj, state) => [...state.storage.kv.list()].map(([key]) => key));
}

export async function registryHas(id: string): Promise<boolean> {
  return (await shardFor(env, id).page(null, 100_000, false)).rows.some((r) => r.id === id);
}

/** The shard's row for a session, whatever its deadline hint says (stats skip a row past it); null when there is none. */
export async function rowOf(id: string): Promise<{ model: string; tier: string; inc: string; version: number; expires_at: number } | null> {
  return runInDurableObject(shardFor(env, id), (_obj, state) => {
    const rows = state.storage.sql.exec<{ model: string; tier: string; inc: string; version: number; expires_at: number }>(
      "SELECT model, tier, inc, version, expires_at FROM sessions WHERE id = ?",
      id,
    );
    return rows.toArray()[0] ?? null;
  });
}

/** Rewrites a session's record as the release before incarnations stored it (key and entry only), and evicts the object so it reads it back. */
export async function asPreviousVersion(id: string): Promise<void> {
  await runInDurableObject(stubOf(id), (_obj, state) => {
    const record = state.storage.kv.get<{ id: string; entry: unknown }>("session")!;
    state.storage.kv.put("session", { id: record.id, entry: record.entry });
  });
  await evictDurableObject(stubOf(id));
}

/**
 * What an object holds once its session has ended and the registry has heard: no
 * entry and no outbox; only the journal, with the alarm that drops it a day later
 * (JOURNAL_RETENTION_MS).
 */
export function ended(): Record<string, unknown> {
  return {
    kv: undefined,
    outbox: undefined,
    journal: expect.objectContaining({ endedAt: expect.any(Number) }),
    alarm: expect.any(Number),
  };
}

/** `ended()`, with the alarm exactly a day after the end. */
export function expectEnded(state: Awaited<ReturnType<typeof storedState>>): void {
  expect(state).toEqual(ended());
  expect(state.alarm).toBe(state.journal!.endedAt! + JOURNAL_RETENTION_MS);
}

/** A view as its record stores it: without its ID and the figures the view derives (budget, reservations, cache key and deployment, token totals, operator flags). */
export function storedEntryOf(view: SessionView): Partial<Entry> {
  const {
    id: _id,
    budgetMicros: _b,
    reservedMicros: _r,
    inFlight: _f,
    cacheKey: _k,
    deployment: _d,
    inputTokens: _i,
    cachedInputTokens: _c,
    paused: _p,
    adminPinned: _a,
    ...entry
  } = view;
  return entry;
}
