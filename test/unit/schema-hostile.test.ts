// Response bodies a model (or anything in its place) might send: each must get a verdict, never a trap
// (an AssemblyScript abort is a VM trap in Envoy). Where JSON.parse accepts the body, ajv's verdict is the
// reference; where it does not, the filter must say not_json. Timings are printed, not asserted: a 2-core CI
// machine is no benchmark, but a quadratic path would show up as seconds here.
import { beforeAll, describe, expect, it } from "vitest";
import { compiledText, loadFilterTesting, referenceAjv, type FilterTesting } from "./schema-harness.ts";

let filter: FilterTesting;
beforeAll(async () => {
  filter = await loadFilterTesting();
});

const ajv = referenceAjv();
const responseSchema = {
  type: "object",
  required: ["label", "confidence"],
  properties: { label: { enum: ["approve", "review", "decline"] }, confidence: { type: "number", minimum: 0, maximum: 1 } },
  additionalProperties: false,
};
const compiled = compiledText(responseSchema);
const bytes = (text: string) => new TextEncoder().encode(text);
const verdictOf = (body: Uint8Array, schema = compiled, maxDepth = 64) => filter.str("validateDocumentBytes", schema, body, maxDepth);

describe("hostile response bodies get a verdict", () => {
  it.each<[string, string, Uint8Array]>([
    ["an empty body", "not_json", bytes("")],
    ["only whitespace", "not_json", bytes(" \n\t")],
    ["a byte-order mark before the JSON", "not_json", bytes('\ufeff{"label":"approve","confidence":0.5}')],
    ["trailing garbage", "not_json", bytes('{"label":"approve","confidence":0.5}x')],
    ["two documents", "not_json", bytes('{"label":"approve","confidence":0.5} {}')],
    ["single quotes", "not_json", bytes("{'label':'approve'}")],
    ["a raw control character in a string", "not_json", bytes('{"label":"appr\u0001ove","confidence":0.5}')],
    ["NaN", "not_json", bytes('{"label":"approve","confidence":NaN}')],
    ["a leading plus", "not_json", bytes('{"label":"approve","confidence":+1}')],
    ["a NUL byte after the document", "not_json", new Uint8Array([...bytes('{"label":"approve","confidence":0.5}'), 0])],
    ["a bad escape", "not_json", bytes('{"label":"\\x41","confidence":0.5}')],
    ["a short \\u escape", "not_json", bytes('{"label":"\\u12","confidence":0.5}')],
  ])("%s -> %s", (_what, verdict, body) => {
    expect(verdictOf(body)).toBe(verdict);
    // ignoreBOM: keep the BOM, as Envoy hands over the bytes as they came (TextDecoder would drop it).
    expect(() => JSON.parse(new TextDecoder("utf-8", { ignoreBOM: true }).decode(body))).toThrow();
  });

  it("every truncation of a valid body is not_json", () => {
    const text = '{"label":"approve","confidence":0.25,"nested":[1,{"a":"😀"}]}';
    const schema = compiledText(true);
    expect(verdictOf(bytes(text), schema)).toBe("pass");
    const body = bytes(text);
    for (let end = 0; end < body.length; end++) expect(verdictOf(body.subarray(0, end), schema), `first ${end} bytes`).toBe("not_json");
  });

  it.each<[string, number[]]>([
    ["a lone continuation byte", [0x80]],
    ["0xff", [0xff]],
    ["an overlong '/'", [0xc0, 0xaf]],
    ["an overlong 3-byte form", [0xe0, 0x80, 0xaf]],
    ["a UTF-16 surrogate encoded in UTF-8", [0xed, 0xa0, 0x80]],
    ["a code point above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
    ["a 4-byte sequence cut short", [0xf0, 0x9f, 0x98]],
  ])("invalid UTF-8 in a string (%s) is not_json", (_what, invalid) => {
    const inString = new Uint8Array([...bytes('{"label":"'), ...invalid, ...bytes('","confidence":0.5}')]);
    const inKey = new Uint8Array([...bytes('{"'), ...invalid, ...bytes('":1}')]);
    expect(verdictOf(inString)).toBe("not_json");
    expect(verdictOf(inKey, compiledText(true))).toBe("not_json");
  });

  // JSON.parse and ajv accept a complete 10,000-deep document; the filter stops at its depth limit on purpose.
  it("10,000-deep nesting is too_deep, whether or not the document is complete", () => {
    const deep = "[".repeat(10_000) + "]".repeat(10_000);
    expect(verdictOf(bytes(deep), compiledText(true))).toBe("too_deep");
    expect(verdictOf(bytes('{"a":'.repeat(10_000)), compiledText({ type: "object" }))).toBe("too_deep");
    // Within the limit the same shape is fine; the limit is the caller's choice.
    expect(verdictOf(bytes("[".repeat(64) + "]".repeat(64)), compiledText(true))).toBe("pass");
    expect(verdictOf(bytes("[".repeat(65) + "]".repeat(65)), compiledText(true))).toBe("too_deep");
  });

  it("a 10 MB string: bad_length, pass, and code points counted when units alone cannot tell", () => {
    const ascii = "a".repeat(10_000_000);
    expect(verdictOf(bytes(`{"label":"${ascii}"}`), compiledText({ properties: { label: { maxLength: 100 } } }))).toBe("fail bad_length /label");
    expect(verdictOf(bytes(`{"label":"${ascii}","confidence":0.5}`))).toBe("fail not_allowed /label");
    const astral = "😀".repeat(2_500_000); // 10 MB of UTF-8, 5M UTF-16 units, 2.5M code points
    const exactly = compiledText({ type: "string", minLength: 2_500_000, maxLength: 2_500_000 });
    expect(verdictOf(bytes(JSON.stringify(astral)), exactly)).toBe("pass");
    expect(verdictOf(bytes(JSON.stringify(`${astral}a`)), exactly)).toBe("fail bad_length ");
    expect(ajv.validate({ type: "string", minLength: 2_500_000, maxLength: 2_500_000 }, astral)).toBe(true);
  });

  it("1e400 and friends: what JSON.parse makes of them, judged as ajv judges it", () => {
    const cases: [unknown, string, string][] = [
      [{ type: "number" }, "1e400", "pass"],
      [{ type: "integer" }, "-1e400", "pass"],
      [{ type: "number", maximum: 1e308 }, "1e400", "fail out_of_range "],
      [{ type: "number", minimum: 0 }, "-1e400", "fail out_of_range "],
      [{ type: "number", exclusiveMinimum: 0 }, "1e-400", "fail out_of_range "], // underflows to 0
      [{ type: "number", exclusiveMaximum: 0 }, "-1e-400", "fail out_of_range "], // -0
      [{ const: 0 }, "-1e-400", "pass"],
      [{ type: "number", exclusiveMaximum: 2 }, `1.${"9".repeat(1_000_000)}`, "fail out_of_range "], // a million 9s round to 2
      [{ type: "integer" }, `1${"0".repeat(400)}`, "pass"],
      [{ type: "integer", maximum: 1 }, `0.${"0".repeat(400)}1e401`, "pass"], // exactly 1
    ];
    for (const [schema, text, verdict] of cases) {
      const expected = verdict === "pass";
      expect(ajv.validate(schema as object, JSON.parse(text)), `ajv on ${text.slice(0, 30)}`).toBe(expected);
      expect(verdictOf(bytes(text), compiledText(schema)), text.slice(0, 30)).toBe(verdict);
    }
  });

  it("duplicate keys: the last value is the one validated, as JSON.parse keeps it", () => {
    const cases: [string, string][] = [
      ['{"label":"nonsense","label":"approve","confidence":0.5}', "pass"],
      ['{"label":"approve","label":"nonsense","confidence":0.5}', "fail not_allowed /label"],
      ['{"label":"approve","confidence":7,"confidence":0.5}', "pass"],
      ['{"label":"approve","confidence":0.5,"x":1,"x":2}', "fail unexpected_field /x"],
    ];
    for (const [text, verdict] of cases) {
      expect(ajv.validate(responseSchema, JSON.parse(text))).toBe(verdict === "pass");
      expect(verdictOf(bytes(text))).toBe(verdict);
    }
  });

  it("stays linear on big bodies: 200k keys, 100k array elements, 50k long-mantissa numbers", () => {
    const keys = `{${Array.from({ length: 200_000 }, (_, i) => `"k${i}":${i}`).join(",")},"label":"approve","confidence":0.5}`;
    expect(verdictOf(bytes(keys))).toBe("fail unexpected_field /k0");
    const open = compiledText({ required: ["label", "k199999"], properties: { k199999: { type: "integer" } } });
    expect(verdictOf(bytes(keys), open)).toBe("pass");
    const elements = `[${Array.from({ length: 100_000 }, () => '{"label":"review","confidence":0.75}').join(",")}]`;
    expect(verdictOf(bytes(elements), compiledText({ items: responseSchema }))).toBe("pass");
    const numbers = `[${Array.from({ length: 50_000 }, (_, i) => `1.23456789012345678901234567${i}e-300`).join(",")}]`;
    const items = compiledText({ items: { type: "number", exclusiveMinimum: 0 } });
    expect(verdictOf(bytes(numbers), items)).toBe("pass");
  });
});
