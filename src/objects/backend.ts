/** The Durable Objects as the facade's back end: one object per session, the registry for stats and clear-all. */
import type { Env } from "../env";
import type { Backend } from "../facade";
import { isRefusal, SessionError } from "../session/errors";
import { clearAll, getStats } from "./registry-fanout";

export function objectsBackend(env: Env): Backend {
  return {
    async run(key, name, input, actor) {
      let answer: unknown;
      try {
        answer = await env.SESSIONS.get(env.SESSIONS.idFromName(key)).run(key, name, input, actor);
      } catch (err) {
        // Workers RPC keeps an error's own `code` and `details`, not its class.
        throw SessionError.revive(err) ?? err;
      }
      if (isRefusal(answer)) throw SessionError.fromBody(answer.refused);
      return answer;
    },
    async journal(key, name, input) {
      const stub = env.SESSIONS.get(env.SESSIONS.idFromName(key));
      return name === "getEvents" ? stub.getEvents(input.after as number) : stub.liveTicket(input.id);
    },
    getStats: (options) => getStats(env, options),
    clearAll: () => clearAll(env),
  };
}
