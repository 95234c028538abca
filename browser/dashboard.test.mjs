/**
 * The operator dashboard in a real browser: Debian's Chromium, driven through
 * playwright-core, against `wrangler dev`. It signs in with the admin token,
 * finds a session this test created, watches its escalation arrive on the live
 * timeline, raises its budget, pauses it and sees the next resolve answer 423,
 * resumes, pins and unpins it, and ends it. Along the way: the page's security
 * headers, no request to any other host, no CSP violation, the token never in
 * a URL nor in localStorage.
 *
 * A screenshot goes to test-output/dashboard.png; UPDATE_SCREENSHOT=1 also
 * writes docs/dashboard.png, the one the README shows.
 *
 * Without Chromium the test fails, never skips: `apt-get install chromium`.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, copyFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startDevServer } from "../scripts/dev-server.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** The tokens in .dev.vars (copied from .dev.vars.example). */
const API_TOKEN = "dev-token";
const ADMIN_TOKEN = "dev-admin-token";
/** 2 USD: the test session passes 50% of it on its way to the escalation. */
const BUDGET_MICROS = 2_000_000;
/** The policy docs/dashboard.md states. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const WAIT_MS = 20_000;

let server;
let browser;
let page;
/** Every URL the page asked for, WebSockets included. */
const requested = [];
/** Console errors and uncaught exceptions, CSP violations among them. */
const pageErrors = [];
const run = Date.now().toString(36);
const sessionId = `dash-${run}-agent`;

async function api(method, route, body, token = API_TOKEN) {
  const res = await fetch(`${server.baseUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text === "" ? undefined : JSON.parse(text) };
}

/** One resolve through a routing profile, as a gateway makes it for each LLM request. */
function resolve(id, content, { routed = SIMPLE, costMicros = 0 } = {}) {
  return api("POST", "/v1/resolve", { sessionId: id, costMicros, routed, body: { model: "auto", messages: [{ role: "user", content }] } });
}

/** Polls until `check` returns a truthy value, or fails with what it last saw. */
async function eventually(what, check, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's package with "apt-get install chromium" (or set CHROMIUM_PATH to a Chromium binary)`);
  }
  server = await startDevServer(["--var", `SESSION_BUDGET_MICROS:${BUDGET_MICROS}`]);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1, colorScheme: "dark" });
  page = await context.newPage();
  page.on("request", (request) => requested.push(request.url()));
  page.on("websocket", (socket) => requested.push(socket.url()));
  page.on("console", (message) => {
    if (message.type() === "error") pageErrors.push(message.text());
  });
  page.on("pageerror", (err) => pageErrors.push(String(err)));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

describe("the operator dashboard in Chromium", { concurrency: 1 }, () => {
  it("serves the page with its security headers", async () => {
    const response = await page.goto(`${server.baseUrl}/dashboard`);
    assert.equal(response.status(), 200);
    const headers = response.headers();
    assert.equal(headers["content-security-policy"], CSP);
    assert.equal(headers["x-content-type-options"], "nosniff");
    assert.equal(headers["referrer-policy"], "no-referrer");
    assert.equal(headers["cache-control"], "no-store");
    await page.getByLabel("Admin token").waitFor();
  });

  it("signs in with the admin token, kept in sessionStorage only", async () => {
    // Sessions besides the test's own, so the totals, the tier chart and the table have something to show.
    const others = [
      ["refactor-billing", { model: "kimi-k2.5", tier: "MEDIUM" }, 310_000],
      ["triage-inbox", SIMPLE, 42_000],
      ["prove-lemma-7", { model: "grok-4-1-fast-reasoning", tier: "REASONING" }, 880_000],
      ["design-review", { model: "gemini-3.1-pro", tier: "COMPLEX" }, 540_000],
      ["summarize-logs", SIMPLE, 9_000],
    ];
    for (const [name, routed, costMicros] of others) {
      const res = await resolve(`${name}-${run}`, `start ${name}`, { routed, costMicros });
      assert.equal(res.status, 200, JSON.stringify(res.json));
    }
    const created = await resolve(sessionId, "Fix the failing test", { costMicros: 400_000 });
    assert.equal(created.status, 200, JSON.stringify(created.json));
    assert.equal(created.json.sessionId, sessionId);

    await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByTestId("total-sessions").filter({ hasText: /^\d+$/ }).waitFor({ timeout: WAIT_MS });
    const storage = await page.evaluate(() => ({ session: sessionStorage.length, local: localStorage.length }));
    assert.deepEqual(storage, { session: 1, local: 0 });
  });

  it("shows the totals and the test's session in the table", async () => {
    await eventually("six live sessions in the totals", async () => Number(await page.getByTestId("total-sessions").textContent()) >= 6);
    const row = page.locator(`[data-testid="session-row"][data-session-id="${sessionId}"]`);
    await row.waitFor({ timeout: WAIT_MS });
    const cells = await row.locator("td").allTextContents();
    assert.equal(cells[0], `${sessionId.slice(0, 8)}...`, "short ID");
    assert.equal(cells[1], SIMPLE.model);
    assert.equal(cells[2], "SIMPLE");
    assert.equal(cells[4], "$0.40");
    assert.equal(cells[6], "live");
    assert.match(await page.getByTestId("total-spend").textContent(), /^\$\d+\.\d\d$/);
    assert.match(await page.getByTestId("chart-tier").getAttribute("aria-label"), /REASONING 1/);
  });

  it("opens the session and watches a live escalation arrive on the timeline", async () => {
    await page.locator(`[data-testid="session-row"][data-session-id="${sessionId}"]`).click();
    await page.getByTestId("detail-id").filter({ hasText: sessionId }).waitFor();
    await page.locator('[data-testid="timeline-event"][data-type="created"]').waitFor({ timeout: WAIT_MS });
    await page.getByTestId("live-status").filter({ hasText: "live" }).waitFor({ timeout: WAIT_MS });

    // The same request twice more: strikes reach STRIKE_THRESHOLD (2) on the third, which escalates one tier.
    assert.equal((await resolve(sessionId, "Fix the failing test", { costMicros: 300_000 })).status, 200);
    const third = await resolve(sessionId, "Fix the failing test", { costMicros: 300_000 });
    assert.equal(third.status, 200);
    assert.equal(third.json.escalated, true, JSON.stringify(third.json));
    assert.equal(third.json.tier, "MEDIUM");

    const escalated = page.locator('[data-testid="timeline-event"][data-type="escalated"]');
    await escalated.waitFor({ timeout: WAIT_MS });
    assert.match(await escalated.textContent(), /2 strikes → kimi-k2\.5 \(MEDIUM\)/);
    // A budget of 2 USD, 1 USD spent: the 50% threshold is on the timeline too.
    await page.locator('[data-testid="timeline-event"][data-type="budget_threshold"]').waitFor({ timeout: WAIT_MS });
    await page.getByTestId("detail-tier").filter({ hasText: "MEDIUM" }).waitFor({ timeout: WAIT_MS });
    await page.getByTestId("detail-strikes").filter({ hasText: /^2$/ }).waitFor({ timeout: WAIT_MS });
  });

  it("raises the budget", async () => {
    await page.getByLabel("Budget (USD)").fill("5");
    await page.getByRole("button", { name: "Set budget" }).click();
    await page.getByTestId("detail-budget").filter({ hasText: "$5.00" }).waitFor({ timeout: WAIT_MS });
    await page.locator('[data-testid="timeline-event"][data-type="budget_changed"]').waitFor({ timeout: WAIT_MS });
    const view = await api("GET", `/v1/sessions/${sessionId}`);
    assert.equal(view.json.budgetMicros, 5_000_000);
  });

  it("pauses the session: the next resolve answers 423 session_paused", async () => {
    await page.getByRole("button", { name: "Pause" }).click();
    await page.getByTestId("detail-status").filter({ hasText: "paused" }).waitFor({ timeout: WAIT_MS });
    const paused = page.locator('[data-testid="timeline-event"][data-type="paused"]');
    await paused.waitFor({ timeout: WAIT_MS });
    assert.match(await paused.textContent(), /admin/);

    const res = await resolve(sessionId, "Fix the failing test");
    assert.equal(res.status, 423);
    assert.equal(res.json.error.code, "session_paused");
    // The table catches up on its next refresh.
    await page.locator(`[data-testid="session-row"][data-session-id="${sessionId}"]`).filter({ hasText: "paused" }).waitFor({ timeout: WAIT_MS });
  });

  it("takes a screenshot into the test output", async () => {
    // More spend after the page opened: stats hear of a session's cost with its next registry report, at most
    // a minute later, so the chart may or may not show it yet; it has samples either way.
    for (const name of ["refactor-billing", "design-review"]) await resolve(`${name}-${run}`, `continue ${name}`, { costMicros: 150_000 });
    await eventually("spend samples on the chart", async () =>
      ((await page.getByTestId("chart-spend").getAttribute("aria-label")) ?? "").startsWith("Spend over time: $"),
    );
    await page.waitForTimeout(3500);
    const outDir = path.join(ROOT, "test-output");
    mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, "dashboard.png");
    await page.screenshot({ path: file });
    assert.ok(existsSync(file));
    if (process.env.UPDATE_SCREENSHOT === "1") copyFileSync(file, path.join(ROOT, "docs", "dashboard.png"));
  });

  it("resumes, pins and unpins, then ends the session", async () => {
    await page.getByRole("button", { name: "Resume" }).click();
    await page.getByTestId("detail-status").filter({ hasText: "live" }).waitFor({ timeout: WAIT_MS });
    assert.equal((await resolve(sessionId, "Now run the linter")).status, 200);

    await page.getByLabel("Pin model").fill("gemini-3.1-pro");
    await page.getByLabel("Pin tier").selectOption("COMPLEX");
    await page.getByRole("button", { name: "Pin", exact: true }).click();
    await page.locator('[data-testid="timeline-event"][data-type="pinned"]').waitFor({ timeout: WAIT_MS });
    await page.getByTestId("detail-model").filter({ hasText: "gemini-3.1-pro" }).waitFor({ timeout: WAIT_MS });
    const pinned = await resolve(sessionId, "And the formatter", { routed: { model: "grok-4-1-fast-reasoning", tier: "REASONING" } });
    assert.equal(pinned.json.model, "gemini-3.1-pro", JSON.stringify(pinned.json));
    await page.getByRole("button", { name: "Unpin" }).click();
    await page.locator('[data-testid="timeline-event"][data-type="unpinned"]').waitFor({ timeout: WAIT_MS });

    await page.getByRole("button", { name: "End session" }).click();
    await page.getByRole("button", { name: "Confirm: end it" }).click();
    await page.getByTestId("detail-status").filter({ hasText: "ended" }).waitFor({ timeout: WAIT_MS });
    assert.equal((await api("GET", `/v1/sessions/${sessionId}`)).status, 404);
  });

  it("asked no host but the dev server, never put a token in a URL, and broke no CSP rule", async () => {
    const origin = new URL(server.baseUrl);
    assert.ok(requested.length > 0);
    for (const url of requested) {
      const u = new URL(url);
      assert.equal(u.host, origin.host, `request to another host: ${url}`);
      assert.ok(["http:", "ws:"].includes(u.protocol), url);
      assert.ok(!url.includes(ADMIN_TOKEN) && !url.includes(API_TOKEN), `a token in a URL: ${url}`);
    }
    assert.ok(
      requested.some((url) => url.startsWith(`ws://${origin.host}/v1/sessions/`) && /[?&]ticket=/.test(url)),
      "the live timeline came over a ticketed WebSocket",
    );
    const violations = pageErrors.filter((text) => /Content Security Policy|Refused to/i.test(text));
    assert.deepEqual(violations, []);
    // 404s the test caused on purpose (the ended session) log a console error; nothing else may.
    const others = pageErrors.filter((text) => !/status of 404/.test(text));
    assert.deepEqual(others, []);
  });
});
