/** The Durable Objects as the facade's back end: one object per session, the registry for stats and clear-all. */
import type { Env } from "../env";
import type { Backend } from "../facade";
import { SessionError } from "../session/errors";
import { clearAll, getStats } from "./registry-fanout";

export function objectsBackend(env: Env): Backend {
  return {
    async run(key, name, input) {
      try {
        return await env.SESSIONS.get(env.SESSIONS.idFromName(key)).run(key, name, input);
      } catch (err) {
        // Workers RPC keeps an error's own `code` and `details`, not its class.
        throw SessionError.revive(err) ?? err;
      }
    },
    getStats: (options) => getStats(env, options),
    clearAll: () => clearAll(env),
  };
}
