/** How the Worker and the session objects reach the registry shards. */
import type { Env } from "../env";
import { configFor } from "../session/config";
import { SessionError } from "../session/errors";
import type { Delivery } from "../session/registry";
import { shardOf } from "../session/stats";

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

/** `work`, or a rejection once `ms` have passed. The work itself is not cancelled: an RPC may still land later. */
export async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
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

/** Hands one outbox effect to the session's shard. */
export async function deliverTo(env: Env, delivery: Delivery): Promise<void> {
  const id = delivery.kind === "upsert" ? delivery.row.id : delivery.id;
  await shardFor(env, id).deliver(delivery);
}
