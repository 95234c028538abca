/** Issue 3's contract from outside: admin auth, stats with truncation, order, totals and paging, clear-all. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ADMIN_TOKEN, API_TOKEN, call, eventually, sessionPath } from "./client.mjs";

/** IDs whose first 8 characters are unique and random, so truncated stats IDs identify them. */
const uniqueId = (n) => `${crypto.randomUUID().slice(0, 8)}-bb-registry-${n}`;

async function allStats(limit) {
  const sessions = [];
  let cursor;
  let first;
  do {
    const q = new URLSearchParams({ limit: String(limit), ...(cursor ? { cursor } : {}) });
    const res = await call("GET", `/v1/stats?${q}`, { token: ADMIN_TOKEN });
    assert.equal(res.status, 200);
    first ??= res.json;
    sessions.push(...res.json.sessions);
    cursor = res.json.nextCursor;
  } while (cursor);
  return { first, sessions };
}

describe("registry over HTTP", () => {
  it("admin routes: 401 without a token, 403 with the API token", async () => {
    for (const [method, path] of [
      ["GET", "/v1/stats"],
      ["DELETE", "/v1/sessions"],
    ]) {
      const none = await call(method, path, { token: null });
      assert.equal(none.status, 401);
      assert.equal(none.json.error.code, "unauthorized");
      const api = await call(method, path, { token: API_TOKEN });
      assert.equal(api.status, 403);
      assert.equal(api.json.error.code, "forbidden");
    }
  });

  it("stats: count, truncated IDs sorted, age in whole seconds, byModel and byTier, paging exactly once", async () => {
    // Files run one at a time: sessions earlier files left would expire (10 s idle) while this pages.
    assert.equal((await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN })).status, 200);
    const ids = Array.from({ length: 25 }, (_, i) => uniqueId(i));
    const puts = await Promise.all(
      ids.map((id, i) => call("PUT", sessionPath(id), { body: { model: i % 2 ? "kimi-k2.5" : "gemini-2.5-flash", tier: i % 2 ? "MEDIUM" : "SIMPLE" } })),
    );
    assert.deepEqual([...new Set(puts.map((r) => r.status))], [200]);
    // A page read after a session expired no longer lists it, so the count is compared with the
    // listing only over a walk during which the count did not move; paging must then list each row once.
    const { first, sessions } = await eventually(async () => {
      const all = await allStats(7);
      for (const id of ids)
        assert.ok(
          all.sessions.some((s) => s.id === id.slice(0, 8) + "..."),
          `${id} counted`,
        );
      const after = (await call("GET", "/v1/stats?limit=1", { token: ADMIN_TOKEN })).json.count;
      assert.equal(after, all.first.count, "no session came or went during the walk");
      assert.equal(all.sessions.length, all.first.count);
      return all;
    });
    assert.ok(first.count >= 25);
    const shown = sessions.map((s) => s.id);
    assert.deepEqual(shown, [...shown].sort());
    for (const id of ids) {
      const mine = sessions.filter((s) => s.id === id.slice(0, 8) + "...");
      assert.equal(mine.length, 1, `${id} listed exactly once`);
      assert.ok(Number.isInteger(mine[0].age) && mine[0].age >= 0 && mine[0].age < 120);
    }
    assert.ok(first.byModel["kimi-k2.5"] >= 12 && first.byModel["gemini-2.5-flash"] >= 13);
    assert.ok(first.byTier.MEDIUM >= 12 && first.byTier.SIMPLE >= 13);
    for (const s of sessions) assert.ok(!ids.includes(s.id), "`id` is truncated");
  });

  it("a model change shows in stats; clear removes the row", async () => {
    const id = uniqueId("model");
    await call("PUT", sessionPath(id), { body: { model: "gemini-2.5-flash", tier: "SIMPLE" } });
    await call("POST", sessionPath(id, "/escalate"));
    const shown = async () => (await allStats(10000)).sessions.find((s) => s.id === id.slice(0, 8) + "...");
    await eventually(async () => assert.equal((await shown())?.model, "kimi-k2.5"));
    await call("DELETE", sessionPath(id));
    await eventually(async () => assert.equal(await shown(), undefined));
  });

  it("rejects bad paging parameters with 400", async () => {
    for (const [q, code] of [
      ["limit=0", "invalid_request"],
      ["limit=10001", "invalid_request"],
      ["cursor=forged", "invalid_cursor"],
    ]) {
      const res = await call("GET", `/v1/stats?${q}`, { token: ADMIN_TOKEN });
      assert.equal(res.status, 400, q);
      assert.equal(res.json.error.code, code, q);
    }
  });

  it("clear-all removes every session and answers {cleared}", async () => {
    // Files run one at a time: after this first clear, only the ten below exist.
    assert.equal((await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN })).status, 200);
    const ids = Array.from({ length: 10 }, (_, i) => uniqueId(`clear-${i}`));
    await Promise.all(ids.map((id) => call("PUT", sessionPath(id), { body: { model: "m", tier: "SIMPLE" } })));
    // Counted once their rows have landed; the clear counts what the registry holds.
    await eventually(async () => assert.equal((await call("GET", "/v1/stats", { token: ADMIN_TOKEN })).json.count, 10));
    const res = await call("DELETE", "/v1/sessions", { token: ADMIN_TOKEN });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { cleared: 10 });
    assert.equal((await call("GET", "/v1/stats", { token: ADMIN_TOKEN })).json.count, 0);
    for (const id of ids) assert.equal((await call("GET", sessionPath(id))).status, 404);
  });
});
