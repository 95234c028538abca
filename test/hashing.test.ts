import { describe, expect, it } from "vitest";
import { compareCodePoints, deriveSessionId, getSessionId, hashRequestContent, normalizeContent } from "../src/session/hashing";

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
