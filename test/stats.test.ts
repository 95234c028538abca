/** The stats arithmetic as pure functions: counting, merging shards, paging across shards, capping byModel, truncating IDs, summing clear-all progress. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../src/memory";
import {
  DEFAULT_STATS_LIMIT,
  MAX_LISTED_MODELS,
  MAX_STATS_LIMIT,
  OTHER_MODELS,
  firstShare,
  mergeSorted,
  shardOf,
  shardsToRefill,
  sumProgress,
  tally,
  toCounts,
  topCounts,
  topPairs,
  truncateId,
  type ClearProgress,
  type RegistryRow,
} from "../src/session/stats";

const awkward = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "isPrototypeOf", "prototype"];
const entries = (o: Record<string, number>) => Object.entries(o).sort();

describe("tally and merge", () => {
  it("counts any string, including Object.prototype keys and __proto__", () => {
    const t = tally([...awkward, "constructor", "__proto__"].map((m) => [m, 1] as const));
    expect([...t].sort()).toEqual(awkward.map((m) => [m, m === "constructor" || m === "__proto__" ? 2 : 1] as const).sort());
  });

  it("merges shard totals by summing each key", () => {
    const shards = [
      [
        ["a", 2],
        ["constructor", 1],
      ],
      [],
      [
        ["a", 3],
        ["b", 1],
        ["constructor", 4],
      ],
    ] as [string, number][][];
    expect([...tally(shards.flat())].sort()).toEqual([
      ["a", 5],
      ["b", 1],
      ["constructor", 5],
    ]);
  });

  it("turns a tally into an object with every key as an own property, which JSON keeps", () => {
    const counts = toCounts(tally(awkward.map((m) => [m, 1] as const)));
    expect(entries(counts)).toEqual(awkward.map((m) => [m, 1]).sort());
    expect(entries(JSON.parse(JSON.stringify(counts)))).toEqual(awkward.map((m) => [m, 1]).sort());
    expect(Object.getPrototypeOf(counts)).toBe(Object.prototype);
    expect(Object.keys(toCounts(tally([])))).toEqual([]);
  });
});

describe(`byModel lists the top ${MAX_LISTED_MODELS} models`, () => {
  it("keeps all models when there are few, and adds no (other) key", () => {
    expect(
      entries(
        topCounts(
          tally([
            ["a", 1],
            ["b", 2],
          ]),
          3,
        ),
      ),
    ).toEqual([
      ["a", 1],
      ["b", 2],
    ]);
  });

  it("keeps the top N by count, ties by name in code point order, and sums the rest under (other)", () => {
    const t = tally([
      ["c", 5],
      ["b", 2],
      ["a", 2],
      ["d", 1],
      ["e", 1],
      ["\u{1F600}", 2],
      ["\uFFFF", 2],
    ]);
    expect(topCounts(t, 3)).toEqual({ c: 5, a: 2, b: 2, [OTHER_MODELS]: 2 + 2 + 1 + 1 });
    // Code point order: U+FFFF sorts before U+1F600, although its UTF-16 unit is larger.
    expect(Object.keys(topCounts(t, 5))).toEqual(["c", "a", "b", "\uFFFF", "\u{1F600}", OTHER_MODELS]);
  });

  it(`counts a model literally named ${OTHER_MODELS} in that bucket, never as a listed model`, () => {
    expect(
      topCounts(
        tally([
          [OTHER_MODELS, 7],
          ["a", 1],
        ]),
        3,
      ),
    ).toEqual({ a: 1, [OTHER_MODELS]: 7 });
    expect(
      topCounts(
        tally([
          [OTHER_MODELS, 1],
          ["a", 1],
          ["b", 1],
        ]),
        1,
      ),
    ).toEqual({ a: 1, [OTHER_MODELS]: 2 });
  });

  it("keeps the total and caps with the default", () => {
    const t = tally(Array.from({ length: 250 }, (_, i) => [`m${i}`, (i % 7) + 1] as const));
    const counts = topCounts(t);
    expect(Object.keys(counts).length).toBe(MAX_LISTED_MODELS + 1);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe([...t.values()].reduce((a, b) => a + b, 0));
    const hundredth = [...t.values()].sort((a, b) => b - a)[MAX_LISTED_MODELS - 1]!;
    expect(
      Math.min(
        ...Object.entries(counts)
          .filter(([k]) => k !== OTHER_MODELS)
          .map(([, n]) => n),
      ),
    ).toBe(hundredth);
  });
});

describe("topPairs", () => {
  it("keeps the top max keys and sums the rest, and a key named (other), under (other): every count kept in max + 1 pairs", () => {
    const counts = tally([
      ["a", 5],
      ["b", 3],
      ["c", 3],
      ["d", 1],
      [OTHER_MODELS, 2],
    ]);
    expect(topPairs(counts, 2)).toEqual([
      ["a", 5],
      ["b", 3],
      [OTHER_MODELS, 3 + 1 + 2],
    ]);
    expect(topPairs(tally([["a", 1]]), 2)).toEqual([["a", 1]]);
    expect(topPairs(counts, 0)).toEqual([[OTHER_MODELS, 14]]);
  });
});

describe("truncateId", () => {
  // Compared as JSON: a lone surrogate would be escaped there instead of breaking the test report.
  const cut = (id: string) => JSON.stringify(truncateId(id));
  const shown = (id: string) => JSON.stringify(id);

  it("keeps the first 8 code points and adds ... only when longer", () => {
    expect(cut("12345678")).toBe(shown("12345678"));
    expect(cut("123456789")).toBe(shown("12345678..."));
    expect(cut("aaaaaaa😀bbb")).toBe(shown("aaaaaaa😀..."));
    // Eight code points, nine UTF-16 units: shown whole.
    expect(cut("bbbbbbb😀")).toBe(shown("bbbbbbb😀"));
    expect(cut("😀😀😀😀😀😀😀😀😀")).toBe(shown("😀😀😀😀😀😀😀😀..."));
  });
});

describe("MemoryStore stats", () => {
  it("counts Object.prototype keys and caps byModel like the registry", async () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    for (const [i, m] of awkward.entries()) await store.setSession(`s${i}`, m, "SIMPLE");
    expect(entries((await store.getStats()).byModel)).toEqual(awkward.map((m) => [m, 1]).sort());
    expect((await store.getStats()).byTier).toEqual({ SIMPLE: awkward.length });
    for (let i = 0; i < MAX_LISTED_MODELS + 2; i++) await store.setSession(`x${i}`, `x${String(i).padStart(3, "0")}`, "MEDIUM");
    const stats = await store.getStats();
    expect(Object.keys(stats.byModel).length).toBe(MAX_LISTED_MODELS + 1);
    expect(Object.values(stats.byModel).reduce((a, b) => a + b, 0)).toBe(stats.count);
    store.close();
  });
});

/**
 * Stats paging across registry shards. Each shard holds its rows sorted by ID
 * and answers "up to n rows after this ID"; a page of `limit` rows asks every
 * shard for firstShare rows, asks the shards shardsToRefill names for a whole
 * page (limit + 1) after their last row, and merges with mergeSorted(lists,
 * limit + 1): the extra row says whether a next page follows. Whatever the
 * spread of IDs over shards, the page must be exactly the first limit + 1 IDs
 * overall after the cursor. The oracle sorts every ID in UTF-8 byte order
 * (SQLite's BINARY collation, which the shards use) and takes the first ones.
 */
describe("stats paging across shards", () => {
  const utf8 = new TextEncoder();
  const encoded = new Map<string, Uint8Array>();
  const bytesOf = (id: string) => encoded.get(id) ?? encoded.set(id, utf8.encode(id)).get(id)!;
  /** UTF-8 byte order: the oracle's order, computed independently of src/. */
  function byteOrder(a: string, b: string): number {
    const x = bytesOf(a);
    const y = bytesOf(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return x.length - y.length;
  }
  const row = (id: string): RegistryRow => ({ id, model: "m", tier: "SIMPLE", createdAt: 0, sessionCostMicros: 0, strikes: 0, requestCount: 0, paused: false });
  /** One shard's answer: up to `n` of its rows after `after`, in ID order. */
  const shardPage = (rows: RegistryRow[], after: string | undefined, n: number) =>
    rows.filter((r) => after === undefined || byteOrder(r.id, after) > 0).slice(0, n);

  const sameIds = (rows: RegistryRow[], ids: string[]) => rows.length === ids.length && rows.every((r, i) => r.id === ids[i]);

  /** One stats page over `shards`, as the contract above runs it; `refilled` says whether a second round was needed. */
  function statsPage(shards: RegistryRow[][], limit: number, after: string | undefined) {
    const share = firstShare(limit, shards.length);
    const lists = shards.map((rows) => shardPage(rows, after, share));
    const refill = shardsToRefill(lists, share, limit);
    for (const k of refill) lists[k]!.push(...shardPage(shards[k]!, lists[k]!.at(-1)!.id, limit + 1));
    return { rows: mergeSorted(lists, limit + 1), refilled: refill.length > 0 };
  }

  // Characters whose UTF-16 order differs from their code point order (U+FFFF, U+E000 against astral ones).
  const idChar = fc.constantFrom("a", "b", "z", "é", "\uE000", "\uFFFF", "\u{10000}", "\u{1F600}");
  const ids = fc.uniqueArray(fc.string({ unit: idChar, minLength: 1, maxLength: 5 }), { maxLength: 250, size: "large" });
  /** IDs spread over 1–16 shards: evenly, or piled onto a few shards. */
  const layout = fc
    .record({
      ids,
      shards: fc.integer({ min: 1, max: 16 }),
      skew: fc.integer({ min: 0, max: 3 }),
      seed: fc.array(fc.nat(15), { minLength: 250, maxLength: 250 }),
    })
    .map(({ ids, shards, skew, seed }) => {
      const lists: RegistryRow[][] = Array.from({ length: shards }, () => []);
      ids.forEach((id, i) => {
        const pick = seed[i]! % shards;
        lists[skew === 0 ? pick : Math.min(pick, skew - 1)]!.push(row(id));
      });
      for (const list of lists) list.sort((a, b) => byteOrder(a.id, b.id));
      return { all: [...ids].sort(byteOrder), shards: lists };
    });
  const limit = fc.integer({ min: 1, max: 60 });
  /** Shrinking a failure over 250 IDs can take minutes; past the limit fast-check reports what it has, and a run cut short fails. */
  const bounded = { interruptAfterTimeLimit: 20_000, markInterruptAsFailure: true };

  it("a page is exactly the first limit + 1 IDs after the cursor, for any spread over shards", () => {
    let refills = 0;
    fc.assert(
      fc.property(layout, limit, fc.nat(), ({ all, shards }, limit, at) => {
        const after = all.length === 0 || at % 4 === 0 ? undefined : all[at % all.length];
        const { rows, refilled } = statsPage(shards, limit, after);
        if (refilled) refills++;
        const expected = all.filter((id) => after === undefined || byteOrder(id, after) > 0).slice(0, limit + 1);
        // A boolean, not expect(): a failing expect() renders a diff at every shrinking step.
        return sameIds(rows, expected);
      }),
      { numRuns: 500, ...bounded },
    );
    // The second round must have been exercised, or the property above says nothing about shardsToRefill.
    expect(refills).toBeGreaterThan(20);
  });

  it("walking the pages by cursor lists every ID once, in order, limit to a page", () => {
    fc.assert(
      fc.property(layout, limit, ({ all, shards }, limit) => {
        const seen: string[] = [];
        let after: string | undefined;
        for (let pages = 0; pages <= all.length + 1; pages++) {
          const { rows } = statsPage(shards, limit, after);
          const shown = rows.slice(0, limit);
          seen.push(...shown.map((r) => r.id));
          if (rows.length <= limit) break;
          if (shown.length !== limit) return false;
          after = shown.at(-1)!.id;
        }
        return seen.join("\0") === all.join("\0");
      }),
      { numRuns: 200, ...bounded },
    );
  });

  it("settles a default page in one round when IDs hash evenly over the shards", () => {
    const all = Array.from({ length: 5000 }, (_, i) => `conversation-${i}`);
    for (const shards of [2, 4, 16]) {
      const lists: RegistryRow[][] = Array.from({ length: shards }, () => []);
      for (const id of all) lists[shardOf(id, shards)]!.push(row(id));
      for (const list of lists) list.sort((a, b) => byteOrder(a.id, b.id));
      const share = firstShare(DEFAULT_STATS_LIMIT, shards);
      const first = lists.map((rows) => shardPage(rows, undefined, share));
      expect(shardsToRefill(first, share, DEFAULT_STATS_LIMIT), `${shards} shards`).toEqual([]);
    }
  });
});

describe("firstShare", () => {
  it("asks one shard for the whole page plus one, and several shards each for at least an even share, never more than page + 1", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_STATS_LIMIT }), fc.integer({ min: 1, max: 256 }), (limit, shards) => {
        const share = firstShare(limit, shards);
        expect(Number.isInteger(share)).toBe(true);
        expect(share).toBeLessThanOrEqual(limit + 1);
        expect(share).toBeGreaterThanOrEqual(Math.ceil((limit + 1) / shards));
        if (shards === 1) expect(share).toBe(limit + 1);
        // A larger page never asks for less; more shards never ask each for more.
        expect(firstShare(limit + 1, shards)).toBeGreaterThanOrEqual(share);
        expect(firstShare(limit, shards + 1)).toBeLessThanOrEqual(share);
      }),
    );
  });

  it("asks each of several shards for less than a whole page of the default size", () => {
    for (const shards of [2, 4, 16, 64]) expect(firstShare(DEFAULT_STATS_LIMIT, shards)).toBeLessThan(DEFAULT_STATS_LIMIT + 1);
  });
});

describe("shardsToRefill", () => {
  const rows = (...ids: string[]) =>
    ids.map((id): RegistryRow => ({ id, model: "m", tier: "SIMPLE", createdAt: 0, sessionCostMicros: 0, strikes: 0, requestCount: 0, paused: false }));

  it("asks nothing again when the first round asked for whole pages, or no shard returned a full share", () => {
    expect(shardsToRefill([rows("a", "b", "c"), rows("d", "e", "f")], 3, 2)).toEqual([]);
    expect(shardsToRefill([rows("a", "b"), rows("c")], 3, 5)).toEqual([]);
    expect(shardsToRefill([[], []], 3, 5)).toEqual([]);
  });

  it("asks nothing again when the rows up to the earliest full shard's last row fill the page", () => {
    // Page of 2 (+1): a, b, c are known complete up to c, the only full shard's last row.
    expect(shardsToRefill([rows("a", "b", "c"), rows("d")], 3, 2)).toEqual([]);
    // Up to c (the earlier full shard's last row): a, b, c from shard 0 and b2 from shard 1 fill a page of 3 (+1).
    expect(shardsToRefill([rows("a", "b", "c"), rows("b2", "x", "y")], 3, 3)).toEqual([]);
  });

  it("asks every full shard again when they may hold rows before the page's cut", () => {
    // Up to e, five rows are known; a page of 5 needs six, and either full shard may hold the sixth.
    expect(shardsToRefill([rows("a", "c", "e"), rows("b", "d", "f"), rows("g")], 3, 5).sort()).toEqual([0, 1]);
    // Shard 1 is not full (complete): only shard 0 is asked again.
    expect(shardsToRefill([rows("a", "b", "c"), rows("d", "e")], 3, 10)).toEqual([0]);
  });

  it("names only full shards, each once", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 3 }), { maxLength: 6 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 20 }),
        (lists, share, limit) => {
          // Rows as the shards would answer: sorted (code point order), at most `share`, unique across shards.
          const used = new Set<string>();
          const shards = lists.map((list) =>
            rows(
              ...list
                .filter((id) => !used.has(id) && used.add(id))
                .sort(byCodePoint)
                .slice(0, share),
            ),
          );
          const refill = shardsToRefill(shards, share, limit);
          expect(new Set(refill).size).toBe(refill.length);
          for (const k of refill) expect(shards[k]).toHaveLength(share);
        },
      ),
    );
  });
});

/** Code point order, from the code points themselves. */
function byCodePoint(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

describe("mergeSorted", () => {
  it("answers the first limit rows of all lists in ID order, and leaves the lists as they were", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ unit: "binary", maxLength: 4 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.nat(), { minLength: 60, maxLength: 60 }),
        fc.integer({ min: 0, max: 70 }),
        (ids, k, picks, limit) => {
          const lists: RegistryRow[][] = Array.from({ length: k }, () => []);
          ids.forEach((id, i) =>
            lists[picks[i]! % k]!.push({ id, model: "m", tier: "SIMPLE", createdAt: i, sessionCostMicros: 0, strikes: 0, requestCount: 0, paused: false }),
          );
          for (const list of lists) list.sort((a, b) => byCodePoint(a.id, b.id));
          const before = JSON.stringify(lists);
          const merged = mergeSorted(lists, limit);
          const expected = [...ids].sort(byCodePoint).slice(0, limit);
          // Booleans, not expect(): a failing expect() renders a diff at every shrinking step.
          const inOrder = merged.length === expected.length && merged.every((r, i) => r.id === expected[i]);
          // Rows are passed through whole, and the lists are left as they were.
          const whole = merged.every((r) => lists.some((list) => list.includes(r)));
          return inOrder && whole && JSON.stringify(lists) === before;
        },
      ),
    );
  });

  it("answers nothing for a limit of 0 or no lists", () => {
    expect(mergeSorted([[{ id: "a", model: "m", tier: "SIMPLE", createdAt: 0, sessionCostMicros: 0, strikes: 0, requestCount: 0, paused: false }]], 0)).toEqual(
      [],
    );
    expect(mergeSorted([], 5)).toEqual([]);
  });
});

describe("sumProgress", () => {
  it("adds cleared and pending over the shards' parts; no parts is nothing cleared and nothing pending", () => {
    expect(sumProgress([])).toEqual({ cleared: 0, pending: 0 });
    const part = fc.record({ cleared: fc.nat(1_000_000), pending: fc.nat(1_000_000) });
    fc.assert(
      fc.property(fc.array(part, { maxLength: 64 }), (parts: ClearProgress[]) => {
        const sum = sumProgress(parts);
        expect(sum).toEqual({ cleared: parts.reduce((n, p) => n + p.cleared, 0), pending: parts.reduce((n, p) => n + p.pending, 0) });
        // 202 (pending > 0) exactly when some shard is still clearing.
        expect(sum.pending > 0).toBe(parts.some((p) => p.pending > 0));
      }),
    );
  });
});

describe("tally and topCounts, for any counts", () => {
  const pairs = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...awkward, OTHER_MODELS), fc.string({ maxLength: 3 })), fc.integer({ min: 1, max: 50 })), {
    maxLength: 80,
  });

  it("tally sums each key's counts", () => {
    fc.assert(
      fc.property(pairs, (input) => {
        const t = tally(input);
        for (const key of new Set(input.map(([k]) => k))) expect(t.get(key)).toBe(input.filter(([k]) => k === key).reduce((n, [, c]) => n + c, 0));
        expect(t.size).toBe(new Set(input.map(([k]) => k)).size);
      }),
    );
  });

  it("topCounts keeps every count, lists at most max models plus (other), and no folded model outranks a listed one", () => {
    fc.assert(
      fc.property(pairs, fc.integer({ min: 0, max: 10 }), (input, max) => {
        const t = tally(input);
        const counts = topCounts(t, max);
        const total = input.reduce((n, [, c]) => n + c, 0);
        expect(Object.values(counts).reduce((n, c) => n + c, 0)).toBe(total);
        const listed = Object.keys(counts).filter((k) => k !== OTHER_MODELS);
        expect(listed.length).toBeLessThanOrEqual(max);
        for (const key of listed) expect(counts[key]).toBe(t.get(key));
        const folded = [...t.keys()].filter((k) => k !== OTHER_MODELS && !listed.includes(k));
        const lowestListed = Math.min(...listed.map((k) => counts[k]!));
        for (const key of folded) expect(t.get(key)!).toBeLessThanOrEqual(lowestListed);
        if (folded.length > 0 || t.has(OTHER_MODELS)) expect(Object.hasOwn(counts, OTHER_MODELS)).toBe(true);
      }),
    );
  });
});
