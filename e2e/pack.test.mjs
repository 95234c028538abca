/**
 * The package as people install it: `npm pack` (which builds lib/), the tarball
 * installed into a temporary plain-Node ESM project, and that project importing
 * edge-session with plain `node` (no loader, no TypeScript) to call a dev
 * server and run a MemoryStore. Then TypeScript consumers with NodeNext
 * resolution: correct use compiles against the shipped declarations, and
 * misuse fails at the very lines that misuse them, which `any` types would not.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { API_TOKEN } from "../blackbox/client.mjs";
import { startDevServer } from "../scripts/dev-server.mjs";

const run = promisify(execFile);
const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const TSC = path.join(ROOT, "node_modules/typescript/bin/tsc");

let tmp;
let consumer;
let tarball;
let server;
/** The dev server's start, begun before the pack so that both proceed together. */
let serverReady;

/** Runs a command; a failure carries its output, so the test report says why. */
async function sh(command, args, options) {
  try {
    return await run(command, args, { maxBuffer: 64 * 1024 * 1024, ...options });
  } catch (err) {
    err.message += `\n--- stdout\n${err.stdout}\n--- stderr\n${err.stderr}`;
    throw err;
  }
}

/** Runs a script with plain `node` inside the consumer project and parses the JSON it prints. */
async function node(script, env = {}) {
  const file = path.join(consumer, `run-${crypto.randomUUID()}.mjs`);
  writeFileSync(file, script);
  const { stdout } = await sh(process.execPath, [file], { cwd: consumer, env: { PATH: process.env.PATH, ...env } });
  return JSON.parse(stdout);
}

/** Type-checks one file of the consumer project with the repo's tsc; resolves to its exit code and diagnostics. */
async function tsc(file, { lib, types }) {
  const config = path.join(consumer, `tsconfig.${path.basename(file, ".ts")}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: "NodeNext",
        moduleResolution: "NodeNext",
        target: "es2023",
        lib,
        types,
        // The shipped declarations are checked too, not only the consumer's use of them.
        skipLibCheck: false,
        noEmit: true,
      },
      files: [file],
    }),
  );
  try {
    await run(process.execPath, [TSC, "-p", config], { cwd: consumer });
    return { code: 0, output: "" };
  } catch (err) {
    if (typeof err.code !== "number") throw err;
    return { code: err.code, output: `${err.stdout}${err.stderr}` };
  }
}

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "edge-session-pack-"));
  consumer = path.join(tmp, "consumer");
  serverReady = startDevServer();

  // prepack builds lib/ first.
  await sh("npm", ["pack", "--pack-destination", tmp], { cwd: ROOT });
  const tarballs = readdirSync(tmp).filter((f) => f.endsWith(".tgz"));
  assert.equal(tarballs.length, 1, `npm pack wrote ${tarballs}`);
  tarball = path.join(tmp, tarballs[0]);

  // The tarball and zod (the package's one dependency) at the version this repo's
  // lockfile pins, installed with `npm ci --offline` from npm's cache, which the
  // repo's own `npm ci` filled: no registry request, so no network needed.
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
  const zod = JSON.parse(readFileSync(path.join(ROOT, "package-lock.json"), "utf8")).packages["node_modules/zod"];
  const spec = `file:../${tarballs[0]}`;
  mkdirSync(consumer);
  writeFileSync(
    path.join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { "edge-session": spec } }),
  );
  writeFileSync(
    path.join(consumer, "package-lock.json"),
    JSON.stringify({
      name: "consumer",
      lockfileVersion: 3,
      requires: true,
      packages: {
        "": { name: "consumer", dependencies: { "edge-session": spec } },
        "node_modules/edge-session": { version: pkg.version, resolved: spec, dependencies: pkg.dependencies },
        "node_modules/zod": { version: zod.version, integrity: zod.integrity },
      },
    }),
  );
  await sh("npm", ["ci", "--offline", "--no-audit", "--no-fund"], { cwd: consumer });
  // A Worker gateway has Cloudflare's types as a dev dependency; the repo's copy stands in for it.
  mkdirSync(path.join(consumer, "node_modules/@cloudflare"));
  symlinkSync(path.join(ROOT, "node_modules/@cloudflare/workers-types"), path.join(consumer, "node_modules/@cloudflare/workers-types"), "dir");

  server = await serverReady;
});

after(async () => {
  // Awaited even when the pack or install failed first, so the server never outlives the test.
  await (await serverReady?.catch(() => undefined))?.stop();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe("npm pack", () => {
  it("ships lib/ (JS and declarations for every export), README.md and package.json, nothing else", async () => {
    const { stdout } = await sh("tar", ["-tzf", tarball]);
    const files = stdout
      .trim()
      .split("\n")
      .map((f) => f.replace(/^package\//, ""));
    const stray = files.filter((f) => !f.startsWith("lib/") && f !== "README.md" && f !== "package.json");
    assert.deepEqual(stray, []);
    for (const f of ["lib/client.js", "lib/client.d.ts", "lib/memory.js", "lib/memory.d.ts", "lib/entrypoints.d.ts"]) assert.ok(files.includes(f), f);
    assert.ok(!files.some((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), "no TypeScript sources");
  });

  it("installs as edge-session, which depends on zod alone", () => {
    const installed = JSON.parse(readFileSync(path.join(consumer, "node_modules/edge-session/package.json"), "utf8"));
    assert.equal(installed.name, "edge-session");
    assert.deepEqual(Object.keys(installed.dependencies ?? {}), ["zod"]);
  });
});

describe("plain Node ESM", () => {
  it("imports createSessionClient from edge-session and calls the dev server with it", async () => {
    const id = `pack-${crypto.randomUUID()}`;
    const out = await node(
      `
      import { createSessionClient, SessionApiError } from "edge-session";
      import * as viaSubpath from "edge-session/client";
      const { BASE_URL, TOKEN, ID } = process.env;
      const sessions = createSessionClient({ baseUrl: BASE_URL, token: TOKEN });
      const out = { sameModule: viaSubpath.createSessionClient === createSessionClient };
      out.health = await sessions.health();
      out.resolved = await sessions.resolve({ headers: { "x-session-id": ID }, body: { model: "kimi-k2.5", messages: [{ role: "user", content: "hello" }] } });
      out.read = await sessions.getSession(ID);
      out.touched = await sessions.touchSession(ID);
      out.cost = await sessions.addSessionCost(ID, 1500);
      out.cleared = await sessions.clearSession(ID);
      out.afterClear = await sessions.getSession(ID);
      try {
        await createSessionClient({ baseUrl: BASE_URL, token: "not-the-token" }).getSession(ID);
        out.wrongToken = "no error";
      } catch (err) {
        out.wrongToken = { isApiError: err instanceof SessionApiError, status: err.status, code: err.code };
      }
      console.log(JSON.stringify(out));
      `,
      { BASE_URL: server.baseUrl, TOKEN: API_TOKEN, ID: id },
    );
    assert.equal(out.sameModule, true, '"edge-session" and "edge-session/client" are the same module');
    assert.deepEqual(out.health, { ok: true });
    assert.equal(out.resolved.sessionId, id);
    assert.equal(out.resolved.source, "header");
    assert.equal(out.resolved.model, "kimi-k2.5");
    assert.equal(out.read.id, id);
    assert.equal(out.read.model, "kimi-k2.5");
    assert.equal(out.touched.requestCount, out.read.requestCount + 1);
    assert.deepEqual(out.cost, { sessionCostMicros: 1500, costUSD: 0.0015 });
    assert.equal(out.cleared, undefined);
    assert.equal(out.afterClear, null);
    assert.deepEqual(out.wrongToken, { isApiError: true, status: 401, code: "unauthorized" });
  });

  it("imports MemoryStore from edge-session/memory and runs it; edge-session/rpc has no runtime export", async () => {
    const out = await node(`
      import { MemoryStore } from "edge-session/memory";
      const store = new MemoryStore();
      const out = {};
      out.set = await store.setSession("conv-1", "kimi-k2.5", "MEDIUM");
      out.strikes = await store.recordRequestHash("conv-1", "h");
      out.touched = await store.touchSession("conv-1");
      out.unknown = await store.getSession("nobody");
      out.size = store.size;
      store.close();
      try {
        await import("edge-session/rpc");
        out.rpc = "imported";
      } catch (err) {
        out.rpc = err.code;
      }
      console.log(JSON.stringify(out));
    `);
    assert.equal(out.set.model, "kimi-k2.5");
    assert.equal(out.set.tier, "MEDIUM");
    assert.equal(out.strikes, 0);
    assert.equal(out.touched.requestCount, out.set.requestCount + 1);
    assert.equal(out.unknown, null);
    assert.equal(out.size, 1);
    assert.equal(out.rpc, "ERR_PACKAGE_PATH_NOT_EXPORTED");
  });
});

describe("TypeScript consumers (module and moduleResolution NodeNext)", () => {
  it("a Node project (DOM lib, no Cloudflare types) compiles against the client and MemoryStore", async () => {
    writeFileSync(
      path.join(consumer, "node-app.ts"),
      `
      import { createSessionClient, SessionApiError, type ResolveResult, type SessionView } from "edge-session";
      import { MemoryStore } from "edge-session/memory";

      const sessions = createSessionClient({ baseUrl: "http://127.0.0.1:8787", token: "dev-token" });
      const decision: ResolveResult = await sessions.resolve({ body: { model: "kimi-k2.5", messages: [] } });
      const view: SessionView | null = await sessions.getSession("conv-1");
      const store = new MemoryStore({ config: { timeoutMs: 60_000 }, sweepIntervalMs: 0 });
      const set: SessionView = await store.setSession("conv-1", "kimi-k2.5", "MEDIUM");
      const strikes: number = await store.recordRequestHash("conv-1", "h");
      store.close();
      export const checked = [decision.model, view?.tier, set.requestCount, strikes, new SessionApiError(401, "unauthorized", "no").status];
      `,
    );
    const result = await tsc("node-app.ts", { lib: ["es2023", "dom"], types: [] });
    assert.deepEqual(result, { code: 0, output: "" });
  });

  it("a Worker gateway compiles against Service<SessionService> from edge-session/rpc, the client and MemoryStore", async () => {
    writeFileSync(
      path.join(consumer, "worker-app.ts"),
      `
      import { createSessionClient } from "edge-session";
      import { MemoryStore } from "edge-session/memory";
      import type { SessionService } from "edge-session/rpc";

      interface Env { SESSION: Service<SessionService> }

      export default {
        async fetch(request: Request, env: Env): Promise<Response> {
          const decision = await env.SESSION.resolve({ headers: { "x-session-id": "conv-1" }, body: { model: "kimi-k2.5", messages: [] } });
          const scoped = await env.SESSION.forNamespace("tenant-a").getSession("conv-1");
          const viaHttp = await createSessionClient({ baseUrl: "https://sessions.example.com", token: "t" }).getSession("conv-1");
          const local = await new MemoryStore().getSession("conv-1");
          const model: string = decision.model;
          return Response.json({ model, scoped: scoped?.model ?? null, viaHttp: viaHttp?.tier ?? null, local: local?.requestCount ?? 0 });
        },
      } satisfies ExportedHandler<Env>;
      `,
    );
    const result = await tsc("worker-app.ts", { lib: ["es2023"], types: ["@cloudflare/workers-types"] });
    assert.deepEqual(result, { code: 0, output: "" });
  });

  it("misuse fails with the expected error on each misusing line, and only there", async () => {
    // Each misusing line ends with the code tsc must report on it.
    const source = `
      import { createSessionClient } from "edge-session";
      import { MemoryStore } from "edge-session/memory";
      import type { SessionService } from "edge-session/rpc";

      declare const binding: Service<SessionService>;
      const sessions = createSessionClient({ baseUrl: "http://127.0.0.1:8787", token: "dev-token" });
      const store = new MemoryStore();

      await sessions.getSession(42); // TS2345
      const count: number = await sessions.getSession("conv-1"); // TS2322
      await sessions.addSessionCost("conv-1", "1500"); // TS2345
      createSessionClient({ baseUrl: "http://127.0.0.1:8787" }); // TS2345
      await store.setSession("conv-1", "kimi-k2.5", "NOT_A_TIER"); // TS2345
      const cost: string = await store.getSessionCostUSD("conv-1"); // TS2322
      await binding.getSession(42); // TS2345
      await binding.resolve({ body: { model: "kimi-k2.5", messages: [] }, routed: { model: 1, tier: "MEDIUM" } }); // TS2322
      export { count, cost };
      `;
    writeFileSync(path.join(consumer, "misuse.ts"), source);
    const expected = source.split("\n").flatMap((line, i) => (/\/\/ (TS\d+)$/.test(line) ? [`${i + 1} ${line.match(/\/\/ (TS\d+)$/)[1]}`] : []));
    assert.equal(expected.length, 8);
    const result = await tsc("misuse.ts", { lib: ["es2023"], types: ["@cloudflare/workers-types"] });
    assert.notEqual(result.code, 0, "tsc must reject misuse");
    const reported = [...result.output.matchAll(/^misuse\.ts\((\d+),\d+\): error (TS\d+)/gm)].map((m) => `${m[1]} ${m[2]}`);
    const elsewhere = result.output.split("\n").filter((l) => /error TS\d+/.test(l) && !l.startsWith("misuse.ts("));
    assert.deepEqual(elsewhere, [], "no errors outside the consumer's file");
    assert.deepEqual(reported, expected, result.output);
  });
});
