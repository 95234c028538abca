/** Registry rows and the stats view of them (reference `GetStats`), as pure functions. */
import { compareCodePoints } from "./hashing";
import type { Tier } from "./types";

export interface RegistryRow {
  id: string;
  model: string;
  tier: Tier;
  createdAt: number;
}

/** Reference `SessionInfo`: a truncated ID, the model and the age in whole seconds. */
export interface SessionInfo {
  id: string;
  model: string;
  age: number;
}

export interface Stats {
  count: number;
  sessions: SessionInfo[];
  byModel: Record<string, number>;
  byTier: Record<string, number>;
  nextCursor?: string;
}

/** Reference shows the first 8 characters of an ID, plus "..." when longer. */
const SHOWN_ID_CHARS = 8;

export function truncateId(id: string): string {
  return id.length > SHOWN_ID_CHARS ? id.slice(0, SHOWN_ID_CHARS) + "..." : id;
}

/**
 * Separates a tenant's namespace from the session ID in object names and registry keys. A control
 * character: validated session IDs and namespaces never contain one, so a scoped key never equals an
 * unscoped ID (which is its own key) and splits one way only. With a printable separator such as ":",
 * the unscoped ID "acme:c1" named tenant acme's session "c1".
 */
export const NAMESPACE_SEPARATOR = "\u001f";
/** How stats shows the separator: `tenant:id`. */
const SHOWN_NAMESPACE_SEPARATOR = ":";

export function namespacedKey(namespace: string, sessionId: string): string {
  return namespace + NAMESPACE_SEPARATOR + sessionId;
}

/** A registry row as stats shows it; a scoped session shows `tenant:` whole and its ID truncated. */
export function sessionInfo(row: RegistryRow, now: number): SessionInfo {
  const cut = row.id.indexOf(NAMESPACE_SEPARATOR);
  const id = cut < 0 ? truncateId(row.id) : row.id.slice(0, cut) + SHOWN_NAMESPACE_SEPARATOR + truncateId(row.id.slice(cut + 1));
  return { id, model: row.model, age: Math.max(0, Math.floor((now - row.createdAt) / 1000)) };
}

/** Code point order is UTF-8 byte order, which is SQLite's BINARY collation: shards and merge agree. */
export const compareIds = compareCodePoints;

export function addCount(into: Record<string, number>, key: string, n = 1): void {
  into[key] = (into[key] ?? 0) + n;
}

/**
 * FNV-1a over the ID's UTF-16 code units: stable across deploys and runtimes,
 * so a session always maps to the same registry shard for a given shard count.
 */
export function shardOf(id: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

/** The first `limit` rows of several lists each sorted by ID, in ID order (a k-way merge). */
export function mergeSorted(lists: readonly RegistryRow[][], limit: number): RegistryRow[] {
  const heads = lists.map(() => 0);
  const out: RegistryRow[] = [];
  while (out.length < limit) {
    let best = -1;
    for (let k = 0; k < lists.length; k++) {
      const row = lists[k]![heads[k]!];
      if (row && (best === -1 || compareIds(row.id, lists[best]![heads[best]!]!.id) < 0)) best = k;
    }
    if (best === -1) break;
    out.push(lists[best]![heads[best]!++]!);
  }
  return out;
}
