import { describe, expect, it } from "vitest";
import { call } from "./support/http";

/** The policy docs/dashboard.md states: nothing but this origin, no inline code, no framing, no form posts. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSETS = [
  ["/dashboard", "text/html; charset=utf-8"],
  ["/dashboard/app.js", "text/javascript; charset=utf-8"],
  ["/dashboard/app.css", "text/css; charset=utf-8"],
] as const;

describe("the dashboard's files", () => {
  it.each(ASSETS)("GET %s answers without a token, with the strict headers", async (path, type) => {
    const res = await call("GET", path, { token: null });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(type);
    expect(res.headers.get("content-security-policy")).toBe(CSP);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(typeof res.json === "string" && res.json.length > 100).toBe(true);
  });

  it("the page loads its script and style from this origin only, with no inline script, style or event handler", async () => {
    const { json: html } = await call("GET", "/dashboard", { token: null });
    expect(html).toContain('<script src="/dashboard/app.js" defer></script>');
    expect(html).toContain('<link rel="stylesheet" href="/dashboard/app.css" />');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/https?:\/\//);
    // No tenant header is configured here: the attribute is present and empty.
    expect(html).toContain('data-namespace-header=""');
  });

  it("the script keeps the token in sessionStorage only, and never puts it in a URL", async () => {
    const { json: js } = await call("GET", "/dashboard/app.js", { token: null });
    expect(js).toContain("sessionStorage");
    expect(js).not.toContain("localStorage");
    // The SVG namespace is a name, not an address the page loads.
    expect(js.replaceAll("http://www.w3.org/2000/svg", "")).not.toMatch(/https?:\/\//);
  });

  it.each(["POST", "PUT", "DELETE"])("%s /dashboard is 405 with Allow: GET", async (method) => {
    const res = await call(method, "/dashboard", { token: null });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
  });
});
