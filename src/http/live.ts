/**
 * GET /v1/sessions/{id}/live: the session's journal as a WebSocket, served by
 * the session's object with the hibernation API. A server client shows its
 * token in the Authorization header; a browser, which cannot set headers on a
 * WebSocket, shows a ticket from POST /v1/sessions/{id}/live-ticket instead, so
 * no token ever travels in a URL.
 */
import type { IRequest } from "itty-router";
import type { Env } from "../env";
import type { Sessions } from "../facade";
import type { SessionObject } from "../objects/session-object";
import { parseInput, seqCursor } from "../schemas";
import { configFor } from "../session/config";
import { SessionError, sessionsDisabled } from "../session/errors";
import { sessionIdProblem } from "../session/validate";
import { z } from "zod";

/** A ticket: the object's ID (64 hex digits), a dot, and the object's 24-character secret. */
const TICKET = /^([0-9a-f]{64})\.([A-Za-z0-9_-]{24})$/;
const query = z.object({ after: seqCursor, ticket: z.string({ error: "must be a string" }).optional() });

function single(request: IRequest, field: string): string | undefined {
  const value = request.query[field];
  if (Array.isArray(value)) throw new SessionError("invalid_request", `${field} must be given once`, { field });
  return value;
}

/**
 * Opens the feed. `sessions` is the caller's facade when it showed a token (the router has
 * checked it, before anything else); undefined when it shows a ticket, which the session's object checks.
 */
export async function liveFeed(request: IRequest, env: Env, sessionId: string, sessions: Sessions | undefined): Promise<Response> {
  const problem = sessionIdProblem(sessionId);
  if (problem !== undefined) throw new SessionError("invalid_session_id", problem);
  const afterText = single(request, "after");
  if (afterText !== undefined && !/^\d{1,16}$/.test(afterText))
    throw new SessionError("invalid_request", "after must be a non-negative integer (an event's seq)", { field: "after" });
  const ticketText = single(request, "ticket");
  const { after, ticket } = parseInput(query, { after: afterText === undefined ? undefined : Number(afterText), ticket: ticketText }) as {
    after: number;
    ticket?: string;
  };
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new SessionError("upgrade_required", "this route is a WebSocket: send Upgrade: websocket");
  }
  // Either way: a ticket issued before sessions were disabled opens nothing after.
  if (!configFor(env).enabled) throw sessionsDisabled();
  // Percent-encoded: a header value loses leading and trailing spaces, which a session ID may have.
  const headers = new Headers({ upgrade: "websocket", "x-live-after": String(after), "x-live-session": encodeURIComponent(sessionId) });
  let stub: DurableObjectStub<SessionObject>;
  if (sessions === undefined) {
    const match = TICKET.exec(ticket ?? "");
    let id: DurableObjectId | undefined;
    try {
      id = match ? env.SESSIONS.idFromString(match[1]!) : undefined;
    } catch {
      id = undefined;
    }
    if (!id) throw new SessionError("invalid_ticket", "the live-feed ticket is not one this service issued");
    headers.set("x-live-ticket", match![2]!);
    stub = env.SESSIONS.get(id);
  } else {
    stub = env.SESSIONS.get(env.SESSIONS.idFromName(sessions.keyOf(sessionId)));
  }
  const answer = await stub.fetch("https://session/live", { headers });
  // A fresh response: the object's has immutable headers, and the router adds cache-control.
  return answer.webSocket ? new Response(null, { status: 101, webSocket: answer.webSocket }) : new Response(answer.body, answer);
}
