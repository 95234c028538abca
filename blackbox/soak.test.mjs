/**
 * A black-box soak of the registry's promise: creations, model changes, clears,
 * clear-alls and expiries (SESSION_TIMEOUT_MS is 10 s here), interleaved and
 * concurrent, then GET /v1/stats must count exactly the sessions that
 * GET /v1/sessions/:id finds, with the same models, within the convergence bound.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { ADMIN_TOKEN, call, eventually, sessionPath, sleep } from "./client.mjs";

const SESSIONS = 40;
const ROUNDS = 8;
const PARALLEL = 8;
/** The blackbox server's SESSION_TIMEOUT_MS. */
const TIMEOUT_MS = 10_000;
/** Nothing fails here, so rows land within milliseconds; this leaves room for a slow machine. */
const WITHIN_MS = 20_000;

/** mulberry32: a seeded generator, so a failing run can be replayed with SOAK_SEED. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seed = Number(process.env.SOAK_SEED ?? Date.now() % 1e9);
const rnd = random(seed);
const pick = (list) => list[Math.floor(rnd() * list.length)];
const ids = Array.from({ length: SESSIONS }, (_, i) => `${crypto.randomUUID().slice(0, 8)}-soak-${i}`);
const shownId = (id) => id.slice(0, 8) + "...";
const tiers = ["SIMPLE", "MEDIUM", "COMPLEX", "REASONING"];

async function randomOp() {
  const id = pick(ids);
  const r = rnd();
  if (r < 0.35) {
    const tier = pick(tiers);
    const body = {
      sessionId: id,
      body: { model: "auto", messages: [{ role: "user", content: pick(["hi", "loop", "go on"]) }] },
      routed: { model: `m-${tier}`, tier },
    };
    return call("POST", "/v1/resolve", { body });
  }
  if (r < 0.55) return call("PUT", sessionPath(id), { body: { model: pick(["gemini-2.5-flash", "kimi-k2.5", "custom"]), tier: pick(tiers) } });
  if (r < 0.7) return call("POST", sessionPath(id, "/escalate"));
  if (r < 0.85) return call("POST", sessionPath(id, "/touch"));
  if (r < 0.98) return call("DELETE", sessionPath(id));
  return call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
}

/** What stats count for the soak's sessions: shown ID → model. */
async function counted() {
  const out = new Map();
  const mine = new Set(ids.map(shownId));
  let cursor;
  do {
    const q = new URLSearchParams({ limit: "1000", ...(cursor ? { cursor } : {}) });
    const res = await call("GET", `/v1/stats?${q}`, { token: ADMIN_TOKEN });
    assert.equal(res.status, 200);
    for (const s of res.json.sessions) if (mine.has(s.id)) out.set(s.id, s.model);
    cursor = res.json.nextCursor;
  } while (cursor);
  return out;
}

/** What the public API finds: shown ID → model. */
async function found() {
  const out = new Map();
  for (const id of ids) {
    const res = await call("GET", sessionPath(id));
    if (res.status === 200) out.set(shownId(id), res.json.model);
    else assert.equal(res.status, 404);
  }
  return out;
}

it(`stats converge to the sessions after a mixed, concurrent workload (SOAK_SEED=${seed})`, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const answers = await Promise.all(Array.from({ length: PARALLEL * 5 }, randomOp));
    for (const res of answers) assert.ok(res.status < 500, `no 5xx: ${res.status} ${JSON.stringify(res.json)}`);
    // Every fourth round, a pause long enough for idle sessions to expire.
    if (round % 4 === 1) await sleep(TIMEOUT_MS + 500);
  }
  const live = await found();
  assert.ok(live.size > 0, "some sessions are alive at the end, so the comparison means something");
  // Sessions may expire while the two sides are read, so both are read again until they agree.
  await eventually(async () => {
    const [stats, api] = [await counted(), await found()];
    assert.deepEqual(Object.fromEntries([...stats].sort()), Object.fromEntries([...api].sort()));
  }, WITHIN_MS);
});
