/**
 * `forNamespace(tenant)` is documented to take a tenant of 1–64 characters of
 * `A-Z a-z 0-9 . _ ~ -` (docs/rpc.md, SECURITY.md). A value that is not such a string
 * must be refused, never quietly turned into another scope.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../src/memory";
import { configFor } from "../src/session/config";
import { freshId } from "./support/back-ends";
import { rpcFailure } from "./support/rpc";

describe("forNamespace refuses what is not a tenant string", () => {
  it("over RPC, forNamespace(undefined) does not hand out the unscoped sessions", async () => {
    const svc = exports.SessionService as any;
    const id = freshId("unscoped");
    await svc.setSession(id, "unscoped-model", "SIMPLE");
    // A gateway that writes env.SESSION.forNamespace(auth.tenant) with tenant missing.
    expect(await rpcFailure(svc.forNamespace(undefined).getSession(id))).toMatch(/^invalid_request: /);
  });

  it("over RPC, a non-string tenant is refused, not stringified into another tenant", async () => {
    const svc = exports.SessionService as any;
    const id = freshId("acme");
    await svc.forNamespace("acme").setSession(id, "acme-model", "SIMPLE");
    // ["acme"] stringifies to "acme": it reads tenant acme's session.
    expect(await rpcFailure(svc.forNamespace(["acme"]).getSession(id))).toMatch(/^invalid_request: /);
    for (const ns of [null, 123, true]) expect(await rpcFailure(svc.forNamespace(ns).getSession(id))).toMatch(/^invalid_request: /);
  });

  it("MemoryStore.forNamespace(undefined) is refused as well", async () => {
    const store = new MemoryStore({ config: configFor(env), sweepIntervalMs: 0 });
    await store.setSession("c1", "unscoped-model", "SIMPLE");
    const err = await store
      .forNamespace(undefined as unknown as string)
      .getSession("c1")
      .then(
        () => undefined,
        (e: { code?: string }) => e.code,
      );
    expect(err).toBe("invalid_request");
    store.close();
  });
});

describe("what the RPC entrypoints expose", () => {
  async function through(fetcher: Fetcher, method: string): Promise<string> {
    const res = await fetcher.fetch("http://gateway.test/", { method: "POST", body: JSON.stringify({ method, args: [] }) });
    return JSON.stringify(await res.json());
  }

  it("no facade internals and no admin op on SessionService; no facade internals on SessionAdmin", async () => {
    for (const m of [
      "call",
      "dispatch",
      "invoke",
      "keyOf",
      "resolveParsed",
      "answerOf",
      "getStats",
      "clearAll",
      "pauseSession",
      "resumeSession",
      "pinSession",
      "unpinSession",
      "env",
      "ctx",
      "backend",
      "config",
    ]) {
      expect(await through(env.GATEWAY, m)).toMatch(/does not implement/);
    }
    for (const m of ["call", "invoke", "dispatch", "keyOf", "resolveParsed", "run", "env", "ctx", "backend", "config"]) {
      expect(await through(env.OPERATOR, m)).toMatch(/does not implement/);
    }
  });

  it("a SessionScope has the api operations only", async () => {
    const scope = (exports.SessionService as any).forNamespace("acme");
    for (const m of ["getStats", "clearAll", "forNamespace", "call", "invoke"]) {
      expect(await rpcFailure(scope[m]())).toMatch(/does not implement/);
    }
  });
});
