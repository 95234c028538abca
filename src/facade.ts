/**
 * One API over a back end: the Durable Objects (src/objects/backend.ts) or an
 * in-memory map (src/memory.ts). Every operation of the command table runs
 * through `invoke`, which does once what every operation needs: validate the
 * input against the table's schema, check that sessions are enabled, scope
 * the session to its tenant, and turn the rule's result into the answer.
 * Past this point values are typed and trusted.
 */
import { commandNames, commands, defineOperations, type Api, type CommandName, type JournalCommandName, type SessionCommandName } from "./commands";
import type { Actor } from "./session/journal";
import { planResolve, type ResolveResult } from "./requests/resolve-input";
import { parseInput } from "./schemas";
import type { Config } from "./session/config";
import { invalidRequest, sessionsDisabled } from "./session/errors";
import type { ResolveDecision } from "./session/rules";
import { namespacedKey, type ClearProgress, type Stats } from "./session/stats";
import { sessionIdProblem, validateNamespace } from "./session/validate";

/** Where sessions live. `key` is the session's storage name: its ID, or its tenant's scoped key. */
export interface Backend {
  /**
   * Runs a per-session command's rule on the session stored under `key`; the input is
   * validated. An in-memory back end answers synchronously, which saves a promise hop.
   */
  run(key: string, name: SessionCommandName | "resolve", input: unknown, actor?: Actor): unknown;
  /** Serves a journal command (its events, a live-feed ticket) for the session stored under `key`. */
  journal(key: string, name: JournalCommandName, input: { id: string } & Record<string, unknown>): Promise<unknown>;
  getStats(options: { limit: number; cursor?: string | undefined }): Promise<Stats>;
  clearAll(): Promise<ClearProgress>;
}

export interface Sessions extends Api {}

export class Sessions {
  /** Set when the facade is scoped to a tenant: its namespace, as the caller gave it (validated on use). */
  private readonly scope: { namespace: unknown } | undefined;

  constructor(
    private readonly backend: Backend,
    readonly config: Config,
    scope?: { namespace: unknown },
    /** Who calls, journaled with the changes commands make: an operator's grant or a gateway's. */
    private readonly actor: Actor = "api",
  ) {
    this.scope = scope;
  }

  /**
   * The same back end and configuration, with every session scoped to `namespace`
   * (see SECURITY.md): from the SESSION_NAMESPACE_HEADER of an HTTP call, or from RPC
   * `forNamespace`. Any value that is not a valid namespace fails each call with
   * `invalid_request`; `undefined` is not "no tenant".
   */
  forNamespace(namespace: string): Sessions {
    if (this.scope !== undefined) throw new TypeError("this facade is already scoped to a tenant");
    return new Sessions(this.backend, this.config, { namespace }, this.actor);
  }

  /**
   * The object name and registry key of a session: the ID itself when unscoped, or the tenant's
   * namespace and the ID joined by a separator no validated ID contains, so the two never meet.
   */
  keyOf(sessionId: string): string {
    if (this.scope !== undefined) return namespacedKey(validateNamespace(this.scope.namespace, this.config.namespaceHeader), sessionId);
    if (this.config.namespaceHeader !== undefined) {
      throw invalidRequest(this.config.namespaceHeader, "header is required: sessions are scoped by tenant (SESSION_NAMESPACE_HEADER)");
    }
    return sessionId;
  }

  /**
   * Runs one operation on its input object (HTTP path, query and body fields, or RPC
   * arguments by name). A per-session operation answers null when there is no live session.
   */
  invoke(name: CommandName, input: unknown): Promise<unknown> {
    return this.call(name, input, false);
  }

  /**
   * `invoke`, or with `answer` the facade's and RPC's answer (see `answerOf`). Not an
   * async function, and one `then` per call: in memory, each extra promise hop costs
   * about a fifth of a call.
   */
  call(name: CommandName, input: unknown, answer: boolean): Promise<unknown> {
    try {
      return this.dispatch(name, input, answer);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private dispatch(name: CommandName, input: unknown, answer: boolean): Promise<unknown> {
    const command = commands[name];
    switch (command.kind) {
      case "session": {
        const parsed = (ID_ONLY.has(name) && validIdOnly(input)) || (parseInput(command.input, input) as { id: string });
        if (!this.config.enabled) throw sessionsDisabled();
        const finish = (result: unknown) => {
          const value = command.present(result as never, parsed.id, this.config);
          return answer ? answerOf(name, value) : value;
        };
        const result = this.backend.run(this.keyOf(parsed.id), name as SessionCommandName, parsed, this.actor);
        return result instanceof Promise ? result.then(finish) : Promise.resolve(finish(result));
      }
      case "resolve":
        return this.resolveParsed(parseInput(command.input, input));
      case "journal": {
        const parsed = parseInput(command.input, input) as { id: string };
        if (!this.config.enabled) throw sessionsDisabled();
        return this.backend.journal(this.keyOf(parsed.id), name as JournalCommandName, parsed);
      }
      case "local":
        return (command.run as (input: unknown) => Promise<unknown>)(parseInput(command.input, input));
      case "admin": {
        const parsed = parseInput(command.input, input);
        return name === "getStats" ? this.backend.getStats(parsed as { limit: number; cursor?: string }) : this.backend.clearAll();
      }
    }
  }

  private async resolveParsed(input: Parameters<typeof planResolve>[0]): Promise<ResolveResult> {
    const plan = await planResolve(input, this.config);
    if (plan.sessionId === null) return plan.result;
    const decision = (await this.backend.run(this.keyOf(plan.sessionId), "resolve", plan.request)) as ResolveDecision;
    return { sessionId: plan.sessionId, source: plan.source, ...decision };
  }
}

/** The session commands whose input is the session ID alone. */
const ID_ONLY: ReadonlySet<CommandName> = new Set(
  commandNames.filter((name) => commands[name].kind === "session" && Object.keys(commands[name].input.shape).join() === "id"),
);

/**
 * The parsed input of an ID-only command when the ID is valid, without zod: the
 * schema (src/schemas.ts `sessionId`) is a string passing `sessionIdProblem`, so
 * this answers exactly what it would, at a third of the cost of an in-memory call.
 * Anything else goes to the schema, which words the error. test/schemas.test.ts
 * checks that the two agree.
 */
export function validIdOnly(input: unknown): { id: string } | undefined {
  const id = typeof input === "object" && input !== null && !Array.isArray(input) ? (input as { id?: unknown }).id : undefined;
  return typeof id === "string" && sessionIdProblem(id) === undefined ? { id } : undefined;
}

/** The RPC and facade arguments of an operation as its input object. */
export function argsToInput(name: CommandName, args: readonly unknown[]): unknown {
  const names = commands[name].args;
  if (names === "object") return args[0] ?? {};
  const input: Record<string, unknown> = {};
  for (let i = 0; i < names.length; i++) input[names[i]!] = args[i];
  return input;
}

/** An operation's answer to a facade or RPC caller: a per-session operation's "no live session" is its `unknown` value. */
export function answerOf(name: CommandName, value: unknown): unknown {
  const command = commands[name];
  return value === null && command.kind === "session" ? (("unknown" in command ? command.unknown : undefined) ?? null) : value;
}

defineOperations(Sessions.prototype, commandNames, (self, name, args) => self.call(name, argsToInput(name, args), true));
