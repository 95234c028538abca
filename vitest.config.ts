import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig, defineProject } from "vitest/config";

const PROJECT = "edge-session";
/**
 * The plugin runs the Worker under test as "vitest-plugin-runner-<project>"
 * and re-points only its own self-bindings, so an auxiliary Worker binds to
 * that name.
 */
const WORKER_UNDER_TEST = `vitest-plugin-runner-${PROJECT}`;
const COMPATIBILITY_DATE = "2026-11-01";

/** Tokens and limits every test Worker runs with. */
const baseBindings = {
  SESSION_API_TOKEN: "test-token",
  SESSION_ADMIN_TOKEN: "test-admin-token",
  // 1,000 USD: high enough for every other test, reachable by the budget test.
  SESSION_BUDGET_MICROS: "1000000000",
  // How many random histories the model-based test checks; raise it on demand: MODEL_RUNS=5000 npm run test:unit
  MODEL_RUNS: process.env.MODEL_RUNS ?? "300",
  MODEL_SEED: process.env.MODEL_SEED ?? "",
  FUZZ_RUNS: process.env.FUZZ_RUNS ?? "5000",
  // Deliveries that outlive it land after their sender gave up: tests make them wait 1.5 s, not 5.
  REGISTRY_TIMEOUT_MS: "1000",
};

/** The deployed Worker's config, with a test entry that controls the clock and injects faults. */
function workerProject(name: string, include: string[], miniflare: { bindings: Record<string, string> } & Record<string, unknown>, exclude: string[] = []) {
  return defineProject({
    plugins: [cloudflareTest({ main: "./test/support/worker.ts", wrangler: { configPath: "./wrangler.toml" }, miniflare })],
    test: { name, include, exclude, testTimeout: 60_000 },
  });
}

export default defineConfig({
  test: {
    projects: [
      workerProject(
        PROJECT,
        ["test/**/*.test.ts"],
        {
          // The test clock stands still unless a test moves it, so a clear-all pass never runs out of its
          // budget and ends only when done, while the fan-out waits CLEAR_BUDGET_MS + 15 s of real time for it.
          // 2,000 sessions take about 15 s on a 2-core machine alone: a minute leaves room for a busy one.
          bindings: { ...baseBindings, CLEAR_BUDGET_MS: "60000" },
          workers: [
            {
              // A second Worker with a service binding to SessionService, as a gateway would have.
              name: "test-gateway",
              modules: true,
              scriptPath: "./test/fixtures/gateway-worker.js",
              compatibilityDate: COMPATIBILITY_DATE,
              serviceBindings: { SESSION: { name: WORKER_UNDER_TEST, entrypoint: "SessionService" } },
            },
            {
              // The same script bound to SessionAdmin only, as an operator's tool would be.
              name: "test-operator",
              modules: true,
              scriptPath: "./test/fixtures/gateway-worker.js",
              compatibilityDate: COMPATIBILITY_DATE,
              serviceBindings: { ADMIN: { name: WORKER_UNDER_TEST, entrypoint: "SessionAdmin" } },
            },
          ],
          serviceBindings: { GATEWAY: "test-gateway", OPERATOR: "test-operator" },
          // Lifecycle messages (docs/events.md) go to a local queue; test/support/worker.ts records what it takes.
          queueProducers: { SESSION_EVENTS: { queueName: "session-events" } },
        },
        ["test/pacing/**", "test/limits/**", "test/consumer/**"],
      ),
      // A clear-all pass of 2 ms over batches of 2 rows: with the test clock ticking, one batch a pass.
      // Graceful budgets, a cap of 3 reservations in flight, 6 resolves a minute, and reservations that outlive a 1-minute idle timeout.
      workerProject(`${PROJECT}-limits`, ["test/limits/**/*.test.ts"], {
        bindings: {
          ...baseBindings,
          SESSION_BUDGET_MODE: "graceful",
          SESSION_MAX_IN_FLIGHT: "3",
          SESSION_RATE_PER_MIN: "6",
          SESSION_TIMEOUT_MS: "60000",
          RESERVATION_TTL_MS: "120000",
        },
      }),
      workerProject(`${PROJECT}-pacing`, ["test/pacing/**/*.test.ts"], { bindings: { ...baseBindings, CLEAR_BUDGET_MS: "2", CLEAR_BATCH_SIZE: "2" } }),
      // The example lifecycle-queue consumer (examples/events-consumer) under its own config. Its outbound
      // fetches, the alert webhook included, all go to a recording Worker the test reads over WEBHOOK_LOG.
      defineProject({
        plugins: [
          cloudflareTest({
            main: "./examples/events-consumer/src/index.ts",
            wrangler: { configPath: "./examples/events-consumer/wrangler.toml" },
            miniflare: {
              bindings: { ALERT_WEBHOOK_URL: "https://alerts.example.test/hook" },
              workers: [{ name: "webhook-recorder", modules: true, scriptPath: "./test/fixtures/webhook-recorder.js", compatibilityDate: COMPATIBILITY_DATE }],
              outboundService: "webhook-recorder",
              serviceBindings: { WEBHOOK_LOG: "webhook-recorder" },
            },
          }),
        ],
        test: { name: `${PROJECT}-consumer`, include: ["test/consumer/**/*.test.ts"], testTimeout: 60_000 },
      }),
    ],
  },
});
