#!/usr/bin/env node
/**
 * Starts `wrangler dev` on a free loopback port, waits for /health, runs the
 * given command with BASE_URL set, then stops the server. Used by the
 * black-box contract tests and the benchmark smoke run.
 *
 *   node scripts/with-dev-server.mjs [--var NAME:VALUE ...] -- <command> [args...]
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import "./ensure-dev-vars.mjs";

const argv = process.argv.slice(2);
const split = argv.indexOf("--");
if (split === -1 || split === argv.length - 1) {
  console.error("usage: with-dev-server.mjs [wrangler dev args] -- <command> [args...]");
  process.exit(2);
}
const devArgs = argv.slice(0, split);
const [command, ...commandArgs] = argv.slice(split + 1);

/** How long wrangler may take to serve /health on a cold 2-core machine. */
const STARTUP_TIMEOUT_MS = 90_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

const port = await freePort();
const baseUrl = `http://127.0.0.1:${port}`;
const dev = spawn(
  "npx",
  ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(port), "--log-level", "warn", "--show-interactive-dev-session=false", ...devArgs],
  { stdio: ["ignore", "inherit", "inherit"], detached: true },
);
const stop = () => {
  try {
    process.kill(-dev.pid, "SIGTERM");
  } catch {}
};
process.on("exit", stop);
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

const deadline = Date.now() + STARTUP_TIMEOUT_MS;
for (;;) {
  try {
    const res = await fetch(`${baseUrl}/health`);
    if (res.ok) break;
  } catch {}
  if (dev.exitCode !== null || Date.now() > deadline) {
    console.error(`wrangler dev did not serve ${baseUrl}/health`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 250));
}

const child = spawn(command, commandArgs, { stdio: "inherit", env: { ...process.env, BASE_URL: baseUrl } });
child.on("exit", (code, signal) => {
  stop();
  process.exit(code ?? (signal ? 1 : 0));
});
