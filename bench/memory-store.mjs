/** In-process MemoryStore throughput on one core, with tinybench, from the TypeScript source bundled by esbuild. */
import { loadTs } from "./load-ts.mjs";
import { fileURLToPath } from "node:url";
import { Bench } from "tinybench";

async function loadMemoryStore() {
  const mod = await loadTs({ entry: fileURLToPath(new URL("../src/session/memory-store.ts", import.meta.url)) });
  return mod.MemoryStore;
}

export async function benchMemoryStore(quick) {
  const MemoryStore = await loadMemoryStore();
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  const ids = Array.from({ length: 1000 }, (_, i) => `mem-${i}`);
  for (const id of ids) store.setSession(id, "kimi-k2.5", "MEDIUM");
  const body = { model: "auto", messages: [{ role: "user", content: "hello there" }, { role: "assistant", content: "hi" }, { role: "user", content: "go on" }] };
  let i = 0;
  const bench = new Bench({ time: quick ? 200 : 1000, warmupTime: quick ? 50 : 200 });
  bench
    .add("set", () => {
      store.setSession(ids[i++ % 1000], "kimi-k2.5", "MEDIUM");
    })
    .add("touch", () => {
      store.touchSession(ids[i++ % 1000]);
    })
    .add("hash", () => {
      store.recordRequestHash(ids[i++ % 1000], "0123456789abcdef0123456789abcdef");
    })
    .add("resolve", async () => {
      await store.resolve({ sessionId: ids[i++ % 1000], body, routed: { model: "kimi-k2.5", tier: "MEDIUM" }, costMicros: 1 });
    });
  await bench.run();
  store.close();
  return bench.tasks.map((t) => ({ op: t.name, opsPerSec: Math.round(t.result.throughput?.mean ?? t.result.hz) }));
}
