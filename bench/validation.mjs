/**
 * What validating a resolve request costs: the zod schema of the command table's
 * resolve entry (src/commands.ts) on the bench's ~2 KB chat body, in process.
 * bench/run.mjs sets it against the floor's time per request from the same run.
 */
import { fileURLToPath } from "node:url";
import { resolveInput } from "./http-scenarios.mjs";
import { loadTs } from "./load-ts.mjs";

export async function benchValidation(quick) {
  const src = (p) => JSON.stringify(fileURLToPath(new URL(`../src/${p}`, import.meta.url)));
  const code = await loadTs({
    contents: `export { parseInput } from ${src("schemas.ts")}; export { commands } from ${src("commands.ts")};`,
    resolveDir: fileURLToPath(new URL(".", import.meta.url)),
  });
  const inputs = Array.from({ length: 100 }, (_, turn) => JSON.parse(resolveInput(`hot-${turn}`, turn)));
  const n = quick ? 20_000 : 200_000;
  const parse = (i) => code.parseInput(code.commands.resolve.input, inputs[i % inputs.length]);
  for (let i = 0; i < n / 10; i++) parse(i);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) parse(i);
  return { resolveParseUs: ((performance.now() - t0) * 1000) / n };
}
