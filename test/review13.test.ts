/**
 * Adversarial review of the registry as a converging index (issue 13): histories
 * that break one of the "What must hold" bullets. Oracles come from the
 * issue: once every object is reachable and CONVERGENCE_BOUND_MS has passed,
 * what the registry counts equals what the public API finds; a late answer
 * never wins over newer state nor brings back a removed session.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { shardOf } from "../src/session/stats";
import { SessionObject as ProductionSessionObject } from "../src/objects/session-object";
import { freshId } from "./support/back-ends";
import { converge, counted, found, registryCaughtUp } from "./support/converge";
import { asPreviousVersion, storedState } from "./support/objects";
import { clearFault, holdDeliveries, SessionObject as TestSessionObject, testClock } from "./support/worker";
import { ADMIN_TOKEN, call } from "./support/http";

const svc = exports.SessionService;
const MINUTE = 60_000;
const SHARDS = 16; // REGISTRY_SHARDS in wrangler.toml
const REGISTRY_TIMEOUT_MS = 1_000; // vitest.config.ts

afterEach(() => {
  clearFault.mode = "none";
  vi.restoreAllMocks();
});

function quiet() {
  vi.spyOn(console, "error").mockImplementation(() => undefined);
}

/** Two fresh IDs that hash to the same registry shard. */
function sameShardIds(prefix: string): [string, string, number] {
  const a = freshId(`${prefix}-a`);
  for (;;) {
    const b = freshId(`${prefix}-b`);
    if (shardOf(a, SHARDS) === shardOf(b, SHARDS)) return [a, b, shardOf(a, SHARDS)];
  }
}

const shardStub = (k: number) => env.REGISTRY.get(env.REGISTRY.idFromName(`shard-${k}`));

/**
 * Makes the session `slowId` answer its shard's reconciliation question
 * (describe) slowly: longer than REGISTRY_TIMEOUT_MS, as an object that is far
 * away, starting up or overloaded does. Every other session answers at once.
 * Resolves `entered` once the slow question has arrived.
 */
function slowDescribeOf(slowId: string): { entered: Promise<void> } {
  const proto = ProductionSessionObject.prototype as unknown as { describe: (this: { ctx: DurableObjectState }) => unknown };
  const original = proto.describe;
  let enter!: () => void;
  const entered = new Promise<void>((r) => (enter = r));
  const target = env.SESSIONS.idFromName(slowId);
  vi.spyOn(proto, "describe").mockImplementation(function (this: { ctx: DurableObjectState }) {
    const answer = original.call(this);
    if (!this.ctx.id.equals(target)) return answer;
    enter();
    return new Promise((r) => setTimeout(() => r(answer), REGISTRY_TIMEOUT_MS + 500));
  });
  return { entered };
}

/** Waits until the session's outbox is empty: its shard has taken what it sent. */
async function delivered(id: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await storedState(id)).outbox === undefined) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the outbox of ${id} never emptied`);
}

describe("reconciliation's authoritative take races newer deliveries", () => {
  /**
   * Two sessions of one shard, both in use (their deadlines move on, their rows'
   * hints do not: a touch within a minute of the last report tells nobody), are
   * due for a check in the same pass. `slow` answers slowly, so the pass takes the
   * other's answer only after both settle. Answers once the shard waits on `slow`.
   */
  async function checkUnderWay(prefix: string) {
    const [other, slow, k] = sameShardIds(prefix);
    await svc.setSession(other, "gemini-2.5-flash", "SIMPLE");
    await svc.setSession(slow, "gemini-2.5-flash", "SIMPLE");
    await registryCaughtUp();
    testClock.advance(MINUTE - 1_000);
    await svc.touchSession(other);
    await svc.touchSession(slow);
    // Both rows are now due for their check, a minute before the deadline they hold (creation + 30 minutes).
    testClock.advance(28 * MINUTE + 2_000);
    const { entered } = slowDescribeOf(slow);
    const pass = runDurableObjectAlarm(shardStub(k));
    await entered; // the shard has asked both sessions and waits for the slow one
    return { other, slow, pass };
  }

  /** Meanwhile the other session is cleared and its remove lands; the old answer must not bring it back. */
  it("a clear whose remove lands while the shard waits on a check does not bring the session back", async () => {
    quiet();
    const { other: cleared, slow, pass } = await checkUnderWay("resurrect");
    await svc.clearSession(cleared);
    await delivered(cleared); // the remove has landed: the row is gone
    await pass;
    vi.restoreAllMocks();
    quiet();
    expect(await svc.getSession(cleared)).toBeNull();
    const rightAfter = await counted([cleared]);
    await converge();
    expect(await found([cleared])).toEqual(new Map());
    expect({ rightAfter, afterTheBound: await counted([cleared, slow]) }).toEqual({ rightAfter: new Map(), afterTheBound: await found([cleared, slow]) });
  });

  it("a model change that lands while the shard waits on a check is not overwritten by the older answer", async () => {
    quiet();
    const { other: changed, slow, pass } = await checkUnderWay("older-wins");
    await svc.escalateSession(changed); // -> MEDIUM, delivered while the pass waits
    await delivered(changed);
    await pass;
    vi.restoreAllMocks();
    quiet();
    const expected = await found([changed]);
    expect(expected.get(changed)).toBe("kimi-k2.5/MEDIUM");
    const rightAfter = await counted([changed]);
    await converge();
    expect({ rightAfter, afterTheBound: await counted([changed, slow]) }).toEqual({ rightAfter: expected, afterTheBound: await found([changed, slow]) });
  });
});

describe("clear-all's authoritative take races newer deliveries", () => {
  /**
   * A clear pass asks a session whose new incarnation was created after the
   * clear began: it survives and answers with its row. The answer is slow to
   * come back (an RPC that lands late); meanwhile that incarnation is cleared
   * and its remove lands. The pass then takes the old answer as the truth and
   * brings the removed session back, counted until its old deadline hint.
   */
  it("a session cleared while its answer to a clear pass is on its way is not brought back by it", async () => {
    quiet();
    const id = freshId("clear-resurrect");
    const k = shardOf(id, SHARDS);
    await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    await registryCaughtUp();
    testClock.advance(1);
    // A clear-all whose first pass reaches no session: the row waits for the next pass.
    clearFault.mode = "throw";
    expect((await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN })).status).toBe(202);
    clearFault.mode = "none";
    testClock.advance(1);
    // The session is cleared and created again after the clear began; the shard hears of it only later.
    const held = holdDeliveries();
    await svc.clearSession(id);
    await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    // The next pass: the session's answer (it survives: here is its row) is slow to come back.
    let release!: () => void;
    let enter!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const entered = new Promise<void>((r) => (enter = r));
    const original = TestSessionObject.prototype.clearBefore;
    vi.spyOn(TestSessionObject.prototype, "clearBefore").mockImplementation(async function (this: TestSessionObject, startedAt: number, inc: string) {
      const answer = await original.call(this, startedAt, inc);
      enter();
      await gate;
      return answer;
    });
    testClock.advance(15 * 60_000); // past the pass's backoff (the session's deadline is 30 min away)
    const pass = runDurableObjectAlarm(shardStub(k));
    await entered;
    held.release();
    await delivered(id); // the end of the first incarnation and the new one's row have landed
    await svc.clearSession(id);
    await delivered(id); // and the new one's end
    release();
    await pass;
    vi.restoreAllMocks();
    quiet();
    expect(await found([id])).toEqual(new Map());
    const rightAfter = await counted([id]);
    await converge();
    expect({ rightAfter, afterTheBound: await counted([id]) }).toEqual({ rightAfter: new Map(), afterTheBound: new Map() });
  });
});

describe("a shard and sessions written before rows carried incarnations", () => {
  /**
   * The issue's own window: before this design a model change wrote the registry
   * first, and a local write that then failed left the new model in the row. A
   * shard upgraded with such a row reads it as incarnation "" version 0, which is
   * also what the legacy session says when asked: the answer is taken as a
   * "refresh", which moves the deadline hint only, so the wrong model stays.
   */
  it("a legacy row whose model differs from its legacy session converges to the session's model", async () => {
    const id = freshId("legacy");
    const k = shardOf(id, SHARDS);
    await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    await registryCaughtUp();
    // The session as the previous release stored it: its key and entry, nothing else.
    await asPreviousVersion(id);
    // The shard as the previous release left it: rows ordered by seq, this one with the model the failed change wrote.
    await runInDurableObject(shardStub(k), async (_obj, state) => {
      const sql = state.storage.sql;
      const rows = sql.exec<{ id: string; model: string; tier: string; created_at: number }>("SELECT id, model, tier, created_at FROM sessions").toArray();
      sql.exec("DROP TABLE sessions");
      sql.exec("DELETE FROM meta");
      sql.exec("DELETE FROM retired");
      sql.exec(
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, model TEXT NOT NULL, tier TEXT NOT NULL, created_at INTEGER NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID",
      );
      rows.forEach((r, i) =>
        sql.exec(
          "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
          r.id,
          r.id === id ? "kimi-k2.5" : r.model,
          r.id === id ? "MEDIUM" : r.tier,
          r.created_at,
          i + 1,
        ),
      );
      sql.exec("INSERT INTO meta (key, value) VALUES ('seq', ?)", rows.length);
      await state.storage.deleteAlarm();
    });
    await runInDurableObject(shardStub(k), (_obj, state) => state.abort("deploy")).catch(() => undefined);
    expect(await found([id])).toEqual(new Map([[id, "gemini-2.5-flash/SIMPLE"]]));
    // The upgrade checks every row at once: its constructor sets the shard's alarm for now (before the
    // test Worker tracks alarms). Run it; the platform may already have, if the test clock is behind the real one.
    const checked = () =>
      runInDurableObject(
        shardStub(k),
        (_o, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sessions WHERE check_at = 0").one().n === 0,
      );
    await shardStub(k).page(null, 1, false);
    await runDurableObjectAlarm(shardStub(k));
    for (let i = 0; i < 100 && !(await checked()); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await checked()).toBe(true);
    await converge();
    expect(await counted([id])).toEqual(await found([id]));
  });
});

describe("a session written before rows carried incarnations, whose row the previous release lost", () => {
  /**
   * The window "clearing one live session removes the row first": a
   * crash, or a remove that timed out and landed, left a live session with no
   * row. Such a session, stored by the previous release (no incarnation), is
   * never delivered by this one while it changes neither model nor tier, and
   * reconciliation only checks rows that exist: it stays invisible to stats and
   * clear-all for as long as it is in use.
   */
  it("a legacy session in use with no row is counted within the bound", async () => {
    const id = freshId("legacy-rowless");
    await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    await registryCaughtUp();
    await asPreviousVersion(id);
    await runInDurableObject(shardStub(shardOf(id, SHARDS)), (_obj, state) => {
      state.storage.sql.exec("DELETE FROM sessions WHERE id = ?", id);
    });
    // In use all along: a request every ten minutes.
    for (let i = 0; i < 3; i++) {
      await converge(10 * MINUTE);
      await svc.touchSession(id);
    }
    await converge();
    expect(await found([id])).toEqual(new Map([[id, "gemini-2.5-flash/SIMPLE"]]));
    expect(await counted([id])).toEqual(await found([id]));
  });
});
