// Types for `env` and `exports` from "cloudflare:workers" inside the tests: the
// Worker's bindings come from worker-configuration.d.ts (npm run types).
declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import("./support/worker");
    durableNamespaces: "SessionObject" | "RegistryObject";
  }
}

declare namespace Cloudflare {
  interface Env {
    /** The test gateway Worker (test/fixtures/gateway-worker.js). */
    GATEWAY: Fetcher;
    /** The same Worker bound to SessionAdmin (test/fixtures/gateway-worker.js). */
    OPERATOR: Fetcher;
    MODEL_RUNS: string;
    MODEL_SEED: string;
    FUZZ_RUNS: string;
  }
}
