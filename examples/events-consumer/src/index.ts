/**
 * Example consumer of edge-session's lifecycle queue (docs/events.md): alerts
 * on a session's end and on its spend reaching 80 and 100 percent of its
 * budget, once per message however many copies arrive. README.md beside this
 * folder tells how to wire and deploy it.
 */
import { type Claim, MessageDedupe } from "./dedupe";
import { alertOf, isAlert, parseMessage, type LifecycleMessage } from "./messages";
import { shardOf } from "../../../src/session/stats";

export { MessageDedupe };

export interface Env {
  DEDUPE: DurableObjectNamespace<MessageDedupe>;
  /** Secret: where alerts are POSTed. Unset, they are logged instead. */
  ALERT_WEBHOOK_URL?: string;
}

/** Dedupe rows are spread over this many objects by messageId. Changing it forgets, for one retention period, which messages were seen. */
export const DEDUPE_SHARDS = 16;
/** A webhook that has not answered by then has failed; well inside the dedupe lease (LEASE_MS). */
export const WEBHOOK_TIMEOUT_MS = 10_000;

/** The delay before a failed alert's next attempt: 10 s, doubling with each attempt, at most 10 minutes. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(600, 10 * 2 ** Math.max(0, attempts - 1));
}

export default {
  /** One message at a time, in the batch's order, so a batch's copies meet a decided claim. */
  async queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
    for (const message of batch.messages) await handle(message, env);
  },
} satisfies ExportedHandler<Env>;

async function handle(message: Message<unknown>, env: Env): Promise<void> {
  const parsed = parseMessage(message.body);
  if ("invalid" in parsed) {
    // A retry cannot mend a malformed body: report it and drop it.
    console.warn(`events-consumer: dropped message ${message.id}: ${parsed.invalid}`);
    message.ack();
    return;
  }
  if (!isAlert(parsed)) {
    message.ack();
    return;
  }
  // Copies share their messageId, and no other message has it.
  const key = parsed.messageId;
  const dedupe = dedupeFor(env, key);
  let claim: Claim;
  try {
    claim = await dedupe.claim(key);
  } catch (err) {
    console.warn(`events-consumer: dedupe unavailable for ${parsed.messageId}, retrying: ${String(err)}`);
    message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    return;
  }
  if (!claim.act) {
    if (claim.done) message.ack();
    // Another delivery of the same message is acting: ask again once its lease has run out.
    else message.retry({ delaySeconds: Math.ceil(claim.retryAfterMs / 1000) });
    return;
  }
  try {
    await alert(parsed, env);
  } catch (err) {
    console.warn(`events-consumer: alert for ${parsed.messageId} failed, retrying: ${String(err)}`);
    // If the release is lost too, the claim's lease runs out before the retry is likely to arrive.
    await dedupe.release(key, claim.token).catch(() => undefined);
    message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    return;
  }
  try {
    await dedupe.complete(key);
  } catch (err) {
    // The alert went out: acknowledging is right. A copy arriving after the lease could alert again.
    console.warn(`events-consumer: could not record ${parsed.messageId} as done: ${String(err)}`);
  }
  message.ack();
}

/** POSTs the alert to ALERT_WEBHOOK_URL, or logs it when none is set; throws unless the webhook answers 2xx. */
async function alert(message: LifecycleMessage, env: Env): Promise<void> {
  const body = JSON.stringify(alertOf(message));
  const url = env.ALERT_WEBHOOK_URL;
  if (url === undefined || url === "") {
    console.log(`events-consumer: ${body}`);
    return;
  }
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": message.messageId },
    body,
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`webhook answered ${response.status}`);
}

/** The dedupe object that holds a message's row: by edge-session's own stable shard hash of its messageId, over DEDUPE_SHARDS. */
export function dedupeFor(env: Env, key: string): DurableObjectStub<MessageDedupe> {
  return env.DEDUPE.get(env.DEDUPE.idFromName(`shard-${shardOf(key, DEDUPE_SHARDS)}`));
}
