/**
 * The live feed (issue 16): GET /v1/sessions/{id}/live upgrades to a
 * WebSocket that streams the journal's events after an optional `after`
 * cursor. Server clients show a token in the Authorization header; browsers
 * a single-use ticket that lasts a minute. Expected values come from that contract.
 */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { freshId } from "./support/back-ends";
import { ADMIN_TOKEN, API_TOKEN, call, sessionPath } from "./support/http";
import { open, watch } from "./support/live";
import { stubOf } from "./support/objects";
import { testClock } from "./support/worker";

const SIMPLE = { model: "gemini-2.5-flash", tier: "SIMPLE" };
const MEDIUM = { model: "kimi-k2.5", tier: "MEDIUM" };
const COMPLEX = { model: "gemini-3.1-pro", tier: "COMPLEX" };

const resolve = (id: string, content: string, routed = SIMPLE, headers: Record<string, string> = {}) =>
  call("POST", "/v1/resolve", { body: { sessionId: id, body: { model: "auto", messages: [{ role: "user", content }] }, routed }, headers });

async function ticketFor(id: string, options: { token?: string; headers?: Record<string, string> } = {}) {
  const res = await call("POST", sessionPath(id, "/live-ticket"), options);
  expect(res.status).toBe(200);
  return res.json as { ticket: string; expiresAt: number };
}

describe("the live feed", () => {
  it("streams the backlog, then each new event as it happens", async () => {
    const id = freshId("live");
    await resolve(id, "hello");
    const w = watch(await open(sessionPath(id, "/live")));
    expect((await w.next(1)).map((e) => e.type)).toEqual(["created"]);
    await resolve(id, "harder", MEDIUM);
    const [, changed] = await w.next(2);
    expect(changed).toMatchObject({ type: "model_changed", reason: "upgrade", model: MEDIUM.model });
    w.close();
  });

  it("after a cursor, only what came after; a reconnect after eviction misses nothing and repeats nothing", async () => {
    const id = freshId("reconnect");
    await resolve(id, "a");
    await resolve(id, "b", MEDIUM);
    const first = watch(await open(sessionPath(id, "/live")));
    const seen = await first.next(2);
    first.close();
    await evictDurableObject(stubOf(id));
    // Missed while away: an upgrade and an operator's pause.
    await resolve(id, "c", COMPLEX);
    await call("POST", sessionPath(id, "/pause"), { token: ADMIN_TOKEN });
    const again = watch(await open(sessionPath(id, `/live?after=${seen[1]!.seq}`)));
    const missed = await again.next(2);
    expect(missed.map((e) => e.type)).toEqual(["model_changed", "paused"]);
    expect(missed[0]!.seq).toBe(seen[1]!.seq + 1);
    // And live again from there.
    await call("POST", sessionPath(id, "/resume"), { token: ADMIN_TOKEN });
    expect((await again.next(3))[2]).toMatchObject({ type: "resumed", seq: seen[1]!.seq + 3 });
    again.close();
  });

  it("a watcher that stays connected while the object is evicted still gets the events that follow", async () => {
    const id = freshId("hibernate");
    await resolve(id, "a");
    const w = watch(await open(sessionPath(id, "/live")));
    await w.next(1);
    await evictDurableObject(stubOf(id));
    await resolve(id, "b", MEDIUM);
    // The hibernation API keeps the socket across the eviction: the same watcher gets the event.
    expect(await Promise.race([w.next(2).then(() => "received"), w.closed.then(() => "closed")])).toBe("received");
    expect(w.events[1]).toMatchObject({ type: "model_changed" });
    w.close();
  });

  it("a browser's ticket: works once, for its session only, for a minute; never the token in the URL", async () => {
    const id = freshId("ticket");
    await resolve(id, "a");
    const { ticket, expiresAt } = await ticketFor(id);
    expect(expiresAt - testClock.peek()).toBeLessThanOrEqual(60_000);
    const w = watch(await open(sessionPath(id, `/live?ticket=${encodeURIComponent(ticket)}`), {}));
    expect((await w.next(1))[0]!.type).toBe("created");
    w.close();
    const reused = await open(sessionPath(id, `/live?ticket=${encodeURIComponent(ticket)}`), {});
    expect(reused.status).toBe(401);
    expect(((await reused.json()) as any).error.code).toBe("invalid_ticket");

    const other = await ticketFor(id);
    const elsewhere = await open(sessionPath(freshId("other"), `/live?ticket=${encodeURIComponent(other.ticket)}`), {});
    expect(elsewhere.status).toBe(401);

    const late = await ticketFor(id);
    testClock.advance(60_001);
    expect((await open(sessionPath(id, `/live?ticket=${encodeURIComponent(late.ticket)}`), {})).status).toBe(401);

    for (const forged of ["x", "a".repeat(64) + "." + "b".repeat(24), late.ticket.slice(0, -1) + (late.ticket.endsWith("A") ? "B" : "A")]) {
      const res = await open(sessionPath(id, `/live?ticket=${encodeURIComponent(forged)}`), {});
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.code).toBe("invalid_ticket");
    }
  });

  it("a ticket issued before sessions were disabled opens nothing after: 404 sessions_disabled, as with a token", async () => {
    const { router } = await import("../src/http/router");
    const id = freshId("ticket-disabled");
    await resolve(id, "a");
    const { ticket } = await ticketFor(id);
    const disabled = { ...env, SESSION_ENABLED: "false" };
    const req = (headers: Record<string, string>, query = "") =>
      new Request(`http://session.test${sessionPath(id, `/live${query}`)}`, { headers: { upgrade: "websocket", ...headers } });
    for (const res of [
      await router.fetch(req({}, `?ticket=${encodeURIComponent(ticket)}`), disabled, {} as ExecutionContext),
      await router.fetch(req({ authorization: `Bearer ${API_TOKEN}` }), disabled, {} as ExecutionContext),
    ]) {
      expect(res.status).toBe(404);
      expect(((await res.json()) as any).error.code).toBe("sessions_disabled");
    }
    // Refused before the object saw it: the ticket is still good once sessions are back.
    const w = watch(await open(sessionPath(id, `/live?ticket=${encodeURIComponent(ticket)}`), {}));
    await w.next(1);
    w.close();
  });

  it("the admin token can get a ticket too", async () => {
    const id = freshId("admin-ticket");
    await resolve(id, "a");
    const { ticket } = await ticketFor(id, { token: ADMIN_TOKEN });
    const w = watch(await open(sessionPath(id, `/live?ticket=${encodeURIComponent(ticket)}`), {}));
    await w.next(1);
    w.close();
  });

  it("refuses without a token or ticket (401), with the wrong token (401), without Upgrade (426), and a bad cursor (400)", async () => {
    const id = freshId("refuse");
    const none = await open(sessionPath(id, "/live"), {});
    expect(none.status).toBe(401);
    expect((await open(sessionPath(id, "/live"), { authorization: "Bearer nope" })).status).toBe(401);
    const plain = await call("GET", sessionPath(id, "/live"));
    expect(plain.status).toBe(426);
    expect(plain.json.error.code).toBe("upgrade_required");
    for (const bad of ["-1", "x", "1e3"]) {
      const res = await open(sessionPath(id, `/live?after=${bad}`));
      expect(res.status).toBe(400);
    }
    expect((await call("POST", sessionPath(id, "/live"))).status).toBe(405);
  });

  it("the admin token works too, and a session that does not exist yet can be watched from its creation", async () => {
    const id = freshId("early");
    const w = watch(await open(sessionPath(id, "/live"), { authorization: `Bearer ${ADMIN_TOKEN}` }));
    await resolve(id, "now");
    expect((await w.next(1))[0]!.type).toBe("created");
    w.close();
  });
});
