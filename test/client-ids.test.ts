/**
 * The typed client puts the session ID into the path, where URL parsing would fold
 * "." and ".." away and reach another route or another session; it refuses them as
 * the service does (docs/http-api.md "Session IDs"): 400 `invalid_session_id`.
 */
import { describe, expect, it } from "vitest";
import { createSessionClient } from "../src/client";
import { router } from "../src/http/router";
import { env } from "cloudflare:workers";
import { ADMIN_TOKEN, API_TOKEN } from "./support/http";

const viaWorker: typeof fetch = (input, init) => router.fetch(new Request(input as RequestInfo, init), env, {} as ExecutionContext);
const client = createSessionClient({ baseUrl: "http://sessions.test", token: API_TOKEN, adminToken: ADMIN_TOKEN, fetch: viaWorker });
const failure = (p: Promise<unknown>) =>
  p.then(
    (v) => ({ resolved: v }),
    (e: { status: number; code: string }) => `${e.status} ${e.code}`,
  );

describe('client calls with the IDs "." and ".."', () => {
  it('getSessionCost(".") does not answer the session named "cost"', async () => {
    await client.setSession("cost", "model-of-the-session-named-cost", "SIMPLE");
    // GET /v1/sessions/./cost becomes GET /v1/sessions/cost: getSession("cost"), a SessionView.
    expect(await failure(client.getSessionCost("."))).toBe("400 invalid_session_id");
  });

  it('every per-session method refuses "." and ".." as invalid_session_id', async () => {
    const calls: [string, () => Promise<unknown>][] = [
      ['getSession("..")', () => client.getSession("..")],
      ['touchSession(".")', () => client.touchSession(".")],
      ['escalateSession("..")', () => client.escalateSession("..")],
      ['recordRequestHash("..", "h")', () => client.recordRequestHash("..", "h")],
      ['addSessionCost(".", 1)', () => client.addSessionCost(".", 1)],
      ['clearSession("..")', () => client.clearSession("..")],
    ];
    const got = Object.fromEntries(await Promise.all(calls.map(async ([name, run]) => [name, await failure(run())] as const)));
    expect(got).toEqual(Object.fromEntries(calls.map(([name]) => [name, "400 invalid_session_id"])));
  });
});
