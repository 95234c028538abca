/**
 * Backoff for work an alarm retries while something it depends on fails: a
 * session's expiry while the registry is down, a clear-all pass while sessions
 * cannot be reached. Without it the first leaves a session behind forever once
 * the platform's own alarm retries run out, and the second spins.
 */

/** The first wait: the platform's own first alarm retry (a failed alarm is retried after 2 s, doubling, 6 times). */
export const RETRY_MIN_DELAY_MS = 2_000;
/**
 * The longest wait. Bounds how long a session outlives a registry outage once
 * the registry is back, while a session stuck in a long outage wakes at most
 * six times an hour.
 */
export const RETRY_MAX_DELAY_MS = 10 * 60_000;
/** Up to this fraction earlier, at random: sessions that failed together in one outage do not retry in lockstep. */
export const RETRY_JITTER = 0.2;

/**
 * The wait before the next attempt, from how long the work has been failing:
 * as long again, so waits double, within [RETRY_MIN_DELAY_MS, RETRY_MAX_DELAY_MS],
 * less up to RETRY_JITTER of it. `random` is in [0, 1): Math.random() in production.
 */
export function retryDelayMs(failingForMs: number, random: number): number {
  const wait = Math.min(RETRY_MAX_DELAY_MS, Math.max(RETRY_MIN_DELAY_MS, failingForMs));
  return Math.round(wait * (1 - RETRY_JITTER * random));
}
