/**
 * The facade's shortcut for ID-only inputs (src/facade.ts `validIdOnly`) must
 * accept exactly what the command table's zod schema accepts, and answer the
 * same parsed input.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { commands } from "../src/commands";
import { validIdOnly } from "../src/facade";
import { parseInput } from "../src/schemas";

const schema = commands.getSession.input;

function viaSchema(input: unknown): unknown {
  try {
    return parseInput(schema, input);
  } catch {
    return undefined;
  }
}

const awkwardIds = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 300 }),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.string({ unit: fc.constantFrom("a", ".", "\u0000", "\u007f", "\u0085", "\uD800", "\uDC00", "\u200B", "\u202E", "\uFEFF", "😀", " "), maxLength: 260 }),
  fc.constantFrom("", ".", "..", "...", "a".repeat(256), "a".repeat(257), "😀".repeat(128), "😀".repeat(129)),
);

describe("validIdOnly agrees with the sessionId schema", () => {
  it("on any string ID", () => {
    fc.assert(
      fc.property(awkwardIds, (id) => {
        expect(validIdOnly({ id })).toEqual(viaSchema({ id }));
      }),
      { numRuns: 5000 },
    );
  });

  it("on inputs that are not an object with a string ID (the schema then words the error)", () => {
    for (const input of [undefined, null, "x", 1, [], Object.assign(["x"], { id: "x" }), {}, { id: 1 }, { id: null }, { id: ["x"] }]) {
      expect(validIdOnly(input)).toBeUndefined();
    }
  });

  it("drops fields other than the ID, as the schema does", () => {
    expect(validIdOnly({ id: "x", extra: 1 })).toEqual(viaSchema({ id: "x", extra: 1 }));
  });
});
