#!/usr/bin/env node
/**
 * npm run soak [-- --seconds 60]
 *
 * A soak outside CI: resolve traffic over 1,000 sessions (with some new ones)
 * against a fresh `wrangler dev` for 60 seconds, printing requests/s and errors
 * every 5 seconds, then the totals. Exits non-zero on any error.
 */
import autocannon from "autocannon";
import { startDevServer } from "./dev-server.mjs";

const argIndex = process.argv.indexOf("--seconds");
const SECONDS = argIndex === -1 ? 60 : Number(process.argv[argIndex + 1]);
const REPORT_EVERY_S = 5;
const headers = { authorization: "Bearer dev-token", "content-type": "application/json" };

const server = await startDevServer(["--var", "SESSION_TIMEOUT_MS:60000"]);
let n = 0;
const instance = autocannon({
  url: server.baseUrl,
  connections: 10,
  duration: SECONDS,
  requests: [
    {
      method: "POST",
      path: "/v1/resolve",
      headers,
      setupRequest: (req) => {
        const i = n++;
        // Mostly existing sessions, one request in twenty opens a new one.
        const sessionId = i % 20 === 0 ? `soak-new-${i}` : `soak-${i % 1000}`;
        return {
          ...req,
          body: JSON.stringify({
            sessionId,
            body: { model: "auto", messages: [{ role: "user", content: `turn ${i}` }] },
            routed: { model: "kimi-k2.5", tier: "MEDIUM" },
            costMicros: 10,
          }),
        };
      },
    },
  ],
});
let window = { ok: 0, errors: 0 };
let second = 0;
instance.on("response", (_client, status) => {
  if (status >= 200 && status < 300) window.ok++;
  else window.errors++;
});
instance.on("reqError", () => window.errors++);
const timer = setInterval(() => {
  second += REPORT_EVERY_S;
  console.log(`t=${String(second).padStart(3)} s  ${Math.round(window.ok / REPORT_EVERY_S)} req/s  errors ${window.errors}`);
  window = { ok: 0, errors: 0 };
}, REPORT_EVERY_S * 1000);
const result = await instance;
clearInterval(timer);
await server.stop();
const errors = result.errors + result.timeouts + result.non2xx;
console.log(`total ${result.requests.total} requests, ${Math.round(result.requests.average)} req/s average, p99 ${result.latency.p99} ms, errors ${errors}`);
process.exit(errors > 0 ? 1 : 0);
