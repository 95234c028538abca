/**
 * The HTTP load the benchmarks drive with autocannon, shared by bench/run.mjs
 * (every scenario) and bench/compare.mjs (the hot path against another revision).
 */
import autocannon from "autocannon";

export const CONNECTIONS = 10;
export const HOT_SESSIONS = 1000;
/** A pause after creating sessions, before measuring: their registry deliveries land after the answers. */
const SETTLE_MS = 2000;
export const API = { authorization: "Bearer bench-token", "content-type": "application/json" };
export const ADMIN = { authorization: "Bearer bench-admin-token" };

/** A realistic ~2 KB OpenAI chat body; `turn` varies the last message as a live conversation does. */
function openaiBody(turn) {
  const filler = "The function reads the config, validates each field and returns a typed object. ".repeat(20);
  return {
    model: "auto",
    messages: [
      { role: "system", content: "You are a senior engineer. Answer precisely and cite file names." },
      { role: "user", content: `Review src/config.ts. ${filler}` },
      { role: "assistant", content: "It validates vars but misses TIER_MODELS edge cases." },
      { role: "user", content: `Turn ${turn}: propose a fix for the TIER_MODELS parsing.` },
    ],
    temperature: 0.2,
    stream: false,
  };
}

/** A resolve of `turn` on `sessionId`; `money` is its cost fields, by default the cost known up front (no reservation). */
export function resolveInput(sessionId, turn, money = { costMicros: 150 }) {
  return JSON.stringify({ sessionId, body: openaiBody(turn), routed: { model: "kimi-k2.5", tier: "MEDIUM" }, ...money });
}

/** The worst case resolve-reserve-settle reserves, and the actual cost it settles at. */
const RESERVE_MICROS = 300;
const SETTLE_MICROS = 150;

/** Runs scenarios of `durationS` seconds each, after `warmupS` seconds of the same load. */
export function driver({ durationS, warmupS }) {
  function run(baseUrl, opts) {
    const base = { url: baseUrl, connections: CONNECTIONS, ...(opts.amount === undefined ? { duration: durationS } : {}) };
    return new Promise((resolve, reject) => {
      const instance = autocannon({ ...base, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
      autocannon.track(instance, { renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false });
    });
  }

  function summarize(name, r) {
    return {
      scenario: name,
      requestsPerSec: Math.round(r.requests.average),
      p50Ms: r.latency.p50,
      p99Ms: r.latency.p99,
      errors: r.errors + r.timeouts + r.non2xx,
      requests: r.requests.total,
    };
  }

  async function scenario(baseUrl, name, opts) {
    if (warmupS > 0) await run(baseUrl, { ...opts, duration: warmupS });
    const s = summarize(name, await run(baseUrl, opts));
    console.log(`${name.padEnd(17)} ${String(s.requestsPerSec).padStart(7)} req/s  p50 ${s.p50Ms} ms  p99 ${s.p99Ms} ms  errors ${s.errors}`);
    return s;
  }

  /** Creates sessions with exactly `n` PUTs, several in flight; returns how many failed. */
  async function createSessions(baseUrl, prefix, n) {
    let i = 0;
    const r = await run(baseUrl, {
      amount: n,
      requests: [
        {
          method: "PUT",
          headers: API,
          setupRequest: (req) => ({ ...req, path: `/v1/sessions/${prefix}-${i++}`, body: JSON.stringify({ model: "kimi-k2.5", tier: "MEDIUM" }) }),
        },
      ],
    });
    return r.errors + r.timeouts + r.non2xx;
  }

  /**
   * The floors (a Worker request to a warm Durable Object that does nothing, and
   * one that does one kv.put) and resolve on HOT_SESSIONS existing sessions, whose
   * ratios to the floors are the hot path's figures. A revision whose bench Worker
   * predates the write floor is measured with `withWriteFloor: false`.
   */
  async function hotPath(baseUrl, { withWriteFloor = true } = {}) {
    let w = 0;
    await run(baseUrl, { amount: HOT_SESSIONS, requests: [{ method: "GET", setupRequest: (req) => ({ ...req, path: `/bench/floor-object?k=${w++}` }) }] });
    let k = 0;
    const floor = await scenario(baseUrl, "floor-object", {
      requests: [{ method: "GET", setupRequest: (req) => ({ ...req, path: `/bench/floor-object?k=${k++ % HOT_SESSIONS}` }) }],
    });
    let kw = 0;
    const floorWrite = withWriteFloor
      ? await scenario(baseUrl, "floor-object-write", {
          requests: [{ method: "GET", setupRequest: (req) => ({ ...req, path: `/bench/floor-object-write?k=${kw++ % HOT_SESSIONS}` }) }],
        })
      : undefined;
    const setupErrors = await createSessions(baseUrl, "hot", HOT_SESSIONS);
    if (setupErrors) throw new Error(`creating hot sessions: ${setupErrors} errors`);
    // A creation's registry delivery follows its answer: let those land outside the measured window.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    let turn = 0;
    const resolveHot = await scenario(baseUrl, "resolve-hot", {
      requests: [
        { method: "POST", path: "/v1/resolve", headers: API, setupRequest: (req) => ({ ...req, body: resolveInput(`hot-${turn % HOT_SESSIONS}`, turn++) }) },
      ],
    });
    return { floor, floorWrite, resolveHot };
  }

  /**
   * resolve-reserve-settle on the HOT_SESSIONS sessions hotPath created: each
   * iteration is a resolve that reserves, then, on the same connection once it
   * has answered, the settle of its reservation, as a gateway does around one
   * LLM call. Reported per pair: pairs per second in `requestsPerSec`, and p50
   * and p99 of the time from building the resolve to the settle's answer. A
   * resolve answered without a reservationId counts as an error.
   */
  async function reserveSettle(baseUrl, name = "resolve-reserve-settle") {
    let turn = 0;
    let pairMs = [];
    let missing = 0;
    const requests = [
      {
        method: "POST",
        path: "/v1/resolve",
        headers: API,
        setupRequest: (req, context) => {
          context.sessionId = `hot-${turn % HOT_SESSIONS}`;
          context.started = performance.now();
          return { ...req, body: resolveInput(context.sessionId, turn++, { reserveMicros: RESERVE_MICROS }) };
        },
        onResponse: (status, body, context) => {
          if (status !== 200) return;
          context.reservationId = JSON.parse(body).reservationId;
          if (typeof context.reservationId !== "string") missing++;
        },
      },
      {
        method: "POST",
        headers: API,
        // No reservation to settle: autocannon skips this request and starts the next pair.
        setupRequest: (req, context) =>
          typeof context.reservationId === "string" && {
            ...req,
            path: `/v1/sessions/${context.sessionId}/settle`,
            body: JSON.stringify({ reservationId: context.reservationId, costMicros: SETTLE_MICROS }),
          },
        onResponse: (status, _body, context) => {
          if (status === 200) pairMs.push(performance.now() - context.started);
        },
      },
    ];
    if (warmupS > 0) await run(baseUrl, { requests, duration: warmupS });
    pairMs = [];
    missing = 0;
    const r = await run(baseUrl, { requests });
    pairMs.sort((a, b) => a - b);
    const at = (q) => (pairMs.length ? Math.round(pairMs[Math.min(pairMs.length - 1, Math.floor(q * pairMs.length))] * 100) / 100 : null);
    const s = {
      scenario: name,
      requestsPerSec: Math.round(pairMs.length / r.duration),
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      errors: r.errors + r.timeouts + r.non2xx + missing,
      requests: r.requests.total,
      pairs: pairMs.length,
    };
    console.log(`${name.padEnd(17)} ${String(s.requestsPerSec).padStart(7)} pairs/s  p50 ${s.p50Ms} ms  p99 ${s.p99Ms} ms  errors ${s.errors}`);
    return s;
  }

  /**
   * Creation: resolve where every request opens a new session, and `n` sessions
   * created with PUTs, timed, as sessions per second.
   */
  async function creation(baseUrl, n, prefix = "created") {
    let fresh = 0;
    const newSession = [
      { method: "POST", path: "/v1/resolve", headers: API, setupRequest: (req) => ({ ...req, body: resolveInput(`${prefix}-new-${fresh++}`, 0) }) },
    ];
    const resolveNew = await scenario(baseUrl, "resolve-new", { requests: newSession });
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    // One request at a time: a creation's latency without the queueing of a saturated machine.
    const resolveNewAlone = await scenario(baseUrl, "resolve-new (1 conn)", { connections: 1, requests: newSession });
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const started = performance.now();
    const errors = await createSessions(baseUrl, prefix, n);
    const ms = performance.now() - started;
    console.log(`create ${n} sessions  ${Math.round((n / ms) * 1000)} sessions/s  errors ${errors}`);
    return { resolveNew, resolveNewAlone, create: { sessions: n, ms, perSec: (n / ms) * 1000, errors } };
  }

  return { run, scenario, createSessions, hotPath, reserveSettle, creation };
}
