/** A WebSocket client of the live feed (GET /v1/sessions/{id}/live) for tests: open it, then wait for its events. */
import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import { API_TOKEN } from "./http";

export type Event = { seq: number; type: string; [field: string]: unknown };

/** A watcher: the events it has received, and a way to wait for the n-th. */
export interface Watcher {
  events: Event[];
  next(count: number): Promise<Event[]>;
  close(): void;
  closed: Promise<void>;
}

export async function open(path: string, headers: Record<string, string> = { authorization: `Bearer ${API_TOKEN}` }): Promise<Response> {
  return exports.default.fetch(new Request(`http://session.test${path}`, { headers: { upgrade: "websocket", ...headers } }));
}

export function watch(res: Response): Watcher {
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const events: Event[] = [];
  let wake: () => void = () => undefined;
  ws.addEventListener("message", (m) => {
    events.push(JSON.parse(m.data as string));
    wake();
  });
  const closed = new Promise<void>((r) => ws.addEventListener("close", () => r()));
  return {
    events,
    async next(count) {
      // Bounded: 200 turns of the event loop, each waiting for a message or 10 ms.
      for (let i = 0; i < 200 && events.length < count; i++) await new Promise<void>((r) => ((wake = r), setTimeout(r, 10)));
      expect(events.length, `waited for ${count} events`).toBeGreaterThanOrEqual(count);
      return events.slice(0, count);
    },
    close: () => ws.close(1000, "done"),
    closed,
  };
}
