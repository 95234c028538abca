/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the command table:
 * the same zod schemas that validate each request describe it here, so the
 * document and the service cannot drift. Served at GET /openapi.json.
 */
import { z } from "zod";
import { commandOf, commands, requestFields, type CommandName } from "./commands";
import { STATUS_OF } from "./http/errors";
import { ERROR_CODES, type ErrorCode } from "./session/errors";

type Json = Record<string, unknown>;

/** JSON Schema 2020-12, the dialect OpenAPI 3.1 uses, without the per-schema `$schema` key. */
function schemaOf(schema: z.ZodType, io: "input" | "output"): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: "draft-2020-12", io, unrepresentable: "any" }) as Json;
  return rest;
}

/** Which error codes a route can answer, by what the operation reads and does. */
function errorCodes(name: CommandName): ErrorCode[] {
  const command = commandOf(name);
  const codes: ErrorCode[] = ["unauthorized", "auth_not_configured", "config_invalid", "internal_error"];
  const fields = requestFields(name);
  const perSession = command.kind === "session" || command.kind === "resolve" || command.kind === "journal";
  // A session's route also reads the tenant header when SESSION_NAMESPACE_HEADER is set.
  if (fields.length > 0 || perSession) codes.push("invalid_request");
  if (fields.length > 0 && (command.http?.method === "POST" || command.http?.method === "PUT")) codes.push("invalid_json", "payload_too_large");
  if (command.grant === "admin") codes.push("forbidden");
  if (command.kind === "admin") codes.push("registry_unavailable");
  if (name === "getStats") codes.push("invalid_cursor");
  // The registry learns of a session's change after the answer, so a session operation never waits on it.
  if (perSession) codes.push("invalid_session_id");
  // Resolve with sessions disabled answers without a session, not with an error.
  if (command.kind === "session" || command.kind === "journal") codes.push("sessions_disabled");
  if (command.kind === "session" && !command.http?.anyId) codes.push("session_not_found");
  codes.push(...(command.errors ?? []));
  return [...new Set(codes)];
}

function errorResponses(name: CommandName): Json {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of errorCodes(name)) byStatus.set(STATUS_OF[code], [...(byStatus.get(STATUS_OF[code]) ?? []), code]);
  const out: Json = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[status] = {
      description: `error: ${codes.join(", ")}`,
      ...(status === 401 ? { headers: { "WWW-Authenticate": { description: 'Bearer realm="edge-session"', schema: { type: "string" } } } } : {}),
      ...(codes.includes("session_rate_limited")
        ? {
            headers: {
              "Retry-After": { description: "with session_rate_limited: whole seconds until the session may resolve again", schema: { type: "integer" } },
            },
          }
        : {}),
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    };
  }
  return out;
}

function operation(name: CommandName): Json {
  const command = commandOf(name);
  const http = command.http!;
  const shape = command.input.shape as Record<string, z.ZodType>;
  const input = command.input as z.ZodObject;
  const parameters: Json[] = [];
  if (http.path.includes("{id}")) {
    parameters.push({ name: "id", in: "path", required: true, schema: schemaOf(shape.id!, "input") });
  }
  const fields = requestFields(name);
  let requestBody: Json | undefined;
  if (fields.length === 0) {
    // Nothing beyond the path: the route reads no query and no body.
  } else if (http.method === "GET" || http.method === "DELETE") {
    for (const field of fields) {
      const schema = shape[field]!;
      parameters.push({ name: field, in: "query", required: !schema.safeParse(undefined).success, schema: schemaOf(schema, "input") });
    }
  } else {
    const body = http.path.includes("{id}") ? input.omit({ id: true }) : input;
    requestBody = { required: true, content: { "application/json": { schema: schemaOf(body, "input") } } };
  }
  const output = http.resultKey === undefined ? command.output : z.object({ [http.resultKey]: command.output });
  const successes = http.responses ?? { 200: output };
  const responses: Json = {};
  for (const [status, schema] of Object.entries(successes) as [string, z.ZodType | null][]) {
    const headers = http.headerDocs && {
      headers: Object.fromEntries(Object.entries(http.headerDocs).map(([header, description]) => [header, { description, schema: { type: "string" } }])),
    };
    responses[status] =
      schema === null
        ? { description: "done, no body" }
        : { description: "success", ...headers, content: { "application/json": { schema: schemaOf(schema, "output") } } };
  }
  return {
    operationId: name,
    summary: command.summary,
    security: [{ [command.grant === "admin" ? "adminToken" : "apiToken"]: [] }],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses: { ...responses, ...errorResponses(name) },
  };
}

/** The live feed: a WebSocket, so outside the command table; described here by hand. */
function liveFeed(): Json {
  const codes: ErrorCode[] = [
    "invalid_request",
    "invalid_session_id",
    "unauthorized",
    "invalid_ticket",
    "upgrade_required",
    "sessions_disabled",
    "auth_not_configured",
  ];
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(STATUS_OF[code], [...(byStatus.get(STATUS_OF[code]) ?? []), code]);
  const errors: Json = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    errors[status] = { description: `error: ${list.join(", ")}`, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
  }
  return {
    operationId: "liveFeed",
    summary:
      "The session's journal as a WebSocket (Upgrade: websocket): each text frame is one event as JSON, first those after `after`, then each new one. Browsers authenticate with `ticket` (POST /v1/sessions/{id}/live-ticket) instead of the header.",
    security: [{ apiToken: [] }],
    parameters: [
      { name: "id", in: "path", required: true, schema: { type: "string" } },
      { name: "after", in: "query", required: false, schema: { type: "integer", minimum: 0 }, description: "the seq of the last event seen" },
      { name: "ticket", in: "query", required: false, schema: { type: "string" }, description: "a live-feed ticket: single use, valid 60 s" },
    ],
    responses: { 101: { description: "switching to the WebSocket protocol" }, ...errors },
  };
}

function build(): Json {
  const paths: Record<string, Json> = {
    "/health": { get: { operationId: "health", summary: "Liveness", security: [], responses: { 200: { description: "up" } } } },
    "/openapi.json": {
      get: { operationId: "openApi", summary: "This document", security: [], responses: { 200: { description: "the OpenAPI 3.1 document" } } },
    },
  };
  for (const name of Object.keys(commands) as CommandName[]) {
    const http = commandOf(name).http;
    if (!http) continue;
    paths[http.path] = { ...paths[http.path], [http.method.toLowerCase()]: operation(name) };
  }
  paths["/v1/sessions/{id}/live"] = { get: liveFeed() };
  return {
    openapi: "3.1.0",
    info: {
      title: "edge-session",
      version: "1",
      description: "The session layer of an LLM gateway: pinned models and tiers, loop escalation, cost and expiry, one Durable Object per conversation.",
    },
    paths,
    components: {
      securitySchemes: {
        apiToken: { type: "http", scheme: "bearer", description: "SESSION_API_TOKEN" },
        adminToken: { type: "http", scheme: "bearer", description: "SESSION_ADMIN_TOKEN" },
      },
      schemas: {
        Error: {
          type: "object",
          required: ["error"],
          properties: {
            error: {
              type: "object",
              required: ["code", "message"],
              properties: { code: { type: "string", enum: [...ERROR_CODES] }, message: { type: "string" } },
              additionalProperties: true,
            },
          },
        },
      },
    },
  };
}

let cached: Json | undefined;

/** The document, built once per isolate. */
export function openApiDocument(): Json {
  cached ??= build();
  return cached;
}
