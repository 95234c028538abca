/**
 * The generated OpenAPI document against the OpenAPI 3.1 schema, with the
 * maintained validator @seriousme/openapi-schema-validator: the document
 * src/openapi.ts builds from the command table, bundled with esbuild and
 * imported in Node (no Worker needed).
 */
import assert from "node:assert/strict";
import path from "node:path";
import { before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
import { loadTs } from "../bench/load-ts.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** @type {Record<string, any>} */
let doc;

before(async () => {
  const { openApiDocument } = await loadTs({ entry: path.join(root, "src/openapi.ts") });
  doc = openApiDocument();
});

/** Validates a document; on failure the message carries the validator's errors. */
async function validate(document) {
  const result = await new Validator().validate(structuredClone(document));
  return { ...result, report: JSON.stringify(result.errors, null, 2) };
}

/** Every `$ref` value in a JSON tree, with where it sits. */
function refsIn(node, at = "#", out = []) {
  if (Array.isArray(node)) node.forEach((v, i) => refsIn(v, `${at}/${i}`, out));
  else if (node !== null && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string") out.push({ at, ref: value });
      else refsIn(value, `${at}/${key}`, out);
    }
  }
  return out;
}

function resolvePointer(document, ref) {
  let node = document;
  for (const part of ref.slice(2).split("/")) node = node?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  return node;
}

const operationsOf = (document) =>
  Object.entries(document.paths).flatMap(([p, item]) => METHODS.filter((m) => item[m]).map((m) => ({ label: `${m.toUpperCase()} ${p}`, op: item[m] })));

describe("the generated OpenAPI document", () => {
  it("is OpenAPI 3.1.x", () => {
    assert.match(doc.openapi, /^3\.1\.\d+$/);
  });

  it("passes the OpenAPI 3.1 schema validator", async () => {
    const result = await validate(doc);
    assert.equal(result.valid, true, `validator errors:\n${result.report}`);
  });

  it("the validator refuses a broken copy (so a pass above means something)", async () => {
    const noResponses = structuredClone(doc);
    for (const item of Object.values(noResponses.paths)) for (const m of METHODS) if (item[m]) item[m].responses = "none";
    assert.equal((await validate(noResponses)).valid, false);
    const badVersion = { ...structuredClone(doc), openapi: "3.1" };
    assert.equal((await validate(badVersion)).valid, false);
  });

  it("every $ref points at something in the document, and the validator refuses one that does not", async () => {
    const refs = refsIn(doc);
    assert.ok(refs.length > 0, "the document uses references (the error schema)");
    for (const { at, ref } of refs) {
      assert.ok(ref.startsWith("#/"), `${at}: external reference ${ref}`);
      assert.notEqual(resolvePointer(doc, ref), undefined, `${at}: ${ref} names nothing`);
    }
    const dangling = structuredClone(doc);
    const { op } = operationsOf(dangling).find(({ op }) => op.requestBody);
    op.requestBody.content["application/json"].schema = { $ref: "#/components/schemas/NoSuchSchema" };
    const result = await validate(dangling);
    assert.equal(result.valid, false, "a dangling $ref in a request body must be refused");
    assert.match(result.report, /NoSuchSchema/);
  });

  it("gives every request body and parameter a schema", () => {
    for (const { label, op } of operationsOf(doc)) {
      for (const param of op.parameters ?? []) {
        assert.equal(typeof param.schema, "object", `${label} parameter ${param.name} has no schema`);
      }
      if (op.requestBody) {
        const schema = op.requestBody.content?.["application/json"]?.schema;
        assert.equal(typeof schema, "object", `${label} request body has no JSON schema`);
        assert.equal(schema.type, "object", `${label} request body is a JSON object`);
      }
    }
  });
});
