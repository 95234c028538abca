#!/usr/bin/env node
/**
 * Builds what `npm pack` ships in lib/: ESM bundles of the runtime entries
 * (client, memory) and declarations for them and for the RPC entrypoints,
 * which are exported for types only (they import `cloudflare:workers`).
 *
 * zod stays external: it is a dependency of the package, and the declarations
 * name its types, so the consumer's type check and runtime share one zod.
 * Shared modules go into chunks, so importing both entries loads each once.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const out = path.join(root, "lib");

rmSync(out, { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: { client: "src/client.ts", memory: "src/memory.ts" },
  outdir: out,
  bundle: true,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["zod"],
  logLevel: "warning",
});

execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", path.join(root, "tsconfig.build.json")], { stdio: "inherit" });

/**
 * src/env.ts builds on `WranglerEnv`, a global that `npm run types` declares in
 * worker-configuration.d.ts beside other globals a consumer must not get
 * (Cloudflare.Env, NodeJS.ProcessEnv, module shims). lib/env.d.ts gets its own,
 * module-local copy of the bindings instead, pointing at the objects' declarations.
 */
function localiseEnv() {
  const generated = readFileSync(path.join(root, "worker-configuration.d.ts"), "utf8");
  const bindings = /^interface __BaseEnv_WranglerEnv \{[\s\S]*?^\}/m.exec(generated)?.[0];
  if (bindings === undefined) throw new Error("worker-configuration.d.ts: no __BaseEnv_WranglerEnv (run npm run types)");
  const local = bindings
    .replace("interface __BaseEnv_WranglerEnv", "interface WranglerEnv")
    .replace(/import\("\.\/src\/index"\)\.(SessionObject|RegistryObject)/g, (_, cls) =>
      cls === "SessionObject" ? 'import("./objects/session-object").SessionObject' : 'import("./objects/registry-object").RegistryObject',
    );
  const file = path.join(out, "env.d.ts");
  writeFileSync(file, `${local}\n${readFileSync(file, "utf8")}`);
}
localiseEnv();

/**
 * tsc keeps the sources' extensionless relative specifiers; a NodeNext consumer
 * resolves ESM declarations only with the extension, so each becomes the
 * `.js` path that sits next to the `.d.ts`.
 */
const SPECIFIER = /(\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']*)\2/g;

function rewrite(file) {
  const dir = path.dirname(file);
  const text = readFileSync(file, "utf8");
  const next = text.replace(SPECIFIER, (match, lead, quote, spec) => {
    if (/\.(js|mjs|cjs|json)$/.test(spec)) return match;
    const target = path.resolve(dir, spec);
    let resolved;
    if (existsSync(`${target}.d.ts`)) resolved = `${spec}.js`;
    else if (existsSync(path.join(target, "index.d.ts"))) resolved = `${spec}/index.js`;
    else throw new Error(`${path.relative(root, file)}: no declaration for ${spec}`);
    return `${lead}${quote}${resolved}${quote}`;
  });
  if (next !== text) writeFileSync(file, next);
}

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) walk(full);
    else if (name.endsWith(".d.ts")) rewrite(full);
  }
}
walk(out);
