#!/usr/bin/env node
/**
 * npm run bench:compare -- [--rev REV] [--rounds N] [--seconds S]
 *
 * The hot path and creation of this checkout against another revision (default:
 * HEAD~1), on the same machine in alternating rounds, so drift in the machine's
 * speed hits both alike. Each round starts each tree's bench Worker under
 * `wrangler dev` and measures, as ratios to floor-object in the same run
 * (bench/http-scenarios.mjs): resolve-hot throughput; resolve-new throughput,
 * p50 and p99 with 10 connections and p50 and p99 with one; and the rate of
 * CREATE_N sessions created with PUTs. Prints every
 * round, the median and the spread of each side, and the change of the medians;
 * fails when the hot path is worse than MAX_LOSS.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startDevServer } from "../scripts/dev-server.mjs";
import { driver } from "./http-scenarios.mjs";

/** The hot path may lose at most this much against the other revision (the command-table issue's budget). */
const MAX_LOSS = 0.03;

const arg = (name, fallback) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const i = process.argv.indexOf(`--${name}`);
  return hit ? hit.slice(name.length + 3) : i >= 0 ? process.argv[i + 1] : fallback;
};
const rev = arg("rev", "HEAD~1");
const rounds = Number(arg("rounds", "3"));
const seconds = Number(arg("seconds", "6"));
const here = path.resolve(fileURLToPath(new URL("..", import.meta.url)));
const { hotPath, creation } = driver({ durationS: seconds, warmupS: 1 });
/** Sessions created with PUTs per round, for the creation rate. */
const CREATE_N = 2000;
const FIGURES = [
  "resolve-hot req/s",
  "resolve-new req/s",
  "resolve-new p50",
  "resolve-new p99",
  "resolve-new 1 conn p50",
  "resolve-new 1 conn p99",
  "create sessions/s",
];

const base = mkdtempSync(path.join(os.tmpdir(), "edge-session-compare-"));
execFileSync("git", ["-C", here, "worktree", "add", "--detach", base, rev], { stdio: "inherit" });
symlinkSync(path.join(here, "node_modules"), path.join(base, "node_modules"));
const trees = [
  { name: rev, dir: base, ratios: [], figures: Object.fromEntries(FIGURES.map((f) => [f, []])) },
  { name: "this checkout", dir: here, ratios: [], figures: Object.fromEntries(FIGURES.map((f) => [f, []])) },
];
const stateRoot = existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  for (let r = 1; r <= rounds; r++) {
    for (const tree of trees) {
      const stateDir = mkdtempSync(path.join(stateRoot, "edge-session-compare-state-"));
      const server = await startDevServer(["-c", path.join(tree.dir, "bench/wrangler.toml"), "--persist-to", stateDir]);
      try {
        console.log(`round ${r}, ${tree.name}`);
        const { floor, resolveHot } = await hotPath(server.baseUrl, { withWriteFloor: false });
        if (floor.errors || resolveHot.errors) throw new Error(`${tree.name}: ${floor.errors + resolveHot.errors} errors`);
        tree.ratios.push(resolveHot.requestsPerSec / floor.requestsPerSec);
        const { resolveNew, resolveNewAlone, create } = await creation(server.baseUrl, CREATE_N, `round-${r}`);
        if (resolveNew.errors || create.errors) throw new Error(`${tree.name}: ${resolveNew.errors + create.errors} errors in creation`);
        const f = tree.figures;
        f["resolve-hot req/s"].push(resolveHot.requestsPerSec / floor.requestsPerSec);
        f["resolve-new req/s"].push(resolveNew.requestsPerSec / floor.requestsPerSec);
        f["resolve-new p50"].push(resolveNew.p50Ms / floor.p50Ms);
        f["resolve-new p99"].push(resolveNew.p99Ms / floor.p99Ms);
        f["resolve-new 1 conn p50"].push(resolveNewAlone.p50Ms / floor.p50Ms);
        f["resolve-new 1 conn p99"].push(resolveNewAlone.p99Ms / floor.p99Ms);
        f["create sessions/s"].push(create.perSec / floor.requestsPerSec);
        console.log(
          `  resolve-new p50 ${resolveNew.p50Ms} ms, p99 ${resolveNew.p99Ms} ms; alone p50 ${resolveNewAlone.p50Ms} ms, p99 ${resolveNewAlone.p99Ms} ms (floor-object p50 ${floor.p50Ms} ms, p99 ${floor.p99Ms} ms)`,
        );
      } finally {
        await server.stop();
        rmSync(stateDir, { recursive: true, force: true });
      }
    }
  }
} finally {
  execFileSync("git", ["-C", here, "worktree", "remove", "--force", base]);
}

console.log("\n| tree | resolve-hot ÷ floor-object, each round | median | spread (max − min) |\n| --- | --- | ---: | ---: |");
for (const t of trees) {
  console.log(
    `| ${t.name} | ${t.ratios.map((x) => x.toFixed(3)).join(", ")} | ${median(t.ratios).toFixed(3)} | ${(Math.max(...t.ratios) - Math.min(...t.ratios)).toFixed(3)} |`,
  );
}
console.log("\nEvery figure as a ratio to floor-object in the same run (latency: higher is slower; throughput: higher is faster).\n");
console.log(
  `| figure | ${trees.map((t) => `${t.name}: median (spread)`).join(" | ")} | change of the medians |\n| --- | ${trees.map(() => "---:").join(" | ")} | ---: |`,
);
for (const fig of FIGURES) {
  const cells = trees.map((t) => `${median(t.figures[fig]).toFixed(3)} (${(Math.max(...t.figures[fig]) - Math.min(...t.figures[fig])).toFixed(3)})`);
  const delta = median(trees[1].figures[fig]) / median(trees[0].figures[fig]) - 1;
  console.log(`| ${fig} | ${cells.join(" | ")} | ${(delta * 100).toFixed(1)}% |`);
}
const change = median(trees[1].ratios) / median(trees[0].ratios) - 1;
console.log(`\nchange of the medians: ${(change * 100).toFixed(1)}% (budget: no loss beyond ${MAX_LOSS * 100}%)`);
if (change < -MAX_LOSS) process.exitCode = 1;
