/**
 * The test servers' storage: startDevServer gives each `wrangler dev` its own
 * temporary state, so a test run neither reads nor leaves sessions in the
 * repository's .wrangler/state, which `npm run dev` uses. Starts its own
 * server; BASE_URL is not used.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startDevServer } from "../scripts/dev-server.mjs";
import { API_TOKEN, sessionPath } from "./client.mjs";

const REPO_STATE = fileURLToPath(new URL("../.wrangler/state", import.meta.url));

/**
 * Every file under `dir` with its size and mtime; empty when `dir` does not exist.
 * A file that vanishes while listed (a server shutting down) is listed as gone.
 */
function listing(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .flatMap((rel) => {
      const stat = statSync(path.join(dir, rel), { throwIfNoEntry: false });
      if (stat === undefined) return [`${rel} gone`];
      return stat.isFile() ? [`${rel} ${stat.size} ${stat.mtimeMs}`] : [];
    })
    .sort();
}

describe("dev server storage", () => {
  it("keeps a test server's sessions in a temporary directory, removed at stop", { timeout: 180_000 }, async () => {
    const repoBefore = listing(REPO_STATE);
    const server = await startDevServer();
    let duringRun;
    try {
      const id = `persist-${crypto.randomUUID()}`;
      const res = await fetch(`${server.baseUrl}${sessionPath(id)}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "m", tier: "SIMPLE" }),
      });
      assert.equal(res.status, 200, await res.text());
      duringRun = listing(server.stateDir ?? "");
    } finally {
      await server.stop();
    }
    assert.deepEqual(listing(REPO_STATE), repoBefore, "the repository's .wrangler/state changed");
    assert.equal(path.dirname(server.stateDir), os.tmpdir());
    assert.ok(duringRun.length > 0, "the session was not stored in the server's temporary directory");
    assert.equal(existsSync(server.stateDir), false, `${server.stateDir} was not removed`);
  });
});
