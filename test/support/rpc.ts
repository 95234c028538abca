/** Reading errors that crossed Workers RPC: the service's code arrives as the error's own `code` property. */

/**
 * A call's failure as "code: message", or "resolved" when it did not fail.
 * It takes the call's promise, never a function: an RPC promise is itself
 * callable (for pipelining), so a `typeof === "function"` test would call it.
 */
export async function rpcFailure(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "resolved";
  } catch (err) {
    return `${(err as { code?: unknown }).code}: ${(err as Error).message}`;
  }
}
