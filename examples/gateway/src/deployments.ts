/**
 * The upstream's deployments: the endpoints (regions, accounts, keys) that
 * serve the same models. A provider's prompt cache lives in one deployment, so
 * the session service pins one per session and the gateway sends every call of
 * that session there; the gateway's part is to propose one per request and to
 * fail over when the pinned one fails.
 *
 * UPSTREAM_DEPLOYMENTS is a JSON array of {"id","baseUrl"}; unset, the one
 * deployment "default" is UPSTREAM_BASE_URL.
 */
import { GatewayConfigError } from "./session-rpc";

export interface Deployment {
  /** The name the session service pins: 1–256 characters, no control characters. */
  id: string;
  /** An OpenAI-compatible base URL (`…/v1`), http or https. */
  baseUrl: string;
}

export const DEFAULT_DEPLOYMENT_ID = "default";
/** The session service's longest deployment name. */
const MAX_ID_LENGTH = 256;
/** C0, DEL and C1: what the session service refuses in a deployment name. */
const hasControlChars = (s: string) => [...s].some((c) => c.charCodeAt(0) < 0x20 || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f));

function baseUrlOf(value: unknown, what: string): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new GatewayConfigError(`${what} must be an http or https URL`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || typeof value !== "string")
    throw new GatewayConfigError(`${what} must be an http or https URL`);
  return value.replace(/\/+$/, "");
}

/** UPSTREAM_DEPLOYMENTS (a JSON string, or the array itself), or the one "default" deployment at UPSTREAM_BASE_URL when unset. */
export function deploymentsOf(configured: unknown, upstreamBaseUrl: unknown): Deployment[] {
  if (configured === undefined || configured === null || configured === "") {
    return [{ id: DEFAULT_DEPLOYMENT_ID, baseUrl: baseUrlOf(upstreamBaseUrl, "UPSTREAM_BASE_URL") }];
  }
  let list: unknown = configured;
  if (typeof configured === "string") {
    try {
      list = JSON.parse(configured);
    } catch {
      throw new GatewayConfigError("UPSTREAM_DEPLOYMENTS must be a JSON array of {id, baseUrl}");
    }
  }
  if (!Array.isArray(list) || list.length === 0) throw new GatewayConfigError("UPSTREAM_DEPLOYMENTS must be a non-empty JSON array of {id, baseUrl}");
  const seen = new Set<string>();
  return list.map((entry: unknown, i) => {
    const { id, baseUrl } = (typeof entry === "object" && entry !== null ? entry : {}) as Record<string, unknown>;
    if (typeof id !== "string" || id.length === 0 || id.length > MAX_ID_LENGTH || hasControlChars(id)) {
      throw new GatewayConfigError(`UPSTREAM_DEPLOYMENTS[${i}].id must be 1-${MAX_ID_LENGTH} characters without control characters`);
    }
    if (seen.has(id)) throw new GatewayConfigError(`UPSTREAM_DEPLOYMENTS[${i}].id repeats ${JSON.stringify(id)}`);
    seen.add(id);
    return { id, baseUrl: baseUrlOf(baseUrl, `UPSTREAM_DEPLOYMENTS[${i}].baseUrl`) };
  });
}

/**
 * Round-robin over the deployments, one step per request, per isolate: the
 * placeholder for a real choice (health, load, region). It is only a proposal:
 * a session's first request pins it, and its later requests go to the pin.
 */
export function roundRobin(): (deployments: readonly Deployment[]) => Deployment {
  let next = 0;
  return (deployments) => {
    const picked = deployments[next % deployments.length]!;
    next = (next + 1) % Number.MAX_SAFE_INTEGER;
    return picked;
  };
}

/** The deployment after `failed` in list order (wrapping), for a failover; undefined when there is no other. */
export function alternativeTo(deployments: readonly Deployment[], failed: string): Deployment | undefined {
  const candidate = deployments[(deployments.findIndex((d) => d.id === failed) + 1) % deployments.length];
  return candidate === undefined || candidate.id === failed ? undefined : candidate;
}

/** The configured deployment with this ID; undefined for null or an ID no longer configured. */
export function deploymentById(deployments: readonly Deployment[], id: string | null): Deployment | undefined {
  return id === null ? undefined : deployments.find((d) => d.id === id);
}
