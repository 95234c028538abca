import { SessionError, type ErrorBody } from "../session/errors";

/**
 * What an object method answers. Domain errors travel as data because Workers
 * RPC keeps only an error's message, not its code or details.
 */
export type Reply<R> = { value: R } | { error: ErrorBody };

export async function toReply<R>(work: () => Promise<R>): Promise<Reply<R>> {
  try {
    return { value: await work() };
  } catch (err) {
    if (err instanceof SessionError) return { error: err.toBody() };
    throw err;
  }
}

export function unwrap<R>(reply: Reply<R>): R {
  if ("error" in reply) {
    const { code, message, ...details } = reply.error;
    throw new SessionError(code, message, details);
  }
  return reply.value;
}
