// The filter's validator, keyword by keyword (build/filter-testing.wasm): the exact verdict, reason and
// pointer, written by hand from the JSON Schema rules. Each pass/fail is also checked against ajv, except
// the rows marked as ajv's own bugs. Then the filter's parser of the compiled form, on malformed input.
import { beforeAll, describe, expect, it } from "vitest";
import { compiledText, filterVerdict, loadFilterTesting, referenceAjv, type FilterTesting } from "./schema-harness.ts";

let filter: FilterTesting;
beforeAll(async () => {
  filter = await loadFilterTesting();
});

type Row = [schema: unknown, document: string, verdict: string];
const ajv = referenceAjv();

function check([schema, document, verdict]: Row, ajvAgrees = true): void {
  expect(filterVerdict(filter, compiledText(schema), document)).toBe(verdict);
  if (ajvAgrees) expect(ajv.validate(schema as object, JSON.parse(document)), "ajv's verdict").toBe(verdict === "pass");
}

describe("validator, keyword by keyword", () => {
  it.each<Row>([
    [{ type: "string" }, '"a"', "pass"],
    [{ type: "string" }, "1", "fail wrong_type "],
    [{ type: "integer" }, "1.0", "pass"],
    [{ type: "integer" }, "1e300", "pass"],
    [{ type: "integer" }, "-0", "pass"],
    [{ type: "integer" }, "1.5", "fail wrong_type "],
    [{ type: "integer" }, "1.0000000000000002", "fail wrong_type "],
    [{ type: "integer" }, "1e400", "pass"],
    [{ type: "number" }, "-1e400", "pass"],
    [{ type: "number" }, "true", "fail wrong_type "],
    [{ type: ["string", "null"] }, "null", "pass"],
    [{ type: ["string", "null"] }, "0", "fail wrong_type "],
    [{ type: "object" }, "[]", "fail wrong_type "],
    [{ type: "array" }, "{}", "fail wrong_type "],
    [{ type: "boolean" }, "0", "fail wrong_type "],
    [{ type: "null" }, "false", "fail wrong_type "],
  ])("type %j on %s -> %s", (...row) => check(row));

  it.each<Row>([
    [{ required: ["label"] }, '{"label":null}', "pass"],
    [{ required: ["label"] }, "{}", "fail missing_field /label"],
    [{ required: ["label"] }, '{"Label":1}', "fail missing_field /label"],
    [{ required: ["label"] }, "[]", "pass"],
    [{ required: ["a/b", "t~"] }, '{"a/b":1}', "fail missing_field /t~0"],
    [{ required: ["constructor"] }, "{}", "fail missing_field /constructor"],
    [{ required: ["__proto__"] }, '{"__proto__":0}', "pass"],
  ])("required %j on %s -> %s", (...row) => check(row));

  it("required [''] on {} fails (ajv 8.20 never reports a missing '', see schema-generators.ts)", () => {
    check([{ required: [""] }, "{}", "fail missing_field /"], false);
  });

  it.each<Row>([
    [{ properties: { a: { type: "number" } } }, '{"a":"x"}', "fail wrong_type /a"],
    [{ properties: { a: { type: "number" } } }, "{}", "pass"],
    [{ properties: { a: { type: "number" } } }, '{"b":"x"}', "pass"],
    [{ properties: { a: { items: { properties: { "b~c/d": { type: "string" } } } } } }, '{"a":[{},{"b~c/d":1}]}', "fail wrong_type /a/1/b~0c~1d"],
    [{ properties: { a: false } }, '{"a":1}', "fail not_allowed /a"],
    [{ properties: { a: false } }, "{}", "pass"],
    [{ properties: { toString: { type: "string" } } }, "{}", "pass"],
    [{ properties: { "": { type: "string" } } }, '{"":1}', "fail wrong_type /"],
  ])("properties %j on %s -> %s", (...row) => check(row));

  it.each<Row>([
    [{ properties: { a: {} }, additionalProperties: false }, '{"a":1,"b":2}', "fail unexpected_field /b"],
    [{ properties: { a: {} }, additionalProperties: false }, '{"a":1}', "pass"],
    [{ additionalProperties: false }, '{"__proto__":1}', "fail unexpected_field /__proto__"],
    [{ additionalProperties: { type: "number" } }, '{"x":"s"}', "fail wrong_type /x"],
    [{ additionalProperties: { type: "number" } }, '{"x":1}', "pass"],
    [{ properties: { a: { type: "string" } }, additionalProperties: { type: "number" } }, '{"a":"s","b":1}', "pass"],
  ])("additionalProperties %j on %s -> %s", (...row) => check(row));

  it.each<Row>([
    [{ items: { type: "integer" } }, '[1,2,"3"]', "fail wrong_type /2"],
    [{ items: { type: "integer" } }, "[]", "pass"],
    [{ items: { type: "integer" } }, '{"0":"x"}', "pass"],
    [{ items: false }, "[1]", "fail not_allowed /0"],
  ])("items %j on %s -> %s", (...row) => check(row));

  it.each<Row>([
    [{ enum: ["approve", "review"] }, '"approve"', "pass"],
    [{ enum: ["approve", "review"] }, '"Approve"', "fail not_allowed "],
    [{ enum: ["approve", "review"] }, '"approve "', "fail not_allowed "],
    [{ enum: [{ a: 1, b: [1, 2] }] }, '{"b":[1,2.0],"a":1}', "pass"],
    [{ enum: [{ a: 1, b: [1, 2] }] }, '{"a":1,"b":[2,1]}', "fail not_allowed "],
    [{ enum: [{ a: 1, b: [1, 2] }] }, '{"a":1,"b":[1,2],"c":0}', "fail not_allowed "],
    [{ enum: [{ a: 1, b: [1, 2] }] }, '{"a":1}', "fail not_allowed "],
    [{ enum: [1] }, "1e0", "pass"],
    [{ enum: [1] }, '"1"', "fail not_allowed "],
    [{ enum: [0] }, "-0", "pass"],
    [{ enum: [null] }, "null", "pass"],
    [{ enum: [null] }, "false", "fail not_allowed "],
    [{ const: { a: [null] } }, '{"a":[null]}', "pass"],
    [{ const: { a: [null] } }, '{"a":[]}', "fail not_allowed "],
    [{ const: "😀" }, '"\\ud83d\\ude00"', "pass"],
    [{ const: { a: 1 } }, '{"a":2,"a":1}', "pass"],
    [{ const: { a: 1 } }, '{"a":1,"a":2}', "fail not_allowed "],
    [{ const: {} }, '{"a":1}', "fail not_allowed "],
  ])("enum/const %j on %s -> %s", (...row) => check(row));

  it.each<Row>([
    [{ minimum: 0, maximum: 1 }, "0", "pass"],
    [{ minimum: 0, maximum: 1 }, "-0", "pass"],
    [{ minimum: 0, maximum: 1 }, "1", "pass"],
    [{ minimum: 0, maximum: 1 }, "1.0000000000000002", "fail out_of_range "],
    [{ minimum: 0, maximum: 1 }, "-5e-324", "fail out_of_range "],
    [{ minimum: 0, maximum: 1 }, '"2"', "pass"],
    [{ exclusiveMinimum: 0, exclusiveMaximum: 1 }, "0", "fail out_of_range "],
    [{ exclusiveMinimum: 0, exclusiveMaximum: 1 }, "5e-324", "pass"],
    [{ exclusiveMinimum: 0, exclusiveMaximum: 1 }, "0.9999999999999999", "pass"],
    [{ exclusiveMinimum: 0, exclusiveMaximum: 1 }, "1", "fail out_of_range "],
    [{ maximum: 1e308 }, "1e400", "fail out_of_range "],
    [{ minimum: -1e308 }, "-1e400", "fail out_of_range "],
    [{ maximum: 0.1 }, "0.10000000000000001", "pass"], // the same double as 0.1
    [{ maximum: 0.1 }, "0.10000000000000002", "fail out_of_range "], // the next one
    // Exactly halfway between 0.1 and the next double: rounds to the even one, 0.1; a digit more rounds up.
    [{ maximum: 0.1 }, "0.100000000000000012490009027033011079765856266021728515625", "pass"],
    [{ maximum: 0.1 }, "0.1000000000000000124900090270330110797658562660217285156251", "fail out_of_range "],
  ])("bounds %j on %s -> %s", (...row) => check(row));

  it.each<Row>([
    [{ maxLength: 1 }, '"😀"', "pass"], // one code point, two UTF-16 units, four UTF-8 bytes
    [{ maxLength: 1 }, '"é"', "pass"],
    [{ maxLength: 1 }, '"ab"', "fail bad_length "],
    [{ maxLength: 1 }, '"\\ud83d"', "pass"],
    [{ minLength: 2 }, '"😀"', "fail bad_length "],
    [{ minLength: 2 }, '"\\ude00\\ud83d"', "pass"], // two lone surrogates, in the wrong order to pair
    [{ minLength: 2, maxLength: 2 }, '"e\u0301"', "pass"], // combining mark: two code points
    [{ minItems: 1, maxItems: 2 }, "[]", "fail bad_length "],
    [{ minItems: 1, maxItems: 2 }, "[1,2,3]", "fail bad_length "],
    [{ minItems: 1, maxItems: 2 }, "[1]", "pass"],
  ])("lengths %j on %s -> %s", (...row) => check(row));

  it.each<Row>([
    [false, "1", "fail not_allowed "],
    [true, '{"anything":[1]}', "pass"],
    // Within a node: members are checked after the node's own keywords, required before properties.
    [{ type: "object", required: ["a"], properties: { b: { type: "string" } } }, '{"b":1}', "fail missing_field /a"],
    [{ items: { enum: [1] }, maxItems: 1 }, "[2,2]", "fail bad_length "],
  ])("boolean schemas and order: %j on %s -> %s", (...row) => check(row));

  it("handles wide objects (hash lookups) like narrow ones", () => {
    const names = Array.from({ length: 12 }, (_, i) => `k${i}`);
    const schema = { properties: Object.fromEntries(names.map((n) => [n, { type: "integer" }])), required: ["k11"], additionalProperties: false };
    const doc = (extra: Record<string, unknown>) =>
      JSON.stringify({
        ...Object.fromEntries(names.map((n, i) => [n, i])),
        ...extra,
        ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i])),
      });
    check([schema, doc({}), "pass"]);
    check([schema, doc({ zz: 1 }), "fail unexpected_field /zz"]);
    check([schema, doc({ k11: "x" }), "fail wrong_type /k11"]);
    check([schema, JSON.stringify(Object.fromEntries(names.slice(0, 11).map((n) => [n, 1]))), "fail missing_field /k11"]);
    const manyDuplicates = `{${Array.from({ length: 30 }, () => '"k1":"x"').join(",")},"k1":1,"k11":2}`;
    check([schema, manyDuplicates, "pass"]);
  });
});

describe("filter's parser of the compiled form refuses malformed input", () => {
  const nestedItems = (levels: number): string => (levels === 0 ? "true" : `{"i":${nestedItems(levels - 1)}}`);
  it.each<[string, string, string]>([
    ["not JSON", "{", "compiled schema: not JSON: unexpected end of input"],
    ["not an object", "[]", "compiled schema: must be an object"],
    ["another version", '{"v":2,"s":true}', "v: must be 1 (a compiled schema format this filter knows)"],
    ["no schema", '{"v":1}', "s: is required"],
    ["an unknown top-level field", '{"v":1,"s":true,"x":1}', "compiled schema: unknown field x"],
    ["a node that is a number", '{"v":1,"s":3}', "s: must be a boolean or an object"],
    ["an empty type mask", '{"v":1,"s":{"t":0}}', "s/t: must be a type bitmask 1..127"],
    ["a fractional type mask", '{"v":1,"s":{"t":1.5}}', "s/t: must be a type bitmask 1..127"],
    ["an unknown keyword", '{"v":1,"s":{"pattern":"x"}}', "s/pattern: unknown field (a newer controller? refusing rather than skipping a constraint)"],
    ["a property without a schema", '{"v":1,"s":{"p":[["a"]]}}', "s/p/0: must be a [name, schema] pair"],
    ["a bad nested node", '{"v":1,"s":{"p":[["a",{"i":{"ge":"1"}}]]}}', "s/p/0/1/i/ge: must be a finite number"],
    ["a negative length", '{"v":1,"s":{"lmin":-1}}', "s/lmin: must be a non-negative integer"],
    ["an empty enum", '{"v":1,"s":{"e":[]}}', "s/e: must be a non-empty array"],
    ["a required entry that is not a string", '{"v":1,"s":{"r":[1]}}', "s/r/0: must be a string"],
    ["33 levels of subschemas", `{"v":1,"s":${nestedItems(33)}}`, `s${"/i".repeat(33)}: subschemas nest deeper than 32 levels`],
  ])("%s", (_what, compiled, error) => {
    expect(filter.str("compiledSchemaError", compiled)).toBe(error);
    expect(filter.str("validateDocument", compiled, "{}")).toBe(`schema_error: ${error}`);
  });
});
