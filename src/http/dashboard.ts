/**
 * The operator dashboard: one HTML page, its script and its style sheet, served
 * by the Worker itself under a Content-Security-Policy that allows nothing but
 * this origin. The page holds no data; it reads everything through the admin
 * API with the token the operator types in (docs/dashboard.md).
 */
import type { IRequest, RouterType } from "itty-router";
import type { Env } from "../env";
import { configFor } from "../session/config";
import { errorResponse } from "./errors";
import appCss from "../dashboard/app.css";
import appJs from "../dashboard/app.js";
import indexHtml from "../dashboard/index.html";

/** No inline script or style, no other origin, no framing, no form posts. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function asset(body: string, contentType: string): Response {
  return new Response(body, {
    headers: {
      "content-type": contentType,
      "content-security-policy": DASHBOARD_CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-store",
    },
  });
}

const ATTRIBUTE_ESCAPES: Record<string, string> = { "&": "&amp;", '"': "&quot;", "<": "&lt;", ">": "&gt;" };

/**
 * The page, carrying the tenant header's name so it can scope a per-session call
 * to a row's tenant. A var that does not parse leaves it out: the API calls then
 * answer `config_invalid`, which the page shows.
 */
function page(env: Env): Response {
  let header = "";
  try {
    header = configFor(env).namespaceHeader ?? "";
  } catch {}
  const escaped = header.replace(/[&"<>]/g, (c) => ATTRIBUTE_ESCAPES[c]!);
  return asset(indexHtml.replace("{{NAMESPACE_HEADER}}", escaped), "text/html; charset=utf-8");
}

const ROUTES: Record<string, (env: Env) => Response> = {
  "/dashboard": page,
  "/dashboard/app.js": () => asset(appJs, "text/javascript; charset=utf-8"),
  "/dashboard/app.css": () => asset(appCss, "text/css; charset=utf-8"),
};

/** Adds the dashboard's GET routes (no token: the page holds no data) and 405 for other methods. */
export function mountDashboard(router: RouterType<IRequest, [Env, ExecutionContext]>): void {
  for (const [path, serve] of Object.entries(ROUTES)) {
    router.get(path, (_request, env) => serve(env));
    router.all(path, () => errorResponse({ code: "method_not_allowed", message: "use GET on this route" }, { allow: "GET" }));
  }
}
