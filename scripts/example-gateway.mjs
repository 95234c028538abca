#!/usr/bin/env node
/**
 * npm run example:gateway — the example gateway and the session service in one
 * `wrangler dev` (gateway on http://localhost:8787), with the fake upstream on 8788.
 * Extra arguments go to wrangler dev.
 */
import { spawn } from "node:child_process";
import "./ensure-dev-vars.mjs";
import { startFakeUpstream } from "../examples/gateway/fake-upstream.mjs";

const upstream = await startFakeUpstream({ port: Number(process.env.UPSTREAM_PORT ?? 8788) });
console.log(`fake upstream on ${upstream.url}`);
const dev = spawn("npx", ["wrangler", "dev", "-c", "examples/gateway/wrangler.toml", "-c", "wrangler.toml", ...process.argv.slice(2)], {
  stdio: "inherit",
});
dev.on("exit", (code) => process.exit(code ?? 0));
