/** Bearer-token checks for /v1 routes. Tokens are compared in constant time and never logged. */
import { SessionError } from "../session/errors";
import type { Env } from "../env";
import type { Actor } from "../session/journal";

const encoder = new TextEncoder();

async function digest(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(value)));
}

/** Digests of configured tokens, computed once per isolate: one hash per request instead of two. */
const configuredDigests = new Map<string, Promise<Uint8Array>>();
function configuredDigest(token: string): Promise<Uint8Array> {
  let d = configuredDigests.get(token);
  if (!d) {
    d = digest(token);
    configuredDigests.set(token, d);
  }
  return d;
}

/**
 * Compares SHA-256 digests (`b` is the configured token) byte by byte without early exit, so neither the
 * position of the first difference nor the token's length leaks through timing.
 */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([digest(a), configuredDigest(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

function bearer(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  const match = header ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
  return match?.[1];
}

function configured(token: string | undefined): token is string {
  return typeof token === "string" && token !== "";
}

/**
 * Ordinary /v1 routes: the API token, or the admin token (an operator may do whatever
 * a gateway may). Answers who called, for the journal. Fails closed when no API token is configured.
 */
export async function requireApiToken(request: Request, env: Env): Promise<Actor> {
  if (!configured(env.SESSION_API_TOKEN)) {
    throw new SessionError("auth_not_configured", "SESSION_API_TOKEN is not configured; refusing all /v1 requests");
  }
  const token = bearer(request);
  if (token !== undefined && (await constantTimeEqual(token, env.SESSION_API_TOKEN))) return "api";
  if (token !== undefined && configured(env.SESSION_ADMIN_TOKEN) && (await constantTimeEqual(token, env.SESSION_ADMIN_TOKEN))) return "admin";
  throw new SessionError("unauthorized", "missing or invalid bearer token");
}

/** Admin routes: the admin token; the API token is recognised and refused with 403. */
export async function requireAdminToken(request: Request, env: Env): Promise<Actor> {
  if (!configured(env.SESSION_ADMIN_TOKEN)) {
    throw new SessionError("auth_not_configured", "SESSION_ADMIN_TOKEN is not configured; refusing admin requests");
  }
  const token = bearer(request);
  if (token !== undefined && (await constantTimeEqual(token, env.SESSION_ADMIN_TOKEN))) return "admin";
  if (token !== undefined && configured(env.SESSION_API_TOKEN) && (await constantTimeEqual(token, env.SESSION_API_TOKEN))) {
    throw new SessionError("forbidden", "this route needs the admin token; the API token is not enough");
  }
  throw new SessionError("unauthorized", "missing or invalid admin bearer token");
}
