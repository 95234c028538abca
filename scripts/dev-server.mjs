/**
 * Starts `wrangler dev` on a free loopback port with request logging off and
 * waits until /health answers. Shared by the black-box, load and e2e runners,
 * the benchmark and the soak.
 *
 * Object storage goes to a fresh temporary directory, removed at stop, unless
 * the caller passes its own `--persist-to`: a test run must neither read nor
 * leave sessions in .wrangler/state, which `npm run dev` uses.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import "./ensure-dev-vars.mjs";

/** How long wrangler may take to serve /health on a cold 2-core machine. */
const STARTUP_TIMEOUT_MS = 90_000;
/** How long wrangler and workerd get to exit after SIGTERM before SIGKILL; they flush storage on the way out. */
const STOP_TIMEOUT_MS = 10_000;
const STOP_POLL_MS = 50;

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

const hasPersistTo = (args) => args.some((a) => a === "--persist-to" || a.startsWith("--persist-to="));

/** True while any process of the group led by `pid` is alive. */
function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {}
}

/**
 * @returns {Promise<{ baseUrl: string, stateDir: string | undefined, stop: () => Promise<void> }>}
 * `stateDir` is the temporary storage directory this call created, if it created one.
 */
export async function startDevServer(args = []) {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const stateDir = hasPersistTo(args) ? undefined : mkdtempSync(path.join(os.tmpdir(), "edge-session-dev-"));
  const persist = stateDir === undefined ? [] : ["--persist-to", stateDir];
  const dev = spawn(
    "npx",
    ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(port), "--log-level", "warn", "--show-interactive-dev-session=false", ...persist, ...args],
    { stdio: ["ignore", "inherit", "inherit"], detached: true },
  );
  const removeState = () => {
    if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true });
  };
  // At process exit nothing can be awaited. A temporary directory holds nothing worth
  // flushing, so its server is killed outright before the directory goes.
  const onExit = () => {
    signalGroup(dev.pid, stateDir === undefined ? "SIGTERM" : "SIGKILL");
    try {
      removeState();
    } catch (err) {
      console.error(`could not remove ${stateDir}: ${err.message}`);
    }
  };
  process.on("exit", onExit);

  let stopping;
  const stop = () => {
    stopping ??= (async () => {
      process.off("exit", onExit);
      signalGroup(dev.pid, "SIGTERM");
      const deadline = Date.now() + STOP_TIMEOUT_MS;
      while (groupAlive(dev.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, STOP_POLL_MS));
      signalGroup(dev.pid, "SIGKILL");
      // Removed only once no process of the group can write into it any more.
      while (groupAlive(dev.pid)) await new Promise((r) => setTimeout(r, STOP_POLL_MS));
      removeState();
    })();
    return stopping;
  };

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    try {
      if ((await fetch(`${baseUrl}/health`)).ok) return { baseUrl, stateDir, stop };
    } catch {}
    if (dev.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not serve ${baseUrl}/health`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
