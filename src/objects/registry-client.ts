/** How a session object tells its registry shard about a lifecycle change. */
import type { Env } from "../env";
import { configFor } from "../session/config";
import { SessionError } from "../session/errors";
import { shardOf, type RegistryRow } from "../session/stats";

/** Stats read every shard; a large page takes longer than a single-row write (REGISTRY_TIMEOUT_MS). */
export const REGISTRY_READ_TIMEOUT_MS = 15_000;

export function shardName(k: number): string {
  return `shard-${k}`;
}

export function shardStub(env: Env, k: number) {
  return env.REGISTRY.get(env.REGISTRY.idFromName(shardName(k)));
}

export function shardFor(env: Env, sessionId: string) {
  return shardStub(env, shardOf(sessionId, configFor(env).registryShards));
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/**
 * Runs one registry call, turning any failure or hang into 503 `registry_unavailable`.
 * The platform's error text names internals (objects, storage, timeouts), so it is
 * logged here and the caller gets only what failed.
 */
export async function registryCall<T>(what: string, work: () => Promise<T>, timeoutMs: number): Promise<T> {
  try {
    return await withTimeout(work(), timeoutMs);
  } catch (err) {
    console.error(`session registry could not ${what}:`, err instanceof Error ? (err.stack ?? err.message) : String(err));
    throw new SessionError("registry_unavailable", `session registry could not ${what}`, {}, { cause: err });
  }
}

export async function upsertRow(env: Env, row: RegistryRow): Promise<void> {
  await shardFor(env, row.id).upsert(row);
}

export async function removeRow(env: Env, id: string): Promise<void> {
  await shardFor(env, id).remove(id);
}
