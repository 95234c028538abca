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
import type { Actor } from "./session/journal";
import { toSessionError } from "./unexpected";

/** Runs one operation for an RPC caller: configuration is read per call, so an invalid var fails the call, not the binding. */
async function callOver(env: Env, scope: { namespace: unknown } | undefined, name: CommandName, args: unknown[], actor: Actor): Promise<unknown> {
  try {
    const scoped = new Sessions(objectsBackend(env), configFor(env), scope, actor);
    return await scoped.call(name, argsToInput(name, args), true);
  } catch (err) {
    const e = toSessionError(err);
    throw new SessionError(e.code, e.message, e.details);
  }
}

/** The operations a grant allows: the admin grant allows every one. */
const namesFor = (grant: "api" | "admin") => commandNames.filter((name) => grant === "admin" || commands[name].grant === "api");
/** The per-session operations a grant allows, for a tenant's scope. */
const perSessionFor = (grant: "api" | "admin") => namesFor(grant).filter((name) => commands[name].kind !== "admin");

/**
 * A tenant's scope: the per-session operations a grant allows, each working on
 * `namespace`'s sessions only. `namespace` arrives over RPC as any value: each
 * call validates it and fails with `invalid_request` if it is not a namespace.
 */
function scopeFor(grant: "api" | "admin") {
  return class extends RpcTarget {
    // `#`-private: Workers RPC exposes every method and accessor on the prototype, TypeScript's `private` included.
    readonly #env: Env;
    readonly #scope: { namespace: unknown };

    constructor(env: Env, namespace: unknown) {
      super();
      this.#env = env;
      this.#scope = { namespace };
    }

    static {
      defineOperations(this.prototype, perSessionFor(grant), (self, name, args) => callOver(self.#env, self.#scope, name, args, grant));
    }
  };
}

export interface SessionScope extends ApiFor<"api"> {}

/** The gateway's operations, scoped to one tenant's namespace. */
export class SessionScope extends scopeFor("api") {}

export interface SessionService extends ApiFor<"api"> {}

export class SessionService extends WorkerEntrypoint<Env> {
  /** Every call through the returned scope works on `namespace`'s sessions only (see SECURITY.md). */
  forNamespace(namespace: string): SessionScope {
    return new SessionScope(this.env, namespace);
  }

  static {
    defineOperations(SessionService.prototype, namesFor("api"), (self, name, args) => callOver(self.env, undefined, name, args, "api"));
  }
}

type PerSessionAdmin = Omit<ApiFor<"admin">, "getStats" | "clearAll">;
export interface AdminScope extends PerSessionAdmin {}

/** An operator's per-session operations on one tenant's sessions. */
export class AdminScope extends scopeFor("admin") {}

export interface SessionAdmin extends ApiFor<"admin"> {}

/**
 * The operator's front door: every operation, stats and clear-all across every tenant
 * and the operator actions (pause, resume, pin) included, journaled with the actor
 * "admin". For operators' Workers only.
 */
export class SessionAdmin extends WorkerEntrypoint<Env> {
  /** Every per-session call through the returned scope works on `namespace`'s sessions only. */
  forNamespace(namespace: string): AdminScope {
    return new AdminScope(this.env, namespace);
  }

  static {
    defineOperations(SessionAdmin.prototype, namesFor("admin"), (self, name, args) => callOver(self.env, undefined, name, args, "admin"));
  }
}
