/** The stats arithmetic as pure functions: counting, merging shards, capping byModel, truncating IDs. */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../src/memory";
import { MAX_LISTED_MODELS, OTHER_MODELS, tally, toCounts, topCounts, topPairs, truncateId } from "../src/session/stats";

const awkward = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "isPrototypeOf", "prototype"];
const entries = (o: Record<string, number>) => Object.entries(o).sort();

describe("tally and merge", () => {
  it("counts any string, including Object.prototype keys and __proto__", () => {
    const t = tally([...awkward, "constructor", "__proto__"].map((m) => [m, 1] as const));
    expect([...t].sort()).toEqual([...awkward.map((m) => [m, m === "constructor" || m === "__proto__" ? 2 : 1] as const)].sort());
  });

  it("merges shard totals by summing each key", () => {
    const shards = [
      [["a", 2], ["constructor", 1]],
      [],
      [["a", 3], ["b", 1], ["constructor", 4]],
    ] as [string, number][][];
    expect([...tally(shards.flat())].sort()).toEqual([["a", 5], ["b", 1], ["constructor", 5]]);
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
    expect(entries(topCounts(tally([["a", 1], ["b", 2]]), 3))).toEqual([["a", 1], ["b", 2]]);
  });

  it("keeps the top N by count, ties by name in code point order, and sums the rest under (other)", () => {
    const t = tally([["c", 5], ["b", 2], ["a", 2], ["d", 1], ["e", 1], ["\u{1F600}", 2], ["\uFFFF", 2]]);
    expect(topCounts(t, 3)).toEqual({ c: 5, a: 2, b: 2, [OTHER_MODELS]: 2 + 2 + 1 + 1 });
    // Code point order: U+FFFF sorts before U+1F600, although its UTF-16 unit is larger.
    expect(Object.keys(topCounts(t, 5))).toEqual(["c", "a", "b", "\uFFFF", "\u{1F600}", OTHER_MODELS]);
  });

  it(`counts a model literally named ${OTHER_MODELS} in that bucket, never as a listed model`, () => {
    expect(topCounts(tally([[OTHER_MODELS, 7], ["a", 1]]), 3)).toEqual({ a: 1, [OTHER_MODELS]: 7 });
    expect(topCounts(tally([[OTHER_MODELS, 1], ["a", 1], ["b", 1]]), 1)).toEqual({ a: 1, [OTHER_MODELS]: 2 });
  });

  it("keeps the total and caps with the default", () => {
    const t = tally(Array.from({ length: 250 }, (_, i) => [`m${i}`, (i % 7) + 1] as const));
    const counts = topCounts(t);
    expect(Object.keys(counts).length).toBe(MAX_LISTED_MODELS + 1);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe([...t.values()].reduce((a, b) => a + b, 0));
    const hundredth = [...t.values()].sort((a, b) => b - a)[MAX_LISTED_MODELS - 1]!;
    expect(Math.min(...Object.entries(counts).filter(([k]) => k !== OTHER_MODELS).map(([, n]) => n))).toBe(hundredth);
  });
});

describe("topPairs", () => {
  it("keeps the top max keys and sums the rest, and a key named (other), under (other): every count kept in max + 1 pairs", () => {
    const counts = tally([["a", 5], ["b", 3], ["c", 3], ["d", 1], [OTHER_MODELS, 2]]);
    expect(topPairs(counts, 2)).toEqual([["a", 5], ["b", 3], [OTHER_MODELS, 3 + 1 + 2]]);
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
