import { describe, expect, it } from "vitest";
import { compareCodePoints, deriveSessionId, getSessionId, hashRequestContent, normalizeContent } from "../src/session/hashing";
import { call } from "./support/http";
import vectorText from "./vectors/hash.json?raw";

/**
 * Vectors computed by Go itself (tools/hash-vectors, `npm run vectors:hash`):
 * inputs are [JSON string, repeat count] pieces, concatenated.
 */
type Pieces = [string, number][];
const vectors = JSON.parse(vectorText) as {
  hash: { name: string; content: Pieces; tools: string[]; hash: string }[];
  sessionId: { name: string; message: Pieces; id: string }[];
};
const build = (pieces: Pieces) => pieces.map(([s, n]) => s.repeat(n)).join("");
const vector = (name: string) => {
  const found = vectors.hash.find((v) => v.name === name);
  if (!found) throw new Error(`no vector named ${name}`);
  return { ...found, content: build(found.content) };
};
/** Inputs long enough to take minutes on a quadratic implementation; each has its own test. */
const LONG_RUNS = ["long whitespace run 500k", "long whitespace run 1M", "long whitespace run 8M"];

describe("deriveSessionId", () => {
  it("is the lowercase hex SHA-256 of the message's UTF-8 bytes", async () => {
    expect(await deriveSessionId("hello")).toBe("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    expect(await deriveSessionId("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(await deriveSessionId("héllo")).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("getSessionId", () => {
  it("reads the header case-insensitively from Headers and from plain objects", () => {
    expect(getSessionId(new Headers({ "X-Session-Id": "abc" }))).toBe("abc");
    expect(getSessionId({ "X-SESSION-ID": "abc" })).toBe("abc");
    expect(getSessionId({ "x-conversation": "c1" }, "X-Conversation")).toBe("c1");
  });

  it('answers "" when the header is absent', () => {
    expect(getSessionId(new Headers())).toBe("");
    expect(getSessionId({})).toBe("");
    expect(getSessionId(undefined)).toBe("");
  });
});

describe("hashRequestContent", () => {
  it("matches the reference vectors", async () => {
    expect(await hashRequestContent("  hello   world\n\tfoo  ")).toBe("43e514827182845c1c519a921b089ef5");
    expect(await hashRequestContent("fix the bug", ["write_file", "read_file"])).toBe("091f622a4f22136f896f0b310357249e");
  });

  it("collapses whitespace runs rather than the letter s (the reference's regex bug)", async () => {
    expect(normalizeContent("  less   stress\n")).toBe("less stress");
    expect(await hashRequestContent("less stress")).toBe(await hashRequestContent("  less \t\n stress "));
    expect(await hashRequestContent("less stress")).not.toBe(await hashRequestContent("le tre"));
  });

  it("trims like Go's strings.TrimSpace and collapses RE2's \\s class only", () => {
    expect(normalizeContent("\u00a0\u0085hi\u3000")).toBe("hi");
    expect(normalizeContent("\ufeffhi")).toBe("\ufeffhi");
    expect(normalizeContent("a\u00a0\u00a0b")).toBe("a\u00a0\u00a0b");
    expect(normalizeContent("a\r\n\f b")).toBe("a b");
  });

  it("keeps the first 500 UTF-8 bytes, even when the cut splits a character", async () => {
    const long = "x".repeat(499) + "é" + "tail";
    const bytes = new TextEncoder().encode(long).subarray(0, 500);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    const expected = [...digest.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
    expect(await hashRequestContent(long)).toBe(expected);
    expect(await hashRequestContent("x".repeat(500) + "anything")).toBe(await hashRequestContent("x".repeat(500)));
  });

  it("sorts tool names without mutating the caller's array", async () => {
    const tools = ["write_file", "read_file"];
    await hashRequestContent("fix the bug", tools);
    expect(tools).toEqual(["write_file", "read_file"]);
    expect(await hashRequestContent("a", ["b", "a"])).toBe(await hashRequestContent("a", ["a", "b"]));
    expect(await hashRequestContent("a", [])).toBe(await hashRequestContent("a"));
    expect(await hashRequestContent("a", ["x"])).not.toBe(await hashRequestContent("a"));
  });

  it("orders tool names by UTF-8 bytes, as Go's sort.Strings does", () => {
    // U+FF5E is above the surrogate range in UTF-16 but below U+1F600 in UTF-8.
    expect(["\u{1F600}", "\uff5e"].sort(compareCodePoints)).toEqual(["\uff5e", "\u{1F600}"]);
    expect(["b", "a", "ab"].sort(compareCodePoints)).toEqual(["a", "ab", "b"]);
  });
});

describe("compareCodePoints", () => {
  it("agrees with UTF-8 byte order on random strings, surrogates included", () => {
    const alphabet = ["a", "z", "\u00e9", "\ud7ff", "\ue000", "\uff5e", "\uffff", "\u{10000}", "\u{1F600}", "\u{10FFFF}"];
    const rand = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join("");
    const enc = new TextEncoder();
    const bytewise = (a: string, b: string) => {
      const x = enc.encode(a);
      const y = enc.encode(b);
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
      return x.length - y.length;
    };
    for (let i = 0; i < 2000; i++) {
      const [a, b] = [rand(1 + (i % 4)), rand(1 + ((i >> 2) % 4))];
      expect(Math.sign(compareCodePoints(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(Math.sign(bytewise(a, b)));
    }
  });
});

describe("Go vectors", () => {
  it("cover hand-picked edge cases and seeded-random inputs", () => {
    expect(vectors.hash.length).toBeGreaterThanOrEqual(500);
    expect(vectors.hash.filter((v) => v.name.startsWith("random")).length).toBeGreaterThanOrEqual(500);
  });

  it("hashRequestContent equals Go's HashRequestContent on every vector", async () => {
    const mismatches: string[] = [];
    for (const v of vectors.hash) {
      if (LONG_RUNS.includes(v.name)) continue;
      const got = await hashRequestContent(build(v.content), v.tools);
      if (got !== v.hash) mismatches.push(`${v.name}: got ${got}, Go ${v.hash}`);
    }
    expect(mismatches).toEqual([]);
  });

  it("sorts tool names holding lone surrogates as Go sorts their U+FFFD", async () => {
    for (const name of ["tools lone surrogate vs U+FFFE", "tools lone surrogate vs astral"]) {
      const v = vector(name);
      expect(await hashRequestContent(v.content, v.tools), name).toBe(v.hash);
    }
  });

  for (const name of LONG_RUNS) {
    it(`${name}: equals Go's value (a quadratic trim does not finish)`, async () => {
      const v = vector(name);
      expect(await hashRequestContent(v.content, v.tools)).toBe(v.hash);
    });
  }

  it("deriveSessionId equals Go's sha256 hex on every vector", async () => {
    for (const v of vectors.sessionId) expect(await deriveSessionId(build(v.message)), v.name).toBe(v.id);
  });

  it("POST /v1/hash answers Go's value for a 64,000-space run (the issue's 2.4 s request)", async () => {
    const v = vector("long whitespace run 64k");
    const res = await call("POST", "/v1/hash", { body: { content: v.content } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ hash: v.hash });
  });

  it("POST /v1/resolve records Go's hash for a last user message with a 500,000-space run (the issue's stalled request)", async () => {
    const v = vector("long whitespace run 500k");
    const sessionId = `hash-long-${crypto.randomUUID()}`;
    const body = { model: "my-model", messages: [{ role: "user", content: v.content }] };
    const res = await call("POST", "/v1/resolve", { body: { sessionId, body } });
    expect(res.status).toBe(200);
    const session = await call("GET", `/v1/sessions/${sessionId}`);
    expect(session.json.recentHashes).toEqual([v.hash]);
  });
});
