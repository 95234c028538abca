import { registryCaughtUp } from "./converge";
import { exports } from "cloudflare:workers";

export const API_TOKEN = "test-token";
export const ADMIN_TOKEN = "test-admin-token";

export interface CallOptions {
  token?: string | null;
  body?: unknown;
  rawBody?: BodyInit;
  headers?: Record<string, string>;
}

/**
 * A request to the front Worker, with the API token unless told otherwise. Stats
 * and clear-all first let the registry deliveries in flight land: these tests are
 * about what the registry shows once it has caught up (test/convergence.test.ts
 * tests the catching up).
 */
export async function call(method: string, path: string, options: CallOptions = {}) {
  if (path.startsWith("/v1/stats") || (method === "DELETE" && path === "/v1/sessions")) await registryCaughtUp();
  const headers = new Headers(options.headers);
  const token = options.token === undefined ? API_TOKEN : options.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const res = await exports.default.fetch(new Request(`http://session.test${path}`, { method, headers, body }));
  const text = await res.text();
  let json: any = undefined;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}

export const sessionPath = (id: string, suffix = "") => `/v1/sessions/${encodeURIComponent(id)}${suffix}`;
