import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const PROJECT = "edge-session";
/**
 * The plugin runs the Worker under test as "vitest-plugin-runner-<project>"
 * and re-points only its own self-bindings, so an auxiliary Worker binds to
 * that name.
 */
const WORKER_UNDER_TEST = `vitest-plugin-runner-${PROJECT}`;

export default defineConfig({
  plugins: [
    cloudflareTest({
      // The deployed Worker's config, with a test entry that swaps in a controllable clock and fault seams.
      main: "./test/support/worker.ts",
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          SESSION_API_TOKEN: "test-token",
          SESSION_ADMIN_TOKEN: "test-admin-token",
          // 1,000 USD: high enough for every other test, reachable by the budget test.
          SESSION_BUDGET_MICROS: "1000000000",
          // How many random histories the model-based test checks; raise it on demand: MODEL_RUNS=5000 npm run test:unit
          MODEL_RUNS: process.env.MODEL_RUNS ?? "300",
          MODEL_SEED: process.env.MODEL_SEED ?? "",
          FUZZ_RUNS: process.env.FUZZ_RUNS ?? "5000",
        },
        workers: [
          {
            // A second Worker with a service binding to SessionService, as a gateway would have.
            name: "test-gateway",
            modules: true,
            scriptPath: "./test/fixtures/gateway-worker.js",
            compatibilityDate: "2026-11-01",
            serviceBindings: { SESSION: { name: WORKER_UNDER_TEST, entrypoint: "SessionService" } },
          },
          {
            // The same script bound to SessionAdmin only, as an operator's tool would be.
            name: "test-operator",
            modules: true,
            scriptPath: "./test/fixtures/gateway-worker.js",
            compatibilityDate: "2026-11-01",
            serviceBindings: { ADMIN: { name: WORKER_UNDER_TEST, entrypoint: "SessionAdmin" } },
          },
        ],
        serviceBindings: { GATEWAY: "test-gateway", OPERATOR: "test-operator" },
      },
    }),
  ],
  test: {
    name: PROJECT,
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
