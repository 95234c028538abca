/**
 * Starts `wrangler dev` on a free loopback port with request logging off and
 * waits until /health answers. Shared by the black-box runner and the benchmark.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import "./ensure-dev-vars.mjs";

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

/** @returns {Promise<{ baseUrl: string, stop: () => void }>} */
export async function startDevServer(args = []) {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const dev = spawn(
    "npx",
    ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(port), "--log-level", "warn", "--show-interactive-dev-session=false", ...args],
    { stdio: ["ignore", "inherit", "inherit"], detached: true },
  );
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      process.kill(-dev.pid, "SIGTERM");
    } catch {}
  };
  process.on("exit", stop);

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    try {
      if ((await fetch(`${baseUrl}/health`)).ok) return { baseUrl, stop };
    } catch {}
    if (dev.exitCode !== null || Date.now() > deadline) {
      stop();
      throw new Error(`wrangler dev did not serve ${baseUrl}/health`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
