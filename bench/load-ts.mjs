/** Bundles TypeScript source with esbuild into a temporary ES module and imports it. */
import { build } from "esbuild";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

/**
 * @param {{ entry?: string, contents?: string, resolveDir?: string }} input
 *   a file to bundle, or module text (`contents`, resolved from `resolveDir`)
 */
export async function loadTs({ entry, contents, resolveDir }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "edge-session-bench-"));
  const outfile = path.join(dir, "bundle.mjs");
  try {
    await build({
      ...(entry !== undefined ? { entryPoints: [entry] } : { stdin: { contents, resolveDir, loader: "ts" } }),
      bundle: true,
      format: "esm",
      platform: "neutral",
      outfile,
      logLevel: "error",
    });
    return await import(pathToFileURL(outfile).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
