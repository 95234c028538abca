/**
 * Fuzzing every HTTP route with random and malformed methods, paths, headers,
 * bodies, encodings, huge numbers, deep JSON and odd session IDs.
 * Invariants: no 5xx; every error in the documented shape; a rejected request
 * changes no state (checked with a read before and after).
 * Then long inputs for request hashing (whitespace runs up to 1 MB, long
 * multi-byte text, lone surrogates), through the pure function and through
 * POST /v1/resolve, against an oracle written from Go's rules.
 *
 * FUZZ_RUNS=50000 npm run test:unit -- fuzz   runs more.
 */
import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RESOLVE_BODY_LIMIT } from "../src/http/body";
import { hashRequestContent } from "../src/session/hashing";
import { ADMIN_TOKEN, API_TOKEN, call } from "./support/http";

const runs = Number(env.FUZZ_RUNS);
const svc = exports.SessionService;
/** A few real IDs per run, so some requests hit live sessions and state checks mean something. */
const pool = Array.from({ length: 4 }, (_, i) => `fuzz-${i}-${crypto.randomUUID().slice(0, 8)}`);

const oddId = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...pool) },
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", "%", "%E0%A4%A", "%00", "%2F", "..", ".", "a%20b", "x".repeat(300), "\u{1F600}", "%FF%FE", "id;drop", "?x=1"),
);

/** The session ID rule of docs/http-api.md "Session IDs": 1–256 characters, not "." or "..", no control, lone-surrogate or format (Cf) characters. */
function validId(id: string): boolean {
  if (id === "." || id === "..") return false;
  const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
  return id.length > 0 && id.length <= 256 && !/[\u0000-\u001f\u007f-\u009f]/.test(id) && !loneSurrogate.test(id) && !/\p{Cf}/u.test(id);
}

function encodeSegment(raw: string, mode: number): string {
  if (mode === 0) return encodeURIComponent(raw);
  if (mode === 1) return raw.replace(/[\s#?/]/g, "_");
  return raw
    .split("")
    .map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0").slice(-2))
    .join("");
}

const path = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom("/v1/sessions/", "/v1/sessions/", "/v1/sessions/"),
        oddId,
        fc.constantFrom("", "/touch", "/hashes", "/escalate", "/cost", "/unknown", "/", "/touch/x"),
        fc.integer({ min: 0, max: 2 }),
      )
      .map(([prefix, id, suffix, mode]) => ({ path: prefix + encodeSegment(id, mode) + suffix, id })),
  },
  fc
    .constantFrom(
      "/health",
      "/v1/resolve",
      "/v1/hash",
      "/v1/session-id",
      "/v1/stats",
      "/v1/sessions",
      "/",
      "/v1",
      "/v1/",
      "/v2/resolve",
      "//v1//hash",
      "/v1/stats?limit=0",
      "/v1/stats?limit=99999999999",
      "/v1/stats?cursor=%ZZ",
      "/v1/stats?limit=5&limit=6",
    )
    .map((p) => ({ path: p, id: undefined as string | undefined })),
);

const hugeNumber = fc.constantFrom(1e308, -1e308, 2 ** 53, 2 ** 53 + 2, -0, 0.1, 1e-320, Number.MAX_SAFE_INTEGER, 123456789012345678901234567890);
const anyValue: fc.Arbitrary<unknown> = fc.oneof(fc.jsonValue({ maxDepth: 3 }), hugeNumber, fc.string({ maxLength: 20 }), fc.constant(null));
const messages = fc.array(
  fc.oneof(
    fc.record({
      role: fc.constantFrom("user", "assistant", "system", "tool", 5),
      content: fc.oneof(
        fc.string({ maxLength: 30 }),
        fc.array(fc.record({ type: fc.constantFrom("text", "image", "tool_use"), text: anyValue, name: anyValue }), { maxLength: 3 }),
        anyValue,
      ),
    }),
    anyValue,
  ),
  { maxLength: 4 },
);
const shapedBody = fc.oneof(
  fc.record(
    { model: anyValue, tier: fc.oneof(fc.constantFrom("", "SIMPLE", "MEDIUM", "COMPLEX", "REASONING", "simple"), anyValue), userExplicit: anyValue },
    { requiredKeys: [] },
  ),
  fc.record({ hash: anyValue }, { requiredKeys: [] }),
  fc.record({ micros: fc.oneof(fc.integer(), hugeNumber, anyValue) }, { requiredKeys: [] }),
  fc.record({ content: anyValue, toolNames: fc.oneof(fc.array(anyValue, { maxLength: 3 }), anyValue) }, { requiredKeys: [] }),
  fc.record({ firstUserMessage: anyValue }, { requiredKeys: [] }),
  fc.record(
    {
      sessionId: fc.oneof(fc.constantFrom(...pool), anyValue),
      headers: fc.oneof(fc.dictionary(fc.constantFrom("x-session-id", "X-Session-Id", "other"), fc.oneof(fc.constantFrom(...pool), anyValue)), anyValue),
      body: fc.oneof(
        fc.record({ model: fc.oneof(fc.constantFrom("auto", "eco", "premium", "my-model"), anyValue), messages, system: anyValue }, { requiredKeys: [] }),
        anyValue,
      ),
      routed: fc.oneof(fc.record({ model: anyValue, tier: fc.oneof(fc.constantFrom("SIMPLE", "COMPLEX", ""), anyValue) }, { requiredKeys: [] }), anyValue),
      costMicros: fc.oneof(fc.integer({ min: -5, max: 5000 }), hugeNumber, anyValue),
    },
    { requiredKeys: [] },
  ),
);
const deep = fc.integer({ min: 1, max: 3000 }).map((n) => "[".repeat(n) + "]".repeat(n));
const body = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 5, arbitrary: shapedBody.map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 50 }) },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom("{", "null", "[]", '"str"', "1e999", '{"model":"m","tier":"SIMPLE"', "\ufeff{}", '{"__proto__":{"x":1}}') },
);
const auth = fc.constantFrom<string | undefined>(
  undefined,
  ...Array<string>(8).fill(`Bearer ${API_TOKEN}`),
  `Bearer ${ADMIN_TOKEN}`,
  "Bearer wrong",
  "Bearer",
  `bearer ${API_TOKEN}`,
  `Basic ${API_TOKEN}`,
  `Bearer  ${API_TOKEN} x`,
);
const method = fc.constantFrom("GET", "GET", "POST", "POST", "PUT", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PROPFIND");
const contentType = fc.constantFrom<string | undefined>(undefined, "application/json", "text/plain", "application/json; charset=latin1", "multipart/form-data");

const request = fc.record({ method, target: path, auth, body, contentType });

async function snapshot(): Promise<unknown[]> {
  return Promise.all(pool.map((id) => svc.getSession(id)));
}

describe("fuzzing every route", () => {
  it(`${runs} random and malformed requests: no 5xx, errors in shape, no state change when rejected`, async () => {
    // Some pool sessions exist, so rejected writes to them have something to change.
    await svc.setSession(pool[0]!, "gemini-2.5-flash", "SIMPLE");
    await svc.setSession(pool[1]!, "mine", "", true);
    const statuses = new Map<number, number>();
    // State changes only on success, so the last snapshot stays valid until a request succeeds.
    let known = await snapshot();
    const accepted = new Set<string>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers = new Headers();
        if (r.auth !== undefined) headers.set("authorization", r.auth);
        if (r.contentType !== undefined) headers.set("content-type", r.contentType);
        const hasBody = r.body !== undefined && r.method !== "GET" && r.method !== "HEAD";
        const res = await exports.default.fetch(
          new Request(`http://fuzz.test${r.target.path}`, { method: r.method, headers, body: hasBody ? (r.body as BodyInit) : undefined }),
        );
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status, `${r.method} ${r.target.path}`).toBeLessThan(500);
        expect(res.headers.get("access-control-allow-origin")).toBeNull();
        const mutating = !["GET", "HEAD", "OPTIONS"].includes(r.method);
        if (res.status >= 400) {
          if (r.method !== "HEAD") {
            const parsed = JSON.parse(text);
            expect(Object.keys(parsed)).toEqual(["error"]);
            expect(typeof parsed.error.code).toBe("string");
            expect(typeof parsed.error.message).toBe("string");
          }
          if (mutating) {
            expect(await snapshot()).toEqual(known);
            // A rejected request on an ID outside the pool must not have created it either.
            const target = r.target.id;
            if (target && !pool.includes(target) && !accepted.has(target) && validId(target)) {
              expect(await svc.getSession(target)).toBeNull();
            }
          }
        } else if (mutating) {
          known = await snapshot();
          if (r.target.id !== undefined) accepted.add(r.target.id);
        }
      }),
      { numRuns: runs, verbose: 1 },
    );
    // The fuzzer must reach both sides: successes and each family of rejection.
    for (const status of [200, 400, 401, 404, 405]) expect(statuses.get(status) ?? 0, `status ${status}`).toBeGreaterThan(0);
    // 5,000 requests, each accepted write followed by a read of the pool, take 50-70 s on a 2-core machine beside other work.
  }, 180_000);
});

/**
 * Go's HashRequestContent, from its rules, one code point at a time: the input
 * is what Go decodes (a lone surrogate is U+FFFD); strings.TrimSpace trims
 * unicode.IsSpace, which is Unicode White_Space; RE2's \s is [\t\n\f\r ]; the
 * first 500 bytes; tool names sorted by bytes (sort.Strings).
 */
const encoder = new TextEncoder();
const WHITE_SPACE = /^\p{White_Space}$/u;
const RE2_SPACE = new Set(["\t", "\n", "\f", "\r", " "]);
function compareBytes(x: Uint8Array, y: Uint8Array): number {
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}
async function goHashRequestContent(content: string, toolNames: string[]): Promise<string> {
  const runes = Array.from(content, (ch) => (ch.length === 1 && ch >= "\ud800" && ch <= "\udfff" ? "\ufffd" : ch));
  let start = 0;
  let end = runes.length;
  while (start < end && WHITE_SPACE.test(runes[start]!)) start++;
  while (end > start && WHITE_SPACE.test(runes[end - 1]!)) end--;
  const out: string[] = [];
  let inRun = false;
  for (let i = start; i < end; i++) {
    const rune = runes[i]!;
    if (!RE2_SPACE.has(rune)) out.push(rune);
    else if (!inRun) out.push(" ");
    inRun = RE2_SPACE.has(rune);
  }
  const parts = [encoder.encode(out.join("")).subarray(0, 500)];
  if (toolNames.length > 0) {
    const names = toolNames.map((n) => encoder.encode(n)).sort(compareBytes);
    parts.push(encoder.encode("|tools:"));
    names.forEach((n, i) => parts.push(...(i > 0 ? [encoder.encode(","), n] : [n])));
  }
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  parts.reduce((offset, part) => (joined.set(part, offset), offset + part.length), 0);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
  return [...digest.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Characters around the trim and collapse rules: every Go space, look-alikes that are not, multi-byte and lone surrogates. */
const hashChar = fc.oneof(
  fc.constantFrom(
    " ",
    "\t",
    "\n",
    "\r\n",
    "\f",
    "\v",
    "\u0085",
    "\u00a0",
    "\u1680",
    "\u2000",
    "\u200a",
    "\u2028",
    "\u2029",
    "\u202f",
    "\u205f",
    "\u3000",
    "\ufeff",
    "\u200b",
    "\u180e",
    "a",
    "s",
    "é",
    "€",
    "漢",
    "\u{1F600}",
    "\uffff",
    "\ud800",
    "\udfff",
    " \v ",
  ),
  fc.string({ unit: "binary", minLength: 1, maxLength: 3 }),
);
/** Mostly short repeats, some around the 500-byte cut, a few up to 1 MB. */
const repeat = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 8 }) },
  { weight: 4, arbitrary: fc.integer({ min: 100, max: 700 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 1_000_000 }) },
);
const longContent = fc.array(fc.tuple(hashChar, repeat), { maxLength: 6 }).map((pieces) => pieces.map(([ch, n]) => ch.repeat(n)).join(""));
/**
 * The shape: text, a whitespace run of up to 1 MB that the trim must
 * not retry, long multi-byte text, more text. Each run is as long as fits in
 * RUN_BUDGET_BYTES once JSON has escaped it (\v takes 6 bytes), so every body
 * stays under the resolve body limit.
 */
const RUN_BUDGET_BYTES = 3_500_000;
const escapedBytes = (ch: string) => encoder.encode(JSON.stringify(ch)).length - 2;
const shortContent = fc
  .array(fc.tuple(hashChar, fc.integer({ min: 1, max: 700 })), { maxLength: 4 })
  .map((pieces) => pieces.map(([ch, n]) => ch.repeat(n)).join(""));
const innerRun = fc
  .tuple(
    shortContent,
    fc
      .constantFrom(" ", "\t", "\n", "\v", "\u00a0", "\u3000")
      .chain((ws) => fc.tuple(fc.constant(ws), fc.integer({ min: 1, max: Math.min(1_000_000, Math.floor(RUN_BUDGET_BYTES / escapedBytes(ws))) }))),
    fc.constantFrom("é", "漢", "\u{1F600}"),
    fc.integer({ min: 0, max: 100_000 }),
    shortContent,
  )
  .map(([before, [ws, n], wide, m, after]) => before + "a" + ws.repeat(n) + "b" + wide.repeat(m) + after);
const toolNames = fc.array(
  fc.oneof(fc.string({ unit: "binary", maxLength: 4 }), fc.constantFrom("read_file", "é", "\uffff", "\ufffe", "\u{1F600}", "\ud800", "")),
  { maxLength: 4 },
);
/** The long-input properties are slower per run, so they run a fraction of FUZZ_RUNS. */
const hashRuns = Math.max(50, Math.round(runs / 25));
const resolveRuns = Math.max(10, Math.round(runs / 250));

describe("fuzzing long inputs to request hashing", () => {
  it(`${hashRuns} inputs with runs up to 1 MB: hashRequestContent equals the oracle from Go's rules`, async () => {
    let long = 0;
    await fc.assert(
      fc.asyncProperty(longContent, toolNames, async (content, tools) => {
        if (content.length > 100_000) long++;
        expect(await hashRequestContent(content, tools)).toBe(await goHashRequestContent(content, tools));
      }),
      { numRuns: hashRuns },
    );
    // About one input in ten is long; none at all would mean the generator lost its long runs.
    expect(long).toBeGreaterThan(0);
  });

  it(`${resolveRuns} resolves with a last user message holding a whitespace run of up to 1 MB: answered, and the recorded hash equals the oracle`, async () => {
    await fc.assert(
      fc.asyncProperty(innerRun, toolNames, async (content, tools) => {
        const sessionId = `fuzz-long-${crypto.randomUUID()}`;
        const body = {
          model: "my-model",
          messages: [
            { role: "user", content: "start" },
            { role: "assistant", content: "", tool_calls: tools.map((name, i) => ({ id: `c${i}`, type: "function", function: { name, arguments: "{}" } })) },
            { role: "user", content },
          ],
        };
        const text = JSON.stringify({ sessionId, body });
        // The generator stays under the limit, so every request here must be answered in full.
        expect(encoder.encode(text).length).toBeLessThanOrEqual(RESOLVE_BODY_LIMIT.bytes);
        const res = await call("POST", "/v1/resolve", { rawBody: text, headers: { "content-type": "application/json" } });
        expect(res.status, JSON.stringify(res.json)).toBe(200);
        expect((await svc.getSession(sessionId))?.recentHashes).toEqual([await goHashRequestContent(content, tools)]);
      }),
      // Shrinking would resend megabyte bodies for minutes; the first counterexample is reported as found.
      { numRuns: resolveRuns, endOnFailure: true },
    );
  });
});
