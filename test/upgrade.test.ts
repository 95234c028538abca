/**
 * Storage written before rows carried incarnations: a shard's old table (with `seq`
 * and an unfinished clear-all target) and a session's old record (no incarnation,
 * no version) keep working after a deploy. Nothing is lost, and the registry
 * converges to the sessions.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { freshId } from "./support/back-ends";
import { registryCaughtUp } from "./support/converge";
import { asPreviousVersion, rowOf } from "./support/objects";

const svc = exports.SessionService;

describe("a shard written by the previous version", () => {
  it("keeps its rows, checks them against their sessions, and drops the ones without a session", async () => {
    const live = freshId("legacy-live");
    const gone = freshId("legacy-gone");
    const doomed = freshId("legacy-doomed");
    await svc.setSession(live, "kimi-k2.5", "MEDIUM");
    await svc.setSession(doomed, "m", "SIMPLE");
    await registryCaughtUp();
    for (const id of [live, doomed]) await asPreviousVersion(id);
    const shard = env.REGISTRY.get(env.REGISTRY.idFromName(`legacy-${crypto.randomUUID()}`));
    await runInDurableObject(shard, (_obj, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE sessions");
      sql.exec("DROP TABLE retired");
      sql.exec("DELETE FROM meta");
      sql.exec(
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, model TEXT NOT NULL, tier TEXT NOT NULL, created_at INTEGER NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID",
      );
      const now = Date.now();
      sql.exec(
        "INSERT INTO sessions VALUES (?, 'kimi-k2.5', 'MEDIUM', ?, 1), (?, 'm', 'SIMPLE', ?, 2), (?, 'm', 'SIMPLE', ?, 3)",
        doomed,
        now,
        live,
        now,
        gone,
        now,
      );
      // A clear-all had begun after row 1 and not finished.
      sql.exec("INSERT INTO meta (key, value) VALUES ('seq', 3), ('clear_target', 1)");
    });
    await evictDurableObject(shard);
    // Upgraded on first use: the rows are kept, not counted until checked, and the alarm checks them.
    expect((await shard.page(null, 10, true)).count).toBe(0);
    // The upgrade set the shard's alarm for now; the platform may fire it by itself before this does.
    await runDurableObjectAlarm(shard);
    const rows = async () => (await shard.page(null, 10, true)).rows.map((r) => `${r.id === live ? "live" : r.id}:${r.model}/${r.tier}`);
    for (let i = 0; i < 100 && (await rows()).length !== 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await rows()).toEqual(["live:kimi-k2.5/MEDIUM"]);
    // The unfinished clear-all went on with the row it had still to clear.
    expect(await svc.getSession(doomed)).toBeNull();
    expect(await svc.getSession(live)).not.toBeNull();
  });
});

describe("a session written by the previous version", () => {
  it("is read, changed and reported to its shard like any other", async () => {
    const id = freshId("legacy-session");
    const entry = await svc.setSession(id, "gemini-2.5-flash", "SIMPLE");
    await registryCaughtUp();
    await asPreviousVersion(id);
    expect(await svc.getSession(id)).toEqual(entry);
    expect((await svc.escalateSession(id))?.model).toBe("kimi-k2.5");
    await registryCaughtUp();
    expect(await rowOf(id)).toMatchObject({ model: "kimi-k2.5", tier: "MEDIUM" });
  });
});
