/**
 * Workers RPC front doors on service bindings: the command table's operations
 * with no HTTP and no token (the binding is the grant). SessionService holds
 * the operations a gateway needs; SessionAdmin holds the ones that reach every
 * tenant, so a deployment binds it only where operators need it.
 *
 * Errors reach the caller as errors whose `code` and `details` are own
 * properties, which Workers RPC carries (the caller's `err.code`); their
 * `cause` is dropped, since it may hold platform text.
 */
import { RpcTarget, WorkerEntrypoint } from "cloudflare:workers";
import { commandNames, commands, defineOperations, type ApiFor, type CommandName } from "./commands";
import type { Env } from "./env";
import { argsToInput, Sessions } from "./facade";
import { objectsBackend } from "./objects/backend";
import { configFor } from "./session/config";
import { SessionError } from "./session/errors";
import { toSessionError } from "./unexpected";

/** Runs one operation for an RPC caller: configuration is read per call, so an invalid var fails the call, not the binding. */
async function callOver(env: Env, scope: { namespace: unknown } | undefined, name: CommandName, args: unknown[]): Promise<unknown> {
  try {
    const scoped = new Sessions(objectsBackend(env), configFor(env), scope);
    return await scoped.call(name, argsToInput(name, args), true);
  } catch (err) {
    const e = toSessionError(err);
    throw new SessionError(e.code, e.message, e.details);
  }
}

const namesFor = (grant: "api" | "admin") => commandNames.filter((name) => commands[name].grant === grant);

export interface SessionScope extends ApiFor<"api"> {}

/** The gateway's operations, optionally scoped to one tenant's namespace. */
export class SessionScope extends RpcTarget {
  // `#`-private: Workers RPC exposes every method and accessor on the prototype, TypeScript's `private` included.
  readonly #env: Env;
  readonly #scope: { namespace: unknown };

  /** `namespace` arrives over RPC as any value: each call validates it and fails with `invalid_request` if it is not a namespace. */
  constructor(env: Env, namespace: unknown) {
    super();
    this.#env = env;
    this.#scope = { namespace };
  }

  static {
    defineOperations(SessionScope.prototype, namesFor("api"), (self, name, args) => callOver(self.#env, self.#scope, name, args));
  }
}

export interface SessionService extends ApiFor<"api"> {}

export class SessionService extends WorkerEntrypoint<Env> {
  /** Every call through the returned scope works on `namespace`'s sessions only (see SECURITY.md). */
  forNamespace(namespace: string): SessionScope {
    return new SessionScope(this.env, namespace);
  }

  static {
    defineOperations(SessionService.prototype, namesFor("api"), (self, name, args) => callOver(self.env, undefined, name, args));
  }
}

export interface SessionAdmin extends ApiFor<"admin"> {}

/** Stats and clear-all across every tenant: the admin token's routes, for operators' Workers only. */
export class SessionAdmin extends WorkerEntrypoint<Env> {
  static {
    defineOperations(SessionAdmin.prototype, namesFor("admin"), (self, name, args) => callOver(self.env, undefined, name, args));
  }
}
