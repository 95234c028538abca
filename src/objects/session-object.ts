/**
 * One Durable Object per session: holds the entry in memory, writes it to
 * SQLite-backed storage before answering, and expires it with one alarm.
 * Every rule lives in src/session/ and is named by the command table; this
 * class only sequences I/O.
 *
 * The registry is told through an outbox: a change the registry must learn
 * (creation, a model or tier change, a pause or resume, the end of an
 * incarnation; usage, that is tokens, cost, strikes and requests, at most once
 * a minute) is written in
 * the same storage transaction as the entry, and delivered after the answer,
 * again from the alarm with backoff until the shard takes it.
 *
 * The journal (src/session/journal.ts) is written in the same transaction as
 * the step it describes, and streamed to the live feed's WebSockets
 * (hibernation API: an idle watcher keeps no object in memory). Lifecycle
 * messages for the SESSION_EVENTS queue are decided in that transaction too
 * and sent from a second outbox, retried from the alarm until the queue takes them.
 */
import { DurableObject } from "cloudflare:workers";
import { journalOf, stepOf, type SessionCommandName } from "../commands";
import type { Env } from "../env";
import { configFor, type Config } from "../session/config";
import { budgetOf, expiresAt, isExpired } from "../session/entry";
import { expireReservations } from "../session/budget";
import { endedAt, JOURNAL_LIMIT, thresholdsAtEnd, type Actor, type EventDraft, type JournalEvent } from "../session/journal";
import { endedMessage, refOf, thresholdMessages, type LifecycleMessage } from "../session/lifecycle";
import { reportsUsage, rowOf, type Delivery, type RowState } from "../session/registry";
import { SessionError, type Refusal } from "../session/errors";
import { effectsOf } from "../session/rules";
import { RETRY_MIN_DELAY_MS, retryDelayMs } from "../session/retry";
import type { Entry } from "../session/types";
import { deliverTo, registryCall } from "./registry-client";

/** The session's key (its ID, or the tenant-scoped key), its entry and its incarnation. */
const RECORD_KEY = "session";
/** Present while the registry has not confirmed the session's current state. */
const OUTBOX_KEY = "outbox";
/** The journal's bounds: the next event's seq and the oldest kept; and when the last incarnation ended. */
const JOURNAL_KEY = "journal";
/** Each journal event under its own key: the prefix, then the seq, zero-padded so keys sort as numbers. */
const EVENT_PREFIX = "ev:";
/** While lifecycle messages wait for the SESSION_EVENTS queue: how many, and since when. */
const SENDS_KEY = "sends";
/** Each waiting message under its own key, in the order decided: no value grows with an outage. */
const SEND_PREFIX = "send:";
/** How long a journal outlives its session's end: long enough to read how it ended. */
export const JOURNAL_RETENTION_MS = 24 * 60 * 60 * 1000;
/** How long a live-feed ticket is good for, and how many one object holds at once (the oldest goes first). */
export const TICKET_TTL_MS = 60_000;
const MAX_TICKETS = 32;

interface JournalMeta {
  /** The next event's seq. A new journal starts at the time in ms, so a journal that was dropped and begun again numbers after the old one. */
  next: number;
  /** The oldest event kept. */
  first: number;
  /** When the last incarnation ended, while no later one has begun: the journal is dropped JOURNAL_RETENTION_MS after. */
  endedAt?: number;
}

interface Sends {
  /** Since when the queue has been behind: the retry backoff grows with it. */
  since: number;
  /** The next message's number, and how many wait. */
  next: number;
  count: number;
}

const eventKey = (seq: number) => EVENT_PREFIX + String(seq).padStart(16, "0");
const sendKey = (n: number) => SEND_PREFIX + String(n).padStart(16, "0");

interface SessionRecord {
  id: string;
  entry: Entry;
  /** Absent on records written before incarnations existed: read as "" and 0. */
  inc?: string;
  version?: number;
  /** When the object last reported the session to its shard (unix ms); absent: never, as far as it knows. */
  reportedAt?: number;
}

interface Outbox {
  /** Since when the registry has been behind: the retry backoff grows with it. */
  since: number;
  /** The incarnation that ended and whose end the registry has not yet heard, when no later one replaced it. */
  ended?: { id: string; inc: string; version: number };
}

/** What clear-all learns from a session: whether it removed a live session, and else the row the session should have. */
export interface ClearAnswer {
  cleared: boolean;
  current: RowState | null;
}

export class SessionObject extends DurableObject<Env> {
  #record: SessionRecord | undefined;
  #outbox: Outbox | undefined;
  #journal: JournalMeta | undefined;
  #sends: Sends | undefined;
  /** The delivery under way, if any: one at a time, each carrying the state as it is when sent. */
  #delivering: Promise<void> | undefined;
  /** The queue send under way, if any: one at a time. */
  #sending: Promise<void> | undefined;
  /** Live-feed tickets: held in memory only (a ticket lives a minute; a browser that loses one asks again). */
  readonly #tickets = new Map<string, { sessionId: string; expiresAt: number }>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Synchronous KV on SQLite storage: reading an absent key creates nothing,
    // so an object that is only asked about a missing session stays empty.
    this.#record = ctx.storage.kv.get<SessionRecord>(RECORD_KEY);
    this.#outbox = ctx.storage.kv.get<Outbox>(OUTBOX_KEY);
    this.#journal = ctx.storage.kv.get<JournalMeta>(JOURNAL_KEY);
    this.#sends = ctx.storage.kv.get<Sends>(SENDS_KEY);
    // Watchers' keep-alive pings are answered without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  get #config(): Config {
    return configFor(this.env);
  }

  #row(record: SessionRecord): RowState {
    return rowOf(record.id, record.inc ?? "", record.version ?? 0, record.entry, this.#config.timeoutMs, Date.now());
  }

  /** The effect to deliver now: the current row, or else the end of the last incarnation. */
  #delivery(outbox: Outbox): Delivery | undefined {
    if (this.#record) return { kind: "upsert", row: this.#row(this.#record) };
    return outbox.ended && { kind: "remove", id: outbox.ended.id, inc: outbox.ended.inc };
  }

  /** Marks the registry as behind and arms the alarm that retries the delivery, in the caller's transaction. */
  #queue(outbox: Outbox, now: number): void {
    this.#outbox = outbox;
    this.ctx.storage.kv.put(OUTBOX_KEY, outbox);
    // Not awaited: the output gate holds the answer until the write is durable.
    void this.ctx.storage.setAlarm(now + RETRY_MIN_DELAY_MS);
  }

  /** Ends the stored incarnation: the entry goes, its end waits in the outbox, and the journal and queue hear of it (`#close`). */
  #end(record: SessionRecord, last: Entry, reason: "expired" | "cleared", at: number, now: number, actor?: Actor): void {
    this.ctx.storage.kv.delete(RECORD_KEY);
    this.#record = undefined;
    const ended = { id: record.id, inc: record.inc ?? "", version: record.version ?? 0 };
    this.#queue({ since: this.#outbox?.since ?? now, ended }, now);
    this.#close(record, last, reason, at, now, actor);
  }

  /**
   * Journals and decides the end of the stored incarnation, whose last entry is
   * `last`: the budget thresholds its end reached and no step announced (an
   * expired reservation's charge, say), then its end.
   */
  #close(record: SessionRecord, last: Entry, reason: "expired" | "cleared", at: number, now: number, actor?: Actor): void {
    const budget = budgetOf(last, this.#config.budgetMicros);
    const thresholds = thresholdsAtEnd(last, budget, record.entry.alerted ?? 0);
    const ref = refOf(record.id, record.inc ?? "");
    this.#append([...thresholds, { type: "ended", reason, ...(actor === undefined ? {} : { actor }) }], at);
    this.#decide([...thresholdMessages(ref, thresholds, at), endedMessage(ref, last, reason, at)], now);
  }

  /**
   * Appends events to the journal, in the caller's transaction, keeping the last
   * JOURNAL_LIMIT, and streams them to the live feed's watchers.
   */
  #append(drafts: readonly EventDraft[], at: number): void {
    if (drafts.length === 0) return;
    const meta: JournalMeta = this.#journal ? { next: this.#journal.next, first: this.#journal.first } : { next: at, first: at };
    const last = drafts[drafts.length - 1]!;
    if (last.type === "ended") meta.endedAt = at;
    const kv = this.ctx.storage.kv;
    const sockets = this.ctx.getWebSockets();
    for (const draft of drafts) {
      const event = { seq: meta.next++, at, ...draft } as JournalEvent;
      kv.put(eventKey(event.seq), event);
      const text = JSON.stringify(event);
      for (const ws of sockets) {
        try {
          ws.send(text);
        } catch {
          // A socket that is closing misses nothing it cannot catch up on with `after`.
        }
      }
    }
    while (meta.next - meta.first > JOURNAL_LIMIT) kv.delete(eventKey(meta.first++));
    kv.put(JOURNAL_KEY, meta);
    this.#journal = meta;
  }

  /** The journal's events after `after`, oldest first. A cursor past the journal's end is from a journal since dropped: all are answered. */
  #eventsAfter(after: number): JournalEvent[] {
    const meta = this.#journal;
    if (!meta) return [];
    const from = after >= meta.next ? meta.first : Math.max(after + 1, meta.first);
    const events: JournalEvent[] = [];
    for (const [, event] of this.ctx.storage.kv.list<JournalEvent>({ start: eventKey(from), end: eventKey(meta.next) })) events.push(event);
    return events;
  }

  /**
   * Records lifecycle messages for the queue, in the caller's transaction; without a SESSION_EVENTS
   * binding there is nothing to send. The step that decided them starts sending them (`#send`).
   */
  #decide(messages: readonly LifecycleMessage[], now: number): void {
    if (messages.length === 0 || this.env.SESSION_EVENTS === undefined) return;
    const sends: Sends = this.#sends ? { ...this.#sends } : { since: now, next: 0, count: 0 };
    for (const message of messages) {
      this.ctx.storage.kv.put(sendKey(sends.next++), message);
      sends.count++;
    }
    this.#sends = sends;
    this.ctx.storage.kv.put(SENDS_KEY, sends);
    void this.ctx.storage.setAlarm(now + RETRY_MIN_DELAY_MS);
  }

  /**
   * Runs a per-session command (or resolve) for the session stored under `key`. The
   * Worker's facade has validated the input; this object is reachable only through it.
   * Synchronous up to the answer: input gates make each call atomic. A rule's
   * refusal is answered as a value (`Refusal`), which the back end throws again.
   */
  run(key: string, name: SessionCommandName | "resolve", input: unknown, actor?: Actor): unknown {
    try {
      return this.#run(key, name, input, actor);
    } catch (err) {
      if (err instanceof SessionError) return { refused: err.toBody() } satisfies Refusal;
      throw err;
    }
  }

  #run(key: string, name: SessionCommandName | "resolve", input: unknown, actor: Actor | undefined): unknown {
    const config = this.#config;
    const now = Date.now();
    const record = this.#record;
    const stored = record?.entry;
    const { live, step } = stepOf(name, stored, input, now, config);
    const fx = effectsOf(stored, live, step.next, now, config.timeoutMs);
    if (!fx.changed) return step.result;
    const events = journalOf(name, actor, stored, live, fx.next, step.result, input, config);
    // A record stored before incarnations existed: its shard may hold no row or an old one,
    // so its first change is reported as if its model had changed. Token totals are reported
    // at most once a minute (USAGE_REPORT_INTERVAL_MS); in between they travel with the next report.
    const report =
      fx.registry !== undefined ||
      (fx.next !== undefined && record !== undefined && record.inc === undefined) ||
      reportsUsage(stored, fx.next, record?.reportedAt, now);

    const decidedBefore = this.#sends?.next;
    // The incarnation that ends in this step: it had expired (a new one may begin), or the step ended it.
    const ending = record !== undefined && (live === undefined || fx.next === undefined);
    if (ending) {
      const expired = live === undefined || name !== "clearSession";
      // Its last entry: as stored with every reservation charged, or what the step made of it before its end.
      const last = live === undefined ? expireReservations(stored!, Infinity) : (step.next ?? live);
      const at = expired ? endedAt(stored!, now, config.timeoutMs) : now;
      const reason = expired ? "expired" : "cleared";
      // A step that ends the session stores nothing after; one that found it expired goes on to its next incarnation.
      if (fx.next === undefined) this.#end(record, last, reason, at, now, expired ? undefined : actor);
      else this.#close(record, last, reason, at, now);
    }
    if (fx.next) {
      // Versions go on across incarnations while the object remembers the last one, so a shard
      // orders a new incarnation after an old one whose delivery is still out.
      const last = Math.max(record?.version ?? -1, this.#outbox?.ended?.version ?? -1);
      const reportedAt = report ? now : record?.reportedAt;
      const next: SessionRecord = fx.created
        ? { id: key, entry: fx.next, inc: crypto.randomUUID(), version: last + 1, reportedAt }
        : { id: key, entry: fx.next, inc: record!.inc ?? "", version: (record!.version ?? 0) + (report ? 1 : 0), reportedAt };
      // The hot path (no model or tier change, nothing to journal) is this one write.
      this.ctx.storage.kv.put<SessionRecord>(RECORD_KEY, next);
      this.#record = next;
      if (report) this.#queue({ since: this.#outbox?.since ?? now }, now);
      this.#decide(thresholdMessages(refOf(key, next.inc ?? ""), events, now), now);
    }
    // An end was journaled by #close, with the thresholds it reached.
    this.#append(ending ? events.filter((e) => e.type !== "ended") : events, now);
    if (report) void this.#deliver().catch(() => undefined);
    this.#sendDecided(decidedBefore);
    return step.result;
  }

  /** Delivers what the outbox holds, one delivery at a time; rejects when the registry did not take it. */
  #deliver(): Promise<void> {
    this.#delivering ??= this.#deliverPending().finally(() => {
      this.#delivering = undefined;
    });
    return this.#delivering;
  }

  async #deliverPending(): Promise<void> {
    for (let outbox = this.#outbox; outbox; outbox = this.#outbox) {
      const delivery = this.#delivery(outbox);
      if (delivery) await registryCall("record the session", () => deliverTo(this.env, delivery), this.#config.registryTimeoutMs);
      // A change made while the delivery was out is delivered next, with the state as it is then.
      if (this.#outbox !== outbox) continue;
      this.#outbox = undefined;
      this.ctx.storage.kv.delete(OUTBOX_KEY);
      this.#arm(Date.now());
    }
  }

  /**
   * Starts sending when a step decided messages (the `next` number it saw before is `before`). Only
   * then: while the queue refuses, messages decided earlier wait for the alarm's backoff, not for the next request.
   */
  #sendDecided(before: number | undefined): void {
    if (this.#sends !== undefined && this.#sends.next !== before) void this.#send().catch(() => undefined);
  }

  /** Sends the decided lifecycle messages, oldest first, one send at a time; rejects when the queue did not take one. */
  #send(): Promise<void> {
    this.#sending ??= this.#sendPending().finally(() => {
      this.#sending = undefined;
    });
    return this.#sending;
  }

  async #sendPending(): Promise<void> {
    const queue = this.env.SESSION_EVENTS;
    while (this.#sends) {
      const [first] = this.ctx.storage.kv.list<LifecycleMessage>({ prefix: SEND_PREFIX, limit: 1 });
      if (first) {
        const [key, message] = first;
        if (queue !== undefined) await queue.send(message, { contentType: "json" });
        // Messages decided while the send was out stay; only the one sent goes.
        this.ctx.storage.kv.delete(key);
      }
      const sends: Sends = { ...this.#sends, since: Date.now(), count: first ? this.#sends.count - 1 : 0 };
      if (sends.count <= 0) {
        this.#sends = undefined;
        this.ctx.storage.kv.delete(SENDS_KEY);
      } else {
        this.#sends = sends;
        this.ctx.storage.kv.put(SENDS_KEY, sends);
      }
    }
    this.#arm(Date.now());
  }

  /**
   * Sets the alarm for what the object still has to do, or, with nothing left, drops its storage:
   * the session's expiry, a retry while the registry or the queue is behind, or the journal's end.
   */
  #arm(now: number, retryAt?: number): void {
    let at = Infinity;
    if (this.#record) at = expiresAt(this.#record.entry, this.#config.timeoutMs) + 1;
    if ((this.#outbox || this.#sends) && retryAt !== undefined) at = Math.min(at, retryAt);
    else if (this.#outbox || this.#sends) return;
    const journal = this.#journal;
    if (!this.#record && journal?.endedAt !== undefined) {
      const dropAt = journal.endedAt + JOURNAL_RETENTION_MS;
      if (dropAt <= now && !this.#outbox && !this.#sends) return this.#dropAll();
      at = Math.min(at, dropAt);
    }
    if (at === Infinity) {
      // Here there is no session, outbox or message left: with no journal either, nothing is.
      if (journal === undefined) this.#dropAll();
      else void this.ctx.storage.deleteAlarm();
      return;
    }
    void this.ctx.storage.setAlarm(at);
  }

  /** Nothing left to keep: every key and the alarm go. */
  #dropAll(): void {
    void this.ctx.storage.deleteAll();
    this.#record = undefined;
    this.#outbox = undefined;
    this.#journal = undefined;
    this.#sends = undefined;
  }

  /** The row this session's shard should hold, or null when there is no live session. Read by reconciliation. */
  describe(): RowState | null {
    const record = this.#record;
    if (!record || isExpired(record.entry, Date.now(), this.#config.timeoutMs)) return null;
    return this.#row(record);
  }

  /**
   * Clear-all, driven by the registry shard, which drops the row itself. The
   * incarnation the shard held when the clear began (`inc`) is removed, as is
   * any created before that instant; a session created since survives, and the
   * shard learns its row instead. The journal and the queue hear of the end.
   */
  async clearBefore(clearStartedAt: number, inc: string): Promise<ClearAnswer> {
    const record = this.#record;
    if (record && (record.entry.createdAt < clearStartedAt || (record.inc ?? "") === inc)) {
      const now = Date.now();
      const live = !isExpired(record.entry, now, this.#config.timeoutMs);
      const entry = expireReservations(record.entry, live ? now : Infinity);
      const at = live ? now : endedAt(record.entry, now, this.#config.timeoutMs);
      this.ctx.storage.kv.delete(RECORD_KEY);
      this.ctx.storage.kv.delete(OUTBOX_KEY);
      this.#record = undefined;
      this.#outbox = undefined;
      const decidedBefore = this.#sends?.next;
      this.#close(record, entry, live ? "cleared" : "expired", at, now, live ? "admin" : undefined);
      // With messages to send, #decide armed the alarm; otherwise it is the journal's end.
      this.#arm(now);
      this.#sendDecided(decidedBefore);
      return { cleared: live, current: null };
    }
    return { cleared: false, current: this.describe() };
  }

  /** The journal's events after `after` (a seq), oldest first. */
  getEvents(after: number): { events: JournalEvent[] } {
    return { events: this.#eventsAfter(after) };
  }

  /** A ticket for one browser connection to this session's live feed. */
  liveTicket(sessionId: string): { ticket: string; expiresAt: number } {
    const now = Date.now();
    for (const [t, held] of this.#tickets) if (held.expiresAt < now) this.#tickets.delete(t);
    while (this.#tickets.size >= MAX_TICKETS) this.#tickets.delete(this.#tickets.keys().next().value!);
    const bytes = crypto.getRandomValues(new Uint8Array(18));
    const secret = btoa(String.fromCharCode(...bytes))
      .replaceAll("+", "-")
      .replaceAll("/", "_");
    const expiresAt = now + TICKET_TTL_MS;
    this.#tickets.set(secret, { sessionId, expiresAt });
    // The object's ID leads the ticket, so the Worker routes a browser's connection without its tenant header.
    return { ticket: `${this.ctx.id.toString()}.${secret}`, expiresAt };
  }

  /**
   * The live feed: a WebSocket that gets the journal's events after the `after`
   * cursor, then each new one as it is written. The Worker has checked the
   * caller's token, or passes a ticket for this object to check (and spend).
   */
  override async fetch(request: Request): Promise<Response> {
    const after = Number(request.headers.get("x-live-after") ?? "0");
    const ticket = request.headers.get("x-live-ticket");
    if (ticket !== null) {
      const held = this.#tickets.get(ticket);
      this.#tickets.delete(ticket);
      if (!held || held.expiresAt < Date.now() || encodeURIComponent(held.sessionId) !== request.headers.get("x-live-session")) {
        return Response.json(
          { error: { code: "invalid_ticket", message: "the live-feed ticket is unknown, spent, expired or for another session" } },
          { status: 401 },
        );
      }
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    for (const event of this.#eventsAfter(after)) server.send(JSON.stringify(event));
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Watchers only listen; anything they send but the keep-alive ping is ignored. */
  override webSocketMessage(): void {}

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
  }

  /**
   * Expiry and outbox retries. On wake, a session past its deadline ends; what
   * the outboxes hold is delivered and sent, and while the registry or the queue
   * does not take it the alarm comes back with backoff (the platform retries a
   * failed alarm only six times). A session used since is re-armed for its new
   * deadline instead of being re-armed on every touch. Alarms are delivered at
   * least once, so every branch is safe to repeat.
   */
  override async alarm(): Promise<void> {
    await this.#delivering?.catch(() => undefined);
    await this.#sending?.catch(() => undefined);
    const timeoutMs = this.#config.timeoutMs;
    const now = Date.now();
    const record = this.#record;
    if (record && isExpired(record.entry, now, timeoutMs)) {
      this.#end(record, expireReservations(record.entry, Infinity), "expired", endedAt(record.entry, now, timeoutMs), now);
    }
    let since: number | undefined;
    if (this.#outbox) {
      try {
        await this.#deliver();
      } catch {
        since = this.#outbox?.since;
      }
    }
    if (this.#sends) {
      try {
        await this.#send();
      } catch {
        if (this.#sends) since = Math.min(since ?? Infinity, this.#sends.since);
      }
    }
    // +1 ms in #arm: the deadline itself is not yet expired, and a setAlarm(now) made inside alarm() is dropped locally.
    this.#arm(now, since === undefined ? undefined : now + retryDelayMs(now - since, Math.random()));
  }
}
