#!/usr/bin/env node
/**
 * npm run example:gateway — the example gateway and the session service in one
 * `wrangler dev` (gateway on http://localhost:8787), with the fake upstream on 8788,
 * and a local gateway key in examples/gateway/.dev.vars.
 * Extra arguments go to wrangler dev.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import "./ensure-dev-vars.mjs";
import { startFakeUpstream } from "../examples/gateway/fake-upstream.mjs";

// The gateway refuses every request without GATEWAY_KEYS; locally it reads them from its own .dev.vars.
const GATEWAY_DEV_VARS = "examples/gateway/.dev.vars";
if (!existsSync(GATEWAY_DEV_VARS)) {
  copyFileSync(`${GATEWAY_DEV_VARS}.example`, GATEWAY_DEV_VARS);
  console.log(`created ${GATEWAY_DEV_VARS} from ${GATEWAY_DEV_VARS}.example (gateway key ID demo, key dev-gateway-key-0123456789abcdef)`);
}

const upstream = await startFakeUpstream({ port: Number(process.env.UPSTREAM_PORT ?? 8788) });
console.log(`fake upstream on ${upstream.url}`);
const dev = spawn("npx", ["wrangler", "dev", "-c", "examples/gateway/wrangler.toml", "-c", "wrangler.toml", ...process.argv.slice(2)], {
  stdio: "inherit",
});
dev.on("exit", (code) => process.exit(code ?? 0));
