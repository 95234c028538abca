#!/usr/bin/env node
/**
 * Runs a command against a fresh `wrangler dev` with BASE_URL set, then stops it.
 * The server keeps its objects in a temporary directory unless the arguments
 * include `--persist-to` (see dev-server.mjs).
 *
 *   node scripts/with-dev-server.mjs [wrangler dev args ...] -- <command> [args...]
 */
import { spawn } from "node:child_process";
import { startDevServer } from "./dev-server.mjs";

const argv = process.argv.slice(2);
const split = argv.indexOf("--");
if (split === -1 || split === argv.length - 1) {
  console.error("usage: with-dev-server.mjs [wrangler dev args] -- <command> [args...]");
  process.exit(2);
}
const [command, ...commandArgs] = argv.slice(split + 1);

let server;
try {
  server = await startDevServer(argv.slice(0, split));
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

const child = spawn(command, commandArgs, { stdio: "inherit", env: { ...process.env, BASE_URL: server.baseUrl } });
child.on("exit", async (code, signal) => {
  // Awaited: the server's temporary storage is removed once it has exited.
  await server.stop();
  process.exit(code ?? (signal ? 1 : 0));
});
