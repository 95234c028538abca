/**
 * GET /openapi.json against the Worker that serves it: the document is public,
 * every operation it lists is a route that answers its documented method, and
 * every documented failure the test can provoke (401 without a token, 403 for
 * the API token on an admin route) answers a documented status with a body the
 * document's own error schema accepts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, API_TOKEN, call } from "./support/http";
import { freshId } from "./support/back-ends";

type Json = Record<string, any>;
interface Operation {
  path: string;
  method: string;
  op: Json;
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

let doc: Json;
let operations: Operation[];

beforeAll(async () => {
  const res = await call("GET", "/openapi.json", { token: null });
  expect(res.status).toBe(200);
  doc = res.json;
  operations = Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
    METHODS.filter((method) => item[method] !== undefined).map((method) => ({ path, method, op: item[method] as Json })),
  );
});

/** A `#/...` reference's target in the document, or undefined when it names nothing. */
function deref(ref: string): Json | undefined {
  if (!ref.startsWith("#/")) throw new Error(`not a local reference: ${ref}`);
  let node: any = doc;
  for (const part of ref.slice(2).split("/")) node = node?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  return node;
}

const KNOWN_KEYWORDS = new Set(["$ref", "type", "required", "properties", "additionalProperties", "enum", "const", "items", "description", "title"]);

/**
 * Problems of `value` against a JSON Schema, for the keywords an error schema
 * uses; any other keyword is reported as a problem rather than skipped, so a
 * schema this checker cannot read never passes by default.
 */
function schemaProblems(schema: Json, value: unknown, at = "$"): string[] {
  const unknown = Object.keys(schema).filter((key) => !KNOWN_KEYWORDS.has(key));
  if (unknown.length > 0) return [`${at}: schema keywords this test cannot check: ${unknown.join(", ")}`];
  if (schema.$ref !== undefined) {
    const target = deref(schema.$ref);
    return target === undefined ? [`${at}: dangling $ref ${schema.$ref}`] : schemaProblems(target, value, at);
  }
  const problems: string[] = [];
  if (schema.type !== undefined) {
    const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
    const ok = types.some((t) => t === actual || (t === "integer" && Number.isInteger(value)));
    if (!ok) return [`${at}: ${JSON.stringify(value)} is not of type ${types.join("|")}`];
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of the enum`);
  if (schema.const !== undefined && schema.const !== value) problems.push(`${at}: ${JSON.stringify(value)} is not ${JSON.stringify(schema.const)}`);
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!Object.hasOwn(object, key)) problems.push(`${at}: missing ${key}`);
    for (const [key, v] of Object.entries(object)) {
      const sub = schema.properties?.[key];
      if (sub !== undefined) problems.push(...schemaProblems(sub, v, `${at}.${key}`));
      else if (schema.additionalProperties === false) problems.push(`${at}: unexpected ${key}`);
      else if (typeof schema.additionalProperties === "object") problems.push(...schemaProblems(schema.additionalProperties, v, `${at}.${key}`));
    }
  }
  if (Array.isArray(value) && schema.items !== undefined) value.forEach((v, i) => problems.push(...schemaProblems(schema.items, v, `${at}[${i}]`)));
  return problems;
}

/** The JSON schema the operation documents for a status, or a reason it has none. */
function documentedSchema(op: Json, status: number): Json | string {
  const response = op.responses?.[String(status)];
  if (response === undefined) return `status ${status} is not documented (documented: ${Object.keys(op.responses ?? {}).join(", ")})`;
  const resolved = response.$ref ? deref(response.$ref) : response;
  const schema = resolved?.content?.["application/json"]?.schema;
  return schema ?? `status ${status} documents no application/json schema`;
}

/** A concrete URL for a path template: each `{param}` a fresh session ID. */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, () => encodeURIComponent(freshId("openapi")));

const label = ({ method, path }: Operation) => `${method.toUpperCase()} ${path}`;
const needsToken = ({ op }: Operation) => (op.security ?? doc.security ?? []).length > 0;
const isAdmin = ({ op }: Operation) => (op.security ?? []).some((req: Json) => Object.hasOwn(req, "adminToken"));

describe("GET /openapi.json", () => {
  it("answers without a token, an OpenAPI 3.1 document with paths and an error schema", async () => {
    const res = await call("GET", "/openapi.json", { token: null });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.json.openapi).toMatch(/^3\.1\.\d+$/);
    expect(operations.length).toBeGreaterThan(0);
    // The same document with a token.
    expect((await call("GET", "/openapi.json", { token: API_TOKEN })).json).toEqual(res.json);
  });

  it("names each operation once", () => {
    const ids = operations.map(({ op }) => op.operationId);
    expect(ids.every((id) => typeof id === "string" && id !== "")).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("declares exactly the parameters its path templates use, each required", () => {
    for (const operation of operations) {
      const templated = [...operation.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = (operation.op.parameters ?? []).filter((p: Json) => p.in === "path");
      expect(declared.map((p: Json) => p.name).sort(), label(operation)).toEqual(templated);
      for (const p of declared) expect(p.required, `${label(operation)} ${p.name}`).toBe(true);
    }
  });

  it("protects stats and clear-all with the admin token, and every other /v1 operation with the API token", () => {
    const admin = operations.filter(isAdmin).map(label).sort();
    expect(admin).toEqual([
      "DELETE /v1/sessions",
      "DELETE /v1/sessions/{id}/pin",
      "GET /v1/stats",
      "POST /v1/sessions/{id}/pause",
      "POST /v1/sessions/{id}/resume",
      "PUT /v1/sessions/{id}/pin",
    ]);
    for (const operation of operations.filter((o) => o.path.startsWith("/v1/"))) expect(needsToken(operation), label(operation)).toBe(true);
  });
});

describe("every documented operation", () => {
  it("is a route that answers its method, with a documented status", async () => {
    for (const operation of operations) {
      // Admin routes too are called with the API token (403): clear-all with the admin token would wipe every test's sessions.
      const token = needsToken(operation) ? API_TOKEN : null;
      const res = await call(operation.method.toUpperCase(), concrete(operation.path), { token });
      expect(res.status, label(operation)).not.toBe(405);
      expect(res.json?.error?.code, label(operation)).not.toBe("not_found");
      expect(Object.keys(operation.op.responses), `${label(operation)} answered ${res.status}`).toContain(String(res.status));
    }
  });

  it("answers 405 method_not_allowed to every method its path does not document", async () => {
    for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
      const documented = METHODS.filter((m) => item[m] !== undefined).map((m) => m.toUpperCase());
      for (const method of ["GET", "PUT", "POST", "DELETE", "PATCH"].filter((m) => !documented.includes(m))) {
        const res = await call(method, concrete(path), { token: ADMIN_TOKEN });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.json.error.code).toBe("method_not_allowed");
        expect(res.headers.get("allow")?.split(/,\s*/).sort()).toEqual(documented.sort());
      }
    }
  });

  it("without a token: 401 unauthorized, documented, with a body the documented error schema accepts", async () => {
    const protectedOps = operations.filter(needsToken);
    expect(protectedOps.length).toBeGreaterThan(0);
    for (const operation of protectedOps) {
      const res = await call(operation.method.toUpperCase(), concrete(operation.path), { token: null });
      expect(res.status, label(operation)).toBe(401);
      expect(res.json, label(operation)).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
      const schema = documentedSchema(operation.op, 401);
      expect(typeof schema === "string" ? schema : schemaProblems(schema, res.json), label(operation)).toEqual([]);
    }
  });

  it("with a token that is not the route's: 401 too", async () => {
    for (const operation of operations.filter(needsToken)) {
      const res = await call(operation.method.toUpperCase(), concrete(operation.path), { token: "not-a-token" });
      expect(res.status, label(operation)).toBe(401);
      expect(res.json.error.code, label(operation)).toBe("unauthorized");
    }
  });

  it("on an admin route, the API token: 403 forbidden, documented, with a body the documented error schema accepts", async () => {
    for (const operation of operations.filter(isAdmin)) {
      expect(Object.keys(operation.op.responses), label(operation)).toContain("403");
      const res = await call(operation.method.toUpperCase(), concrete(operation.path), { token: API_TOKEN });
      expect(res.status, label(operation)).toBe(403);
      expect(res.json, label(operation)).toEqual({ error: { code: "forbidden", message: expect.any(String) } });
      const schema = documentedSchema(operation.op, 403);
      expect(typeof schema === "string" ? schema : schemaProblems(schema, res.json), label(operation)).toEqual([]);
    }
  });

  it("GET /v1/stats with the admin token: 200, a documented status", async () => {
    const stats = operations.find((o) => o.method === "get" && o.path === "/v1/stats")!;
    const res = await call("GET", "/v1/stats?limit=1", { token: ADMIN_TOKEN });
    expect(res.status).toBe(200);
    expect(Object.keys(stats.op.responses)).toContain("200");
  });

  it("an error body the error schema refuses is caught by this test's checker", () => {
    // The checker itself: a wrong code, a missing message and an unknown keyword are each a problem.
    const schema = documentedSchema(operations.find(needsToken)!.op, 401) as Json;
    expect(schemaProblems(schema, { error: { code: "no_such_code", message: "m" } })).not.toEqual([]);
    expect(schemaProblems(schema, { error: { code: "unauthorized" } })).not.toEqual([]);
    expect(schemaProblems(schema, { error: "unauthorized" })).not.toEqual([]);
    expect(schemaProblems({ type: "object", oneOf: [] }, {})).not.toEqual([]);
  });
});
