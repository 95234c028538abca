/** Tenant scope: with SESSION_NAMESPACE_HEADER set, the same session ID in two tenants is two sessions. */
import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createSessionClient } from "../src/client";
import { router } from "../src/http/router";
import { facadeFor } from "./support/back-ends";
import { namespacedKey } from "../src/session/stats";
import { validateSessionId } from "../src/session/validate";
import { ADMIN_TOKEN, API_TOKEN, call, sessionPath } from "./support/http";
import { freshId } from "./support/back-ends";
import { rpcFailure } from "./support/rpc";

const scoped = { ...env, SESSION_NAMESPACE_HEADER: "x-tenant-id" };
const viaScopedWorker: typeof fetch = (input, init) => router.fetch(new Request(input as RequestInfo, init), scoped, {} as ExecutionContext);
const tenant = (name: string) =>
  createSessionClient({ baseUrl: "http://sessions.test", token: API_TOKEN, adminToken: ADMIN_TOKEN, fetch: viaScopedWorker, headers: { "x-tenant-id": name } });

const body = (text: string) => ({ model: "auto", messages: [{ role: "user", content: text }] });

describe("tenant namespaces over HTTP", () => {
  it("keeps a derived session per tenant: the same first message in two tenants is two sessions", async () => {
    const [a, b] = [tenant(`a-${crypto.randomUUID().slice(0, 8)}`), tenant(`b-${crypto.randomUUID().slice(0, 8)}`)];
    const first = `hello ${crypto.randomUUID()}`;
    const ra = await a.resolve({ body: body(first), routed: { model: "gemini-2.5-flash", tier: "SIMPLE" }, costMicros: 100 });
    const rb = await b.resolve({ body: body(first), routed: { model: "gemini-3.1-pro", tier: "COMPLEX" }, costMicros: 5 });
    expect(ra.sessionId).toBe(rb.sessionId);
    expect([ra.pinned, rb.pinned]).toEqual([false, false]);
    expect(await a.getSession(ra.sessionId!)).toMatchObject({ model: "gemini-2.5-flash", sessionCostMicros: 100, id: ra.sessionId });
    expect(await b.getSession(rb.sessionId!)).toMatchObject({ model: "gemini-3.1-pro", sessionCostMicros: 5 });
  });

  it("a header session ID from one tenant never reaches another tenant's session", async () => {
    const id = freshId("shared");
    const [a, b] = [tenant("acme"), tenant("globex")];
    await a.setSession(id, "secret-model", "", true);
    expect(await b.getSession(id)).toBeNull();
    expect((await b.resolve({ headers: { "x-session-id": id }, body: body("x"), routed: { model: "m", tier: "SIMPLE" } })).pinned).toBe(false);
    expect((await a.getSession(id))!.requestCount).toBe(1);
  });

  it("requires a valid tenant header on session routes, not on stateless or admin routes", async () => {
    const none = createSessionClient({ baseUrl: "http://sessions.test", token: API_TOKEN, adminToken: ADMIN_TOKEN, fetch: viaScopedWorker });
    expect(await none.getSession("x").catch((e) => [e.status, e.code, e.details.field])).toEqual([400, "invalid_request", "x-tenant-id"]);
    expect(await none.resolve({ sessionId: "x", body: body("x"), routed: { model: "m", tier: "SIMPLE" } }).catch((e) => e.status)).toBe(400);
    expect(
      await tenant("bad:tenant")
        .getSession("x")
        .catch((e) => [e.status, e.code]),
    ).toEqual([400, "invalid_request"]);
    expect(await none.deriveSessionId("hello")).toMatch(/^2cf24dba/);
    await none.clearAll();
    await tenant("acme").setSession(freshId("counted"), "m", "SIMPLE");
    await tenant("globex").setSession(freshId("counted"), "m", "SIMPLE");
    expect((await none.getStats({ limit: 1 })).count).toBe(2);
  });

  it("shows the tenant whole and the session ID truncated in stats", async () => {
    const name = `t${crypto.randomUUID().slice(0, 6)}`;
    const id = `conversation-${crypto.randomUUID()}`;
    await tenant(name).setSession(id, "m", "SIMPLE");
    const api = facadeFor(scoped);
    const all = [];
    let cursor: string | undefined;
    do {
      const page = await api.getStats({ limit: 10_000, cursor });
      all.push(...page.sessions);
      cursor = page.nextCursor;
    } while (cursor);
    expect(all).toContainEqual(expect.objectContaining({ id: "conversa...", tenant: name }));
  });

  it("never shows an unscoped ID 'tenant:id' like that tenant's session 'id'", async () => {
    const name = `t${crypto.randomUUID().slice(0, 2)}`;
    const [unscopedModel, scopedModel] = [freshId("unscoped-model"), freshId("tenant-model")];
    await exports.SessionService.setSession(`${name}:c1`, unscopedModel, "SIMPLE");
    await exports.SessionService.forNamespace(name).setSession("c1", scopedModel, "SIMPLE");
    const all = [];
    let cursor: string | undefined;
    do {
      const page = await exports.SessionAdmin.getStats({ limit: 10_000, cursor });
      all.push(...page.sessions);
      cursor = page.nextCursor;
    } while (cursor);
    const shown = all.filter((s) => s.model === unscopedModel || s.model === scopedModel).map(({ id, tenant, model }) => ({ id, tenant, model }));
    expect(shown).toEqual(
      expect.arrayContaining([
        { id: `${name}:c1`, tenant: undefined, model: unscopedModel },
        { id: "c1", tenant: name, model: scopedModel },
      ]),
    );
    expect(shown).toHaveLength(2);
  });
});

describe("tenant namespaces over RPC", () => {
  it("forNamespace scopes every call, pipelined in one round trip", async () => {
    const id = freshId("rpc-tenant");
    await exports.SessionService.forNamespace("acme").setSession(id, "acme-model", "SIMPLE");
    expect(await exports.SessionService.forNamespace("globex").getSession(id)).toBeNull();
    expect(await exports.SessionService.getSession(id)).toBeNull();
    expect((await exports.SessionService.forNamespace("acme").getSession(id))!.model).toBe("acme-model");
    expect(await rpcFailure(exports.SessionService.forNamespace("no spaces").getSession(id))).toMatch(/^invalid_request: namespace/);
  });
});

describe("scoped and unscoped sessions never share a key (SESSION_NAMESPACE_HEADER unset)", () => {
  const svc = exports.SessionService;
  const tenantName = () => `t${crypto.randomUUID().slice(0, 8)}`;

  it("an unscoped RPC call with the ID 'tenant:id' does not reach forNamespace(tenant)'s session id", async () => {
    const [t, id] = [tenantName(), freshId("c")];
    await svc.forNamespace(t).setSession(id, "tenant-model", "SIMPLE");
    expect(await svc.getSession(`${t}:${id}`)).toBeNull();
    await svc.setSession(`${t}:${id}`, "intruder-model", "COMPLEX", true);
    expect((await svc.forNamespace(t).getSession(id))!).toMatchObject({ model: "tenant-model", userExplicit: false });
  });

  it("the path /v1/sessions/tenant%3Aid does not reach the tenant's session", async () => {
    const [t, id] = [tenantName(), freshId("c")];
    await svc.forNamespace(t).setSession(id, "tenant-model", "SIMPLE");
    expect((await call("GET", sessionPath(`${t}:${id}`))).status).toBe(404);
    expect((await call("POST", sessionPath(`${t}:${id}`, "/escalate"))).status).toBe(404);
    expect((await svc.forNamespace(t).getSession(id))!).toMatchObject({ model: "tenant-model", tier: "SIMPLE" });
  });

  it("an end user's x-session-id 'tenant:id' in resolve does not reach the tenant's session", async () => {
    const [t, id] = [tenantName(), freshId("c")];
    await svc.forNamespace(t).setSession(id, "tenant-model", "SIMPLE", true);
    const res = await call("POST", "/v1/resolve", {
      body: { headers: { "x-session-id": `${t}:${id}` }, body: body("x"), routed: { model: "m", tier: "SIMPLE" }, costMicros: 7 },
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ pinned: false, model: "m" });
    expect((await svc.forNamespace(t).getSession(id))!).toMatchObject({ requestCount: 1, sessionCostMicros: 0 });
  });

  it("turning the header on later does not hand old unscoped 'tenant:id' sessions to that tenant", async () => {
    const [t, id] = [tenantName(), freshId("c")];
    expect((await call("PUT", sessionPath(`${t}:${id}`), { body: { model: "old-model", tier: "SIMPLE" } })).status).toBe(200);
    expect(await tenant(t).getSession(id)).toBeNull();
  });
});

describe("namespacedKey", () => {
  it("never equals a valid session ID, and splits one way only", () => {
    const validId = fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }).filter((s) => s.length <= 256 && !/[\u0000-\u001f\u007f-\u009f]/.test(s));
    const validNamespace = fc.stringMatching(/^[A-Za-z0-9._~-]{1,64}$/);
    fc.assert(
      fc.property(validNamespace, validId, validNamespace, validId, (n1, id1, n2, id2) => {
        expect(() => validateSessionId(namespacedKey(n1, id1))).toThrow();
        if (n1 !== n2 || id1 !== id2) expect(namespacedKey(n1, id1)).not.toBe(namespacedKey(n2, id2));
        expect(namespacedKey(n1, id1)).not.toBe(`${n1}:${id1}`);
      }),
    );
  });
});
