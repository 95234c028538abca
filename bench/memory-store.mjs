/** In-process MemoryStore throughput on one core (each call awaited: the API is async), with tinybench, from the TypeScript source bundled by esbuild. */
import { loadTs } from "./load-ts.mjs";
import { fileURLToPath } from "node:url";
import { Bench } from "tinybench";

async function loadMemoryStore() {
  const mod = await loadTs({ entry: fileURLToPath(new URL("../src/memory.ts", import.meta.url)) });
  return mod.MemoryStore;
}

export async function benchMemoryStore(quick) {
  const MemoryStore = await loadMemoryStore();
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  const ids = Array.from({ length: 1000 }, (_, i) => `mem-${i}`);
  for (const id of ids) await store.setSession(id, "kimi-k2.5", "MEDIUM");
  const body = {
    model: "auto",
    messages: [
      { role: "user", content: "hello there" },
      { role: "assistant", content: "hi" },
      { role: "user", content: "go on" },
    ],
  };
  let i = 0;
  // Every call is awaited, as a caller of the async API would. A sample runs BATCH calls,
  // so tinybench's per-sample timer reads do not dominate a sub-microsecond call.
  const BATCH = 100;
  const batched = (call) => async () => {
    for (let k = 0; k < BATCH; k++) await call(ids[i++ % 1000]);
  };
  const bench = new Bench({ time: quick ? 200 : 1000, warmupTime: quick ? 50 : 200 });
  bench
    .add(
      "set",
      batched((id) => store.setSession(id, "kimi-k2.5", "MEDIUM")),
    )
    .add(
      "touch",
      batched((id) => store.touchSession(id)),
    )
    .add(
      "hash",
      batched((id) => store.recordRequestHash(id, "0123456789abcdef0123456789abcdef")),
    )
    .add("resolve", async () => {
      await store.resolve({ sessionId: ids[i++ % 1000], body, routed: { model: "kimi-k2.5", tier: "MEDIUM" }, costMicros: 1 });
    });
  await bench.run();
  store.close();
  const callsPerSample = (name) => (name === "resolve" ? 1 : BATCH);
  return bench.tasks.map((t) => ({ op: t.name, opsPerSec: Math.round((t.result.throughput?.mean ?? t.result.hz) * callsPerSample(t.name)) }));
}
