/**
 * Worst-case resolve bodies at the limits, through the real read → parse → plan
 * code (src/http/body.ts and src/requests/resolve-input.ts, bundled by esbuild)
 * in Node's V8, the engine workerd runs. Each shape runs in its own process
 * (`--expose-gc`, fresh heap) under a time limit, and reports:
 * - ms to read, parse and plan it, and ms to hash its last user message alone;
 * - peak live memory: V8 heap plus ArrayBuffers, sampled after a full GC at the
 *   entry and exit of every decode, parse, encode and digest the code path makes,
 *   minus what was live before the request. Allocations inside a single native
 *   call (the parser's own stacks) are not seen; the figure is the live data the
 *   isolate must hold at once.
 * The target is at most TARGET_PEAK_MB per request, a quarter of the isolate's 128 MB.
 */
import { loadTs } from "./load-ts.mjs";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";

export const TARGET_PEAK_MB = 32;
/** A shape that takes longer than this is reported as failed: the hot path must stay linear. */
const SHAPE_TIMEOUT_MS = 60_000;
const MiB = 1024 * 1024;
const here = fileURLToPath(import.meta.url);

export function loadCode() {
  const src = (p) => JSON.stringify(fileURLToPath(new URL(`../src/${p}`, import.meta.url)));
  return loadTs({
    contents: [
      `export { readJsonObject, RESOLVE_BODY_LIMIT } from ${src("http/body.ts")};`,
      `export { planResolve } from ${src("requests/resolve-input.ts")};`,
      `export { MAX_MESSAGES } from ${src("requests/messages.ts")};`,
      `export { parseInput } from ${src("schemas.ts")};`,
      `export { commands } from ${src("commands.ts")};`,
      `export { configFor } from ${src("session/config.ts")};`,
      `export { hashRequestContent } from ${src("session/hashing.ts")};`,
      `export { MAX_TOOL_NAMES } from ${src("session/validate.ts")};`,
    ].join("\n"),
    resolveDir: path.dirname(here),
  });
}

/**
 * Each shape fills the byte limit (or the value, depth, message or tool cap) with
 * the input that costs most of what it stresses. `fill(room)` returns JSON text of
 * about `room` bytes placed where the shape needs it.
 */
export function shapes(code) {
  const { bytes: maxBytes, values: maxValues, depth: maxDepth } = code.RESOLVE_BODY_LIMIT;
  const wrap = (messages, extra = "") => `{"model":"auto","messages":${messages}${extra}}`;
  const user = (text) => `{"role":"user","content":${text}}`;
  const frame = wrap(`[${user('""')}]`, ',"x":').length + 1;
  const room = maxBytes - frame - 64;
  const ignored = (json) => wrap(`[${user('"hello"')}]`, `,"x":${json}`);
  const list = (item, n) => "[" + Array(n).fill(item).join(",") + "]";
  // The frame (model, messages, routed) counts a few dozen values; each filler item below counts two.
  const items = Math.floor((maxValues - 64) / 2);
  return {
    "ascii text": () => wrap(`[${user(`"${"a".repeat(room)}"`)}]`),
    "one non-Latin-1 char (two-byte string)": () => wrap(`[${user(`"${"a".repeat(room - 3)}文"`)}]`),
    "CJK text (3 bytes a char)": () => wrap(`[${user(`"${"文".repeat(Math.floor(room / 3))}"`)}]`),
    "\\u escapes (6 bytes a char)": () => wrap(`[${user(`"${"\\u6587".repeat(Math.floor(room / 6))}"`)}]`),
    "whitespace run": () => wrap(`[${user(`"a${" ".repeat(room)}b"`)}]`),
    "empty objects to the value cap": () => ignored(list("{}", items)),
    "unique keys to the value cap": () => ignored("{" + Array.from({ length: items }, (_, i) => `"k${i}":0`).join(",") + "}"),
    "short unique strings to the value cap": () => ignored("[" + Array.from({ length: items }, (_, i) => `"${i.toString(36)}"`).join(",") + "]"),
    "unique keys to the value cap plus two-byte text to the byte limit": () => {
      const keys = "{" + Array.from({ length: items }, (_, i) => `"k${i}":0`).join(",") + "}";
      return wrap(`[${user(`"${"a".repeat(room - keys.length - 3)}文"`)}]`, `,"x":${keys}`);
    },
    "nesting to the depth cap": () => ignored("[".repeat(maxDepth - 2) + "]".repeat(maxDepth - 2)),
    "messages to the message cap": () => wrap(list(user('"hi"'), code.MAX_MESSAGES)),
    "tool names to the tool cap": () => {
      const name = "t".repeat(Math.floor(room / code.MAX_TOOL_NAMES) - 64);
      const calls = list(`{"type":"function","function":{"name":"${name}"}}`, code.MAX_TOOL_NAMES);
      return wrap(`[${user('"go"')},{"role":"assistant","tool_calls":${calls}},${user('"again"')}]`);
    },
  };
}

function liveBytes() {
  return v8.getHeapStatistics().used_heap_size + process.memoryUsage().arrayBuffers;
}

const originals = [];

function uninstrument() {
  for (const [owner, name, original] of originals.splice(0)) owner[name] = original;
}

/** Inputs below this many characters or bytes are not sampled around. */
const SMALL_INPUT = 64 * 1024;

/** Samples live memory around every heavy step the code path takes. */
function instrument(onSample) {
  const sample = () => {
    globalThis.gc();
    onSample(liveBytes());
  };
  const wrap = (owner, name) => {
    const original = owner[name];
    originals.push([owner, name, original]);
    owner[name] = function (...args) {
      // A small input cannot move a peak measured against a 32 MB target; sampling (a full GC each
      // time) around the thousands of small calls a tool-cap body makes would take minutes.
      const subject = name === "replace" ? this : args[0];
      const size = typeof subject === "string" ? subject.length : (subject?.byteLength ?? Infinity);
      if (size < SMALL_INPUT) return original.apply(this, args);
      sample();
      const out = original.apply(this, args);
      sample();
      if (out instanceof Promise) return out.finally(sample);
      return out;
    };
  };
  wrap(JSON, "parse");
  wrap(TextDecoder.prototype, "decode");
  wrap(TextEncoder.prototype, "encode");
  wrap(crypto.subtle, "digest");
  wrap(String.prototype, "replace");
}

/** A Request as the runtime hands it over: the body arrives in network-sized chunks. */
function requestOf(bytes) {
  const CHUNK = 64 * 1024;
  let offset = 0;
  const body = new ReadableStream({
    pull(c) {
      if (offset >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(offset, offset + CHUNK));
      offset += CHUNK;
    },
  });
  return new Request("http://bench/v1/resolve", { method: "POST", body, duplex: "half", headers: { "content-length": String(bytes.length) } });
}

/** The whole resolve input for a shape, built in its own frame so no temporary of it stays live. */
export function resolveInputBytes(code, name) {
  const input = JSON.stringify({ body: "__BODY__", routed: { model: "kimi-k2.5", tier: "MEDIUM" } }).replace('"__BODY__"', shapes(code)[name]());
  return new TextEncoder().encode(input);
}

async function child(name) {
  const code = await loadCode();
  const config = code.configFor({});
  const bytes = resolveInputBytes(code, name);
  const resolve = async () =>
    code.planResolve(code.parseInput(code.commands.resolve.input, await code.readJsonObject(requestOf(bytes), code.RESOLVE_BODY_LIMIT)), config);

  // Memory first, in a heap that has seen nothing else; the baseline is the lowest live figure seen.
  globalThis.gc();
  let base = liveBytes();
  let peak = base;
  instrument((n) => {
    peak = Math.max(peak, n);
    base = Math.min(base, n);
  });
  await resolve().catch(() => undefined);
  uninstrument();

  let t0 = performance.now();
  let outcome;
  try {
    const plan = await resolve();
    outcome = plan.sessionId === null ? "planned (no session)" : "planned";
  } catch (err) {
    outcome = `rejected: ${err.code ?? err.message}`;
  }
  const resolveMs = performance.now() - t0;

  const input = JSON.parse(new TextDecoder().decode(bytes));
  const last = input.body.messages.findLast((m) => m.role === "user").content;
  t0 = performance.now();
  await code.hashRequestContent(last);
  const hashMs = performance.now() - t0;

  process.stdout.write(
    JSON.stringify({
      shape: name,
      bodyBytes: bytes.length,
      outcome,
      resolveMs: Math.round(resolveMs),
      hashMs: Math.round(hashMs),
      peakMB: +((peak - base) / MiB).toFixed(1),
    }),
  );
}

function runChild(name) {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ["--expose-gc", here, "--child", name], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    proc.stdout.on("data", (d) => (out += d));
    const timer = setTimeout(() => proc.kill("SIGKILL"), SHAPE_TIMEOUT_MS);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out));
      else resolve({ shape: name, error: code === null ? `did not finish in ${SHAPE_TIMEOUT_MS / 1000} s` : `exited with ${code}` });
    });
  });
}

/** Every shape, one process at a time; `failed` is set when one errs, times out or exceeds the target. */
export async function measureParseMemory() {
  const code = await loadCode();
  const rows = [];
  for (const name of Object.keys(shapes(code))) {
    const r = await runChild(name);
    r.failed = r.error !== undefined || r.peakMB > TARGET_PEAK_MB;
    rows.push(r);
    console.log(
      r.error
        ? `resolve body ${name}: FAILED, ${r.error}`
        : `resolve body ${name.padEnd(38)} ${(r.bodyBytes / MiB).toFixed(2)} MiB  ${r.outcome.padEnd(30)} resolve ${r.resolveMs} ms  hash ${r.hashMs} ms  peak ${r.peakMB} MB`,
    );
  }
  return { limits: code.RESOLVE_BODY_LIMIT, targetPeakMB: TARGET_PEAK_MB, shapes: rows };
}

if (process.argv[2] === "--child") await child(process.argv[3]);
else if (process.argv[1] === here) {
  const { shapes: rows } = await measureParseMemory();
  process.exit(rows.some((r) => r.failed) ? 1 : 0);
}
