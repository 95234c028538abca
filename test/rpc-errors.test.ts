/**
 * Errors as another Worker receives them over its service binding
 * (test/fixtures/gateway-worker.js reports what it caught): a SessionError's
 * `code` and `details` arrive as the error's own properties, its message is
 * the plain message (no "code: " prefix), and an unexpected failure arrives as
 * `internal_error` / "internal error" with none of its own text.
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SessionObject } from "../src/objects/session-object";
import { configFor } from "../src/session/config";
import { freshId } from "./support/back-ends";
import { stubOf } from "./support/objects";

interface Caught {
  name: unknown;
  message: string;
  code: unknown;
  details: unknown;
  isError: boolean;
  ownCode: boolean;
  ownDetails: boolean;
}

/** Calls `method` from the gateway Worker (or the operator's, `via: env.OPERATOR`) and answers what it caught. */
async function failure(method: string, args: unknown[], options: { namespace?: string; via?: Fetcher } = {}): Promise<Caught> {
  const worker = options.via ?? env.GATEWAY;
  const res = await worker.fetch("http://gateway/", { method: "POST", body: JSON.stringify({ method, args, namespace: options.namespace }) });
  const out = (await res.json()) as { ok?: unknown; caught?: Caught };
  expect(out, `${method} should have failed`).not.toHaveProperty("ok");
  expect(out.caught).toBeDefined();
  return out.caught!;
}

/** What every SessionError must look like on the other side. */
function expectSessionError(caught: Caught, code: string) {
  expect(caught.isError).toBe(true);
  expect(caught.ownCode).toBe(true);
  expect(caught.ownDetails).toBe(true);
  expect(caught.code).toBe(code);
  expect(typeof caught.details).toBe("object");
  expect(caught.details).not.toBeNull();
  expect(caught.message).not.toMatch(/^[a-z_]+: /);
  expect(caught.message).not.toContain(code);
}

const openai = (text: string) => ({ model: "auto", messages: [{ role: "user", content: text }] });

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a SessionError crossing Workers RPC", () => {
  it("invalid_request: code and details.field arrive as own properties, the message is the plain one", async () => {
    const tier = await failure("setSession", [freshId("rpc-err"), "m", "BOGUS"]);
    expectSessionError(tier, "invalid_request");
    expect(tier.details).toEqual({ field: "tier" });
    expect(tier.message).toMatch(/^tier must be one of /);

    const routed = await failure("resolve", [{ sessionId: freshId("rpc-err"), body: openai("hi") }]);
    expectSessionError(routed, "invalid_request");
    expect(routed.details).toEqual({ field: "routed" });
    expect(routed.message).toMatch(/^routed /);
  });

  it("invalid_request through a namespace scope, an RpcTarget, arrives the same way", async () => {
    const caught = await failure("addSessionCost", [freshId("rpc-err"), -1], { namespace: "tenant-a" });
    expectSessionError(caught, "invalid_request");
    expect(caught.details).toEqual({ field: "micros" });
    expect(caught.message).toMatch(/^micros must be a non-negative safe integer/);
  });

  it("invalid_session_id: the code arrives, with details as an own property", async () => {
    for (const id of ["", ".", "a\u0000b", "x".repeat(257)]) {
      const caught = await failure("setSession", [id, "m", "SIMPLE"]);
      expectSessionError(caught, "invalid_session_id");
      expect(caught.message).toMatch(/session ID/);
    }
  });

  it("session_budget_exceeded: its details (spent, asked, budget) arrive", async () => {
    const budget = configFor(env).budgetMicros!;
    const caught = await failure("resolve", [
      { sessionId: freshId("rpc-budget"), body: openai("hi"), routed: { model: "m", tier: "SIMPLE" }, costMicros: budget + 1 },
    ]);
    expectSessionError(caught, "session_budget_exceeded");
    expect(caught.details).toEqual({ sessionCostMicros: 0, reservedMicros: 0, costMicros: budget + 1, budgetMicros: budget });
    expect(caught.message).toMatch(/^session cost /);
  });

  it("invalid_cursor and invalid_request from SessionAdmin reach the operator's Worker", async () => {
    const cursor = await failure("getStats", [{ cursor: "not-a-cursor" }], { via: env.OPERATOR });
    expectSessionError(cursor, "invalid_cursor");
    const limit = await failure("getStats", [{ limit: 0 }], { via: env.OPERATOR });
    expectSessionError(limit, "invalid_request");
    expect(limit.details).toEqual({ field: "limit" });
  });
});

describe("an unexpected error crossing Workers RPC", () => {
  it('arrives as internal_error, "internal error", with none of its own text', async () => {
    const id = freshId("rpc-internal");
    await runInDurableObject(stubOf(id), (_obj: SessionObject, state) => {
      vi.spyOn(state.storage.kv, "put").mockImplementationOnce(() => {
        throw new Error("injected: disk full at /var/secret/shard-7");
      });
    });
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const caught = await failure("setSession", [id, "m", "SIMPLE"]);
    expectSessionError(caught, "internal_error");
    expect(caught.message).toBe("internal error");
    expect(caught.details).toEqual({});
    expect(JSON.stringify(caught)).not.toMatch(/injected|disk full|secret|shard-7/);
    // The original is logged on the service's side, where an operator reads it.
    expect(errors.mock.calls.flat().join(" ")).toContain("disk full");
    // The session works afterwards.
    expect((await exports.SessionService.setSession(id, "m", "SIMPLE")).requestCount).toBe(1);
  });
});
