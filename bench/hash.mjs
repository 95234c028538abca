#!/usr/bin/env node
/**
 * node bench/hash.mjs [--source=path/to/hashing.ts] [--max=N]
 *
 * Times hashRequestContent("a" + N spaces + "b"), the input that made a
 * regex trim quadratic, for N = 16k, 64k, 1M and 8M, and each against
 * N/16 spaces. Linear work gives a ratio near 16 (less where the fixed cost of
 * the digest dominates); quadratic work gives near 256. --source benches
 * another version of the file (say, one checked out from an older commit);
 * --max skips larger N, for versions that would not finish.
 * benchHash() returns the rows for bench/run.mjs.
 */
import { loadTs } from "./load-ts.mjs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The run lengths the issue reported on (64k took 2.4 s), up to past the 4 MiB resolve body limit. */
const SIZES = [16_000, 64_000, 1_000_000, 8_000_000];
/** Small inputs take microseconds; repeat each until this much time has passed so timer resolution does not dominate. */
const MIN_SAMPLE_MS = 200;
/** Linear work scales by the size ratio: N against N/16. */
const SIZE_RATIO = 16;

function loadHashing(source) {
  return loadTs({ entry: source });
}

/** Milliseconds per call, averaged over as many calls as fit in MIN_SAMPLE_MS (at least one). */
async function msPerCall(hash, input) {
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    await hash(input);
    calls++;
    elapsed = performance.now() - start;
  } while (elapsed < MIN_SAMPLE_MS);
  return elapsed / calls;
}

export async function benchHash({ source = fileURLToPath(new URL("../src/session/hashing.ts", import.meta.url)), max = Infinity } = {}) {
  const { hashRequestContent } = await loadHashing(source);
  const rows = [];
  for (const n of SIZES.filter((size) => size <= max)) {
    const small = await msPerCall(hashRequestContent, "a" + " ".repeat(n / SIZE_RATIO) + "b");
    const large = await msPerCall(hashRequestContent, "a" + " ".repeat(n) + "b");
    rows.push({ spaces: n, ms: large, msAtSixteenth: small, ratio: large / small });
  }
  return rows;
}

function option(name) {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? undefined : arg.slice(name.length + 3);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const source = option("source");
  const max = option("max");
  const rows = await benchHash({ ...(source ? { source: path.resolve(source) } : {}), ...(max ? { max: Number(max) } : {}) });
  console.log(`hashRequestContent("a" + N spaces + "b"); ratio = time(N) / time(N/${SIZE_RATIO}), ~${SIZE_RATIO} when linear`);
  console.log("N spaces    ms/call   ms at N/16   ratio");
  for (const r of rows) {
    console.log(`${String(r.spaces).padStart(9)} ${r.ms.toFixed(3).padStart(10)} ${r.msAtSixteenth.toFixed(3).padStart(12)} ${r.ratio.toFixed(1).padStart(7)}`);
  }
}
