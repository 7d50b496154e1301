// The controller's output schema compiler: what it accepts (and the compiled form it writes), what it
// refuses (every problem, each with its JSON pointer), and its limits. The compiled forms of the deepest
// schemas it accepts must also be accepted by the filter's parser (build/filter-testing.wasm).
import { beforeAll, describe, expect, it } from "vitest";
import { compileOutputSchema, MAX_SCHEMA_BYTES } from "../../controller/src/schema/compile.ts";
import { loadFilterTesting, type FilterTesting } from "./schema-harness.ts";

let filter: FilterTesting;
beforeAll(async () => {
  filter = await loadFilterTesting();
});

function errorsOf(schema: unknown) {
  const r = compileOutputSchema(schema);
  if (r.ok) throw new Error(`expected a refusal, got ${JSON.stringify(r.compiled)}`);
  return r.errors;
}

describe("compiler accepts the subset", () => {
  it.each<[string, unknown, unknown]>([
    ["true", true, true],
    ["false", false, false],
    ["an empty schema (as true)", {}, true],
    [
      "annotations only (dropped)",
      {
        $schema: "http://json-schema.org/draft-07/schema#",
        $id: "urn:x",
        title: "t",
        description: "d",
        examples: [1, { a: 1 }],
        default: { a: [1] },
        $comment: "c",
      },
      true,
    ],
    ["one type", { type: "string" }, { t: 64 }],
    ["a type list", { type: ["integer", "null"] }, { t: 33 }],
    ["every type", { type: ["object", "array", "string", "number", "integer", "boolean", "null"] }, { t: 127 }],
    [
      "the README example",
      {
        type: "object",
        required: ["label"],
        properties: { label: { enum: ["approve", "decline"] }, confidence: { type: "number", minimum: 0, maximum: 1 } },
        additionalProperties: false,
      },
      {
        t: 4,
        r: ["label"],
        p: [
          ["label", { e: ["approve", "decline"] }],
          ["confidence", { t: 16, ge: 0, le: 1 }],
        ],
        a: false,
      },
    ],
    [
      "bounds and lengths",
      { exclusiveMinimum: -1.5, exclusiveMaximum: 2, minLength: 0, maxLength: 3, minItems: 1, maxItems: 2 },
      { gt: -1.5, lt: 2, lmin: 0, lmax: 3, imin: 1, imax: 2 },
    ],
    [
      "nested arrays and objects",
      { type: "array", minItems: 1, items: { type: "object", properties: { a: { const: 1 }, b: true } } },
      {
        t: 8,
        imin: 1,
        i: {
          t: 4,
          p: [
            ["a", { c: 1 }],
            ["b", true],
          ],
        },
      },
    ],
    [
      "keyword names used as property names",
      { properties: { pattern: { type: "string" }, $ref: {}, required: false } },
      {
        p: [
          ["pattern", { t: 64 }],
          ["$ref", true],
          ["required", false],
        ],
      },
    ],
    [
      "additionalProperties true (dropped) and a schema",
      { properties: { a: { additionalProperties: true } }, additionalProperties: { type: "number" } },
      { p: [["a", true]], a: { t: 16 } },
    ],
    [
      "const null and structured enum values",
      { const: null, enum: [null, { a: 1, b: [2] }, { a: 2 }, "1", 1] },
      { c: null, e: [null, { a: 1, b: [2] }, { a: 2 }, "1", 1] },
    ],
    ["an empty required list (dropped)", { required: [] }, true],
  ])("%s", (_what, schema, compiledNode) => {
    expect(compileOutputSchema(schema)).toEqual({ ok: true, compiled: { v: 1, s: compiledNode } });
  });

  it("keeps a property named __proto__ as an ordinary name (JSON.parse makes it an own property)", () => {
    const r = compileOutputSchema(JSON.parse('{"properties":{"__proto__":{"type":"string"}},"required":["__proto__"]}'));
    expect(r.ok && JSON.stringify(r.compiled)).toBe('{"v":1,"s":{"p":[["__proto__",{"t":64}]],"r":["__proto__"]}}');
  });
});

describe("compiler refuses what it does not implement, naming the place", () => {
  const unsupported = [
    "pattern",
    "format",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "$ref",
    "$defs",
    "definitions",
    "patternProperties",
    "propertyNames",
    "uniqueItems",
    "multipleOf",
    "dependentRequired",
    "dependencies",
    "if",
    "then",
    "else",
    "contains",
    "additionalItems",
    "prefixItems",
    "minProperties",
    "maxProperties",
    "unevaluatedProperties",
    "nullable",
  ];
  it.each(unsupported)("%s, at the root and nested under properties, items and additionalProperties", (keyword) => {
    const schema = {
      [keyword]: 1,
      properties: { label: { [keyword]: 1 } },
      items: { [keyword]: 1 },
      additionalProperties: { [keyword]: 1 },
    };
    const reason = `keyword '${keyword}' is not in the supported subset`;
    expect(errorsOf(schema)).toEqual([
      { path: `/${keyword}`, reason },
      { path: `/properties/label/${keyword}`, reason },
      { path: `/items/${keyword}`, reason },
      { path: `/additionalProperties/${keyword}`, reason },
    ]);
  });

  it.each<[string, unknown, string, string]>([
    ["a string minimum", { minimum: "1" }, "/minimum", "must be a number"],
    ["a draft-04 boolean exclusiveMinimum", { exclusiveMinimum: true }, "/exclusiveMinimum", "must be a number (the draft-04 boolean form is not supported)"],
    ["an infinite maximum (YAML .inf)", { maximum: Infinity }, "/maximum", "must be a finite number"],
    ["a non-string required entry", { required: ["a", 1] }, "/required/1", "must be a string"],
    ["required as a string", { required: "a" }, "/required", "must be an array of strings"],
    ["a duplicate required entry", { required: ["a", "a"] }, "/required/1", "duplicate 'a'"],
    ["an unknown type", { type: "float" }, "/type", "unknown type 'float' (one of null, boolean, object, array, number, integer, string)"],
    ["an empty type list", { type: [] }, "/type", "must not be empty"],
    ["a duplicate type", { type: ["string", "string"] }, "/type/1", "duplicate type 'string'"],
    ["a non-string type entry", { type: ["string", 3] }, "/type/1", "must be a string"],
    ["a negative minLength", { minLength: -1 }, "/minLength", "must be a non-negative integer"],
    ["a fractional maxItems", { maxItems: 1.5 }, "/maxItems", "must be a non-negative integer"],
    ["a string minItems", { minItems: "2" }, "/minItems", "must be a non-negative integer"],
    ["tuple items", { items: [{}] }, "/items", "must be a single schema (the array form, tuple validation, is not in the supported subset)"],
    ["properties as an array", { properties: [] }, "/properties", "must be an object of schemas"],
    ["a property schema that is a number", { properties: { a: 3 } }, "/properties/a", "must be a schema (an object or a boolean)"],
    ["additionalProperties as a string", { additionalProperties: "no" }, "/additionalProperties", "must be a schema (an object or a boolean)"],
    ["an empty enum", { enum: [] }, "/enum", "must not be empty (nothing would be valid)"],
    ["enum as a string", { enum: "a" }, "/enum", "must be an array"],
    ["a duplicate enum value", { enum: [1, "1", 1] }, "/enum/2", "duplicate of /enum/0"],
    [
      "enum values equal but for key order",
      {
        enum: [
          { a: 1, b: 2 },
          { b: 2, a: 1 },
        ],
      },
      "/enum/1",
      "duplicate of /enum/0",
    ],
    ["enum values 0 and -0 (equal as JSON numbers)", { enum: [0, -0] }, "/enum/1", "duplicate of /enum/0"],
    ["a NaN const", { const: NaN }, "/const", "must be JSON data (NaN and infinities are not JSON numbers)"],
    ["an undefined const", { const: undefined }, "/const", "must be JSON data, not undefined"],
    ["a Date inside a const", { const: { at: new Date(0) } }, "/const/at", "must be JSON data, not object"],
    ["a numeric title", { title: 3 }, "/title", "must be a string"],
    ["examples as an object", { examples: {} }, "/examples", "must be an array"],
    ["a number as the schema", 3, "", "must be a schema (an object or a boolean)"],
    ["null as the schema", null, "", "must be a schema (an object or a boolean)"],
    ["an array as the schema", [], "", "must be a schema (an object or a boolean)"],
    [
      "'/' and '~' in a property name",
      { properties: { "a/b~c": { format: "x" } } },
      "/properties/a~1b~0c/format",
      "keyword 'format' is not in the supported subset",
    ],
  ])("%s", (_what, schema, path, reason) => {
    expect(errorsOf(schema)).toEqual([{ path, reason }]);
  });

  it("reports every problem at once, in document order", () => {
    const schema = {
      type: "object",
      required: ["label", 7],
      properties: {
        label: { type: "string", pattern: "^[a-z]+$", minLength: -1 },
        score: { type: "numbr", minimum: "0" },
      },
      oneOf: [{}],
      items: [{}],
    };
    expect(errorsOf(schema)).toEqual([
      { path: "/required/1", reason: "must be a string" },
      { path: "/properties/label/pattern", reason: "keyword 'pattern' is not in the supported subset" },
      { path: "/properties/label/minLength", reason: "must be a non-negative integer" },
      { path: "/properties/score/type", reason: "unknown type 'numbr' (one of null, boolean, object, array, number, integer, string)" },
      { path: "/properties/score/minimum", reason: "must be a number" },
      { path: "/oneOf", reason: "keyword 'oneOf' is not in the supported subset" },
      { path: "/items", reason: "must be a single schema (the array form, tuple validation, is not in the supported subset)" },
    ]);
  });
});

describe("$schema: the dialects whose meaning the subset implements", () => {
  it.each([
    "http://json-schema.org/draft-06/schema#",
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-07/schema",
    "https://json-schema.org/draft-07/schema#",
    "https://json-schema.org/draft/2019-09/schema",
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2020-12/schema#",
  ])("accepts %s, at the root and in a subschema", (dialect) => {
    const r = compileOutputSchema({ $schema: dialect, type: "object", properties: { a: { $schema: dialect, maximum: 1 } } });
    expect(r).toEqual({ ok: true, compiled: { v: 1, s: { t: 4, p: [["a", { le: 1 }]] } } });
  });

  it.each<[string, RegExp]>([
    ["http://json-schema.org/draft-04/schema#", /^draft-04 is not supported: its exclusiveMinimum\/exclusiveMaximum are booleans/],
    ["http://json-schema.org/draft-03/schema#", /^draft-03 is not supported/],
    ["https://example.com/meta/no-validation", /^'https:\/\/example\.com\/meta\/no-validation' is not a dialect the subset implements/],
    // The unversioned alias means whatever json-schema.org calls latest.
    ["http://json-schema.org/schema#", /is not a dialect the subset implements/],
    ["http://json-schema.org/draft-07/schema#/definitions/x", /is not a dialect the subset implements/],
    ["draft-07", /is not a dialect the subset implements/],
  ])("refuses %s with its pointer and the dialects it takes", (dialect, reason) => {
    const errors = errorsOf({ $schema: dialect, properties: { a: { $schema: dialect, type: "string" } } });
    expect(errors).toEqual([
      { path: "/$schema", reason: expect.stringMatching(reason) },
      { path: "/properties/a/$schema", reason: expect.stringMatching(reason) },
    ]);
    expect(errors[0].reason).toMatch(/declare one of draft-06, draft-07, 2019-09, 2020-12 \(or leave \$schema out\)$/);
  });

  it("refuses a $schema that is not a string", () => {
    expect(errorsOf({ $schema: 7 })).toEqual([{ path: "/$schema", reason: "must be a string (the URI of the schema's dialect)" }]);
  });

  it("reports a refused dialect beside the schema's other problems, all at once", () => {
    expect(errorsOf({ $schema: "http://json-schema.org/draft-04/schema#", exclusiveMinimum: true }).map((e) => e.path)).toEqual([
      "/$schema",
      "/exclusiveMinimum",
    ]);
  });
});

describe("compiler limits", () => {
  const nestedProperties = (levels: number, leaf: unknown): unknown => (levels === 0 ? leaf : { properties: { x: nestedProperties(levels - 1, leaf) } });
  const nestedArrays = (levels: number): unknown => (levels === 0 ? "v" : [nestedArrays(levels - 1)]);

  it("accepts 32 levels of subschemas with a 32-deep enum value at the bottom, and so does the filter", () => {
    for (const schema of [
      nestedProperties(32, { enum: [nestedArrays(31)] }),
      { items: nestedProperties(30, { additionalProperties: { const: nestedArrays(31) } }) }, // 1 + 30 + 1 levels
    ]) {
      const r = compileOutputSchema(schema);
      expect(r.ok ? [] : r.errors).toEqual([]);
      if (r.ok) expect(filter.str("compiledSchemaError", JSON.stringify(r.compiled))).toBe("");
    }
  });

  it("refuses 33 levels of subschemas at the level that is too deep", () => {
    expect(errorsOf(nestedProperties(33, { type: "string" }))).toEqual([{ path: "/properties/x".repeat(33), reason: "subschemas nest deeper than 32 levels" }]);
  });

  it("refuses values nested deeper than 32 levels", () => {
    expect(errorsOf({ const: nestedArrays(33) })).toEqual([{ path: `/const${"/0".repeat(32)}`, reason: "nests deeper than 32 levels" }]);
  });

  it("refuses a schema over 64 KiB as JSON, before looking inside", () => {
    const schema = { enum: Array.from({ length: 7000 }, (_, i) => `value-${i}`), pattern: "x" };
    const bytes = Buffer.byteLength(JSON.stringify(schema));
    expect(bytes).toBeGreaterThan(MAX_SCHEMA_BYTES);
    expect(errorsOf(schema)).toEqual([{ path: "", reason: `is ${bytes} bytes as JSON; the limit is 65536` }]);
  });

  it("refuses what is not JSON data at all: a cycle, a BigInt", () => {
    const cyclic: Record<string, unknown> = { type: "object" };
    cyclic.properties = { self: cyclic };
    for (const schema of [cyclic, { minimum: 1n }]) {
      const errors = errorsOf(schema);
      expect(errors).toHaveLength(1);
      expect(errors[0].path).toBe("");
      expect(errors[0].reason).toMatch(/^must be JSON data: /);
    }
  });
});
