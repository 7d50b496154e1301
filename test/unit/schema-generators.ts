// fast-check arbitraries for the differential test: schemas in the supported subset, and documents both
// near a schema (built from its keywords, then bent: missing members, wrong types, numbers at and one ulp
// past the bounds, strings one code point too long, extra and duplicate members) and random ones.
// Documents are a small tree rendered to text by hand, so the text can hold what JSON.stringify never
// writes: duplicate keys, "1.0", "1e400", \u escapes, exact halfway decimals.
import fc from "fast-check";

type Schema = boolean | Record<string, unknown>;

/** An object with its members in order, duplicates allowed. */
export class Members {
  constructor(readonly entries: [string, Doc][]) {}
}
/** A number written exactly as given. */
export class NumberText {
  constructor(readonly text: string) {}
}
/** A string written with every non-ASCII and control character as a \u escape. */
export class Escaped {
  constructor(readonly value: string) {}
}
export type Doc = null | boolean | number | string | Doc[] | Members | NumberText | Escaped;

export function render(doc: Doc): string {
  if (doc instanceof Members) return `{${doc.entries.map(([k, v]) => `${JSON.stringify(k)}:${render(v)}`).join(",")}}`;
  if (doc instanceof NumberText) return doc.text;
  if (doc instanceof Escaped) {
    return `"${Array.from({ length: doc.value.length }, (_, i) => {
      const unit = doc.value.charCodeAt(i);
      const c = doc.value[i];
      return unit < 0x20 || unit > 0x7e || c === '"' || c === "\\" ? `\\u${unit.toString(16).padStart(4, "0")}` : c;
    }).join("")}"`;
  }
  if (Array.isArray(doc)) return `[${doc.map(render).join(",")}]`;
  return JSON.stringify(doc);
}

const TYPES = ["object", "array", "string", "number", "integer", "boolean", "null"] as const;
/** Property names: escaping (/, ~), non-ASCII, empty, and names inherited by every JS object. ajv skips a
 *  property named "__proto__" in `properties` (its prototype-pollution guard), so that one only appears in
 *  documents and `required`, where ajv handles it. */
const PROPERTY_NAMES = ["label", "confidence", "a", "b", "x/y", "t~n", "", "é", "😀", "constructor", "toString"];
/** ajv 8.20 never reports a missing "" (`(data[""] === undefined) && (missing = "")` is falsy), so "" is left
 *  out here; the validator table covers it. */
const REQUIRED_NAMES = [...PROPERTY_NAMES.filter((n) => n !== ""), "__proto__", "k1"];
const WIDE_NAMES = Array.from({ length: 12 }, (_, i) => `k${i}`);
const EXTRA_NAMES = ["extra", "__proto__", "constructor", "hasOwnProperty", "x/y", "", "label", "k3"];
/** Code points that count differently in UTF-16 units and UTF-8 bytes; lone surrogates only as escapes. */
const CHARS = ["a", "Z", " ", "é", "中", "😀", "𝄞", "\u0301", "\n", '"', "\\", "\u0000", "\ud800", "\udfff"];
const INTERESTING_NUMBERS = [0, -0, 1, -1, 0.5, 0.1, 0.3, 0.30000000000000004, 1e-7, 100, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, 5e-324, -1e308];

const jsonScalar = fc.oneof(fc.constantFrom<Doc>(null, true, false, "", "approve", "😀", 0, 1, 1.5, -1), fc.double({ noNaN: true, noDefaultInfinity: true }));
const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: jsonScalar, weight: 4 },
  { arbitrary: fc.array(jsonScalar, { maxLength: 3 }), weight: 1 },
  { arbitrary: fc.dictionary(fc.constantFrom("a", "b", "c"), jsonScalar, { maxKeys: 2, noNullPrototype: true }), weight: 1 },
);

/** Deep equality as JSON Schema sees it: canonical JSON with sorted keys (0 and -0 both print "0"). */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

const boundNumber = fc.oneof(
  fc.constantFrom(...INTERESTING_NUMBERS.filter((n) => Math.abs(n) < 1e300)),
  fc.integer({ min: -50, max: 50 }),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
);
const lengthBound = fc.nat(5);

const scalarKeywordValues: Record<string, fc.Arbitrary<unknown>> = {
  type: fc.oneof(fc.constantFrom(...TYPES), fc.uniqueArray(fc.constantFrom(...TYPES), { minLength: 1, maxLength: 3 })),
  enum: fc.uniqueArray(jsonValue, { minLength: 1, maxLength: 4, selector: canonical }),
  const: jsonValue,
  minimum: boundNumber,
  maximum: boundNumber,
  exclusiveMinimum: boundNumber,
  exclusiveMaximum: boundNumber,
  minLength: lengthBound,
  maxLength: lengthBound,
  minItems: lengthBound,
  maxItems: lengthBound,
  title: fc.constant("t"),
  description: fc.constant("d"),
  $comment: fc.constant("c"),
  default: jsonValue,
  examples: fc.array(jsonValue, { maxLength: 2 }),
  $schema: fc.constant("http://json-schema.org/draft-07/schema#"),
};
/** A few keywords per node (type is usually one of them), so documents near the schema can still pass. */
const scalarKeywords = fc
  .tuple(fc.boolean(), fc.subarray(Object.keys(scalarKeywordValues), { maxLength: 3 }))
  .chain(([typed, keys]) => fc.record(Object.fromEntries([...new Set(typed ? ["type", ...keys] : keys)].map((k) => [k, scalarKeywordValues[k]]))));

/** Numbers with bounds, so documents at and one ulp past a bound come up often. */
const numericKeywords = fc.record(
  {
    type: fc.constantFrom<unknown>("number", "integer", ["integer", "string"]),
    minimum: boundNumber,
    maximum: boundNumber,
    exclusiveMinimum: boundNumber,
    exclusiveMaximum: boundNumber,
  },
  { requiredKeys: ["type"] },
);

export const schemaArbitrary: fc.Arbitrary<Schema> = fc.letrec<{ node: Schema }>((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { arbitrary: scalarKeywords, weight: 3 },
    { arbitrary: numericKeywords, weight: 1 },
    { arbitrary: fc.boolean(), weight: 1 },
    {
      weight: 3,
      arbitrary: fc
        .record(
          {
            properties: fc
              .oneof(
                fc.uniqueArray(fc.tuple(fc.constantFrom(...PROPERTY_NAMES), tie("node")), { maxLength: 4, selector: (p) => p[0] }),
                fc.uniqueArray(fc.tuple(fc.constantFrom(...WIDE_NAMES), tie("node")), { minLength: 9, maxLength: 12, selector: (p) => p[0] }),
              )
              .map((pairs) => Object.fromEntries(pairs)),
            required: fc.uniqueArray(fc.constantFrom(...REQUIRED_NAMES), { maxLength: 3 }),
            additionalProperties: fc.oneof(
              { arbitrary: fc.constant(false), weight: 2 },
              { arbitrary: fc.constant(true), weight: 1 },
              { arbitrary: tie("node"), weight: 1 },
            ),
            typeObject: fc.boolean(),
          },
          { requiredKeys: ["properties"] },
        )
        .map(({ typeObject, ...rest }) => (typeObject ? { type: "object", ...rest } : rest)),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({ items: tie("node"), minItems: lengthBound, maxItems: lengthBound, typeArray: fc.boolean() }, { requiredKeys: ["items"] })
        .map(({ typeArray, ...rest }) => (typeArray ? { type: "array", ...rest } : rest)),
    },
  ),
})).node;

// ---- documents ----

const nextUp = (x: number) => nudge(x, 1);
const nextDown = (x: number) => nudge(x, -1);
function nudge(x: number, direction: 1 | -1): number {
  if (x === 0) return direction * 5e-324;
  const bits = new BigInt64Array(new Float64Array([x]).buffer)[0];
  const step = x > 0 === direction > 0 ? 1n : -1n;
  return new Float64Array(new BigInt64Array([bits + step]).buffer)[0];
}

/** The exact decimal halfway between x and the next double up: JSON.parse rounds it to the even one. */
function halfwayAbove(x: number): NumberText {
  if (!Number.isFinite(x) || x === 0 || Math.abs(x) > 1e300 || Math.abs(x) < 1e-300) return new NumberText(JSON.stringify(x));
  const bits = new BigUint64Array(new Float64Array([Math.abs(x)]).buffer)[0];
  const m = (bits & ((1n << 52n) - 1n)) | (1n << 52n);
  const e2 = Number((bits >> 52n) & 0x7ffn) - 1076; // (2m+1) * 2^(e-1)
  const odd = 2n * m + 1n;
  let text: string;
  if (e2 >= 0) text = (odd << BigInt(e2)).toString();
  else {
    const digits = (odd * 5n ** BigInt(-e2)).toString().padStart(-e2 + 1, "0");
    text = `${digits.slice(0, digits.length + e2)}.${digits.slice(digits.length + e2)}`;
  }
  return new NumberText(x < 0 ? `-${text}` : text);
}

/** The same value written another way: exponent form, 25 significant digits, "1.0", or the shortest form. */
function numberSpellings(x: number): fc.Arbitrary<Doc> {
  const spellings: Doc[] = [x, new NumberText(x.toExponential()), new NumberText(x.toPrecision(25).replace("e+", "e"))];
  if (Number.isInteger(x) && Math.abs(x) < 1e21) spellings.push(new NumberText(`${x}.0`));
  if (Object.is(x, -0)) spellings.push(new NumberText("-0"), new NumberText("-0.0e5"));
  return fc.constantFrom(...spellings);
}

function numberArbitrary(schema: Record<string, unknown>, integer: boolean): fc.Arbitrary<Doc> {
  const bounds = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"].map((k) => schema[k]).filter((b): b is number => typeof b === "number");
  const near = bounds.flatMap((b) => [b, nextUp(b), nextDown(b), b + 1, b - 1, Math.floor(b), Math.ceil(b)]);
  const candidates = [...near, ...INTERESTING_NUMBERS].filter((n) => !integer || Number.isInteger(n));
  return fc.oneof(
    { arbitrary: fc.constantFrom(...(candidates.length ? candidates : [0])).chain(numberSpellings), weight: 6 },
    { arbitrary: fc.constantFrom(...(bounds.length ? bounds : [1])).map(halfwayAbove), weight: 1 },
    { arbitrary: fc.constantFrom(new NumberText("1e400"), new NumberText("-1e400"), new NumberText("1e-400"), new NumberText("4.9e-324")), weight: 1 },
    { arbitrary: integer ? fc.integer({ min: -100, max: 100 }) : fc.double({ noNaN: true, noDefaultInfinity: true }), weight: 2 },
  );
}

function stringArbitrary(schema: Record<string, unknown>): fc.Arbitrary<Doc> {
  const lengths = [schema.minLength, schema.maxLength].filter((n): n is number => typeof n === "number").flatMap((n) => [n - 1, n, n + 1]);
  return fc
    .tuple(fc.constantFrom(...lengths.filter((n) => n >= 0), 0, 1, 3), fc.infiniteStream(fc.constantFrom(...CHARS)), fc.boolean())
    .map(([length, chars, escaped]) => {
      const s = [...chars.take(length)].join("");
      return escaped ? new Escaped(s) : s;
    });
}

export const randomDocument: fc.Arbitrary<Doc> = fc.letrec<{ doc: Doc }>((tie) => ({
  doc: fc.oneof(
    { depthSize: "small" },
    { arbitrary: fc.oneof(jsonScalar, fc.constantFrom(...CHARS), numberArbitrary({}, false)), weight: 5 },
    { arbitrary: fc.array(tie("doc"), { maxLength: 4 }), weight: 1 },
    { arbitrary: fc.array(fc.tuple(fc.constantFrom(...PROPERTY_NAMES, ...EXTRA_NAMES), tie("doc")), { maxLength: 4 }).map((e) => new Members(e)), weight: 2 },
  ),
})).doc;

/** A document built from the schema's keywords, then bent in small ways (each choice a weighted coin). */
export function nearDocument(schema: unknown, depth = 0): fc.Arbitrary<Doc> {
  if (typeof schema !== "object" || schema === null || depth > 6) return randomDocument;
  const s = schema as Record<string, unknown>;
  const options: fc.WeightedArbitrary<Doc>[] = [{ arbitrary: randomDocument, weight: 1 }];
  if ("const" in s) options.push({ arbitrary: fc.constant(s.const as Doc), weight: 6 });
  if (Array.isArray(s.enum)) options.push({ arbitrary: fc.constantFrom(...(s.enum as Doc[])), weight: 6 });
  const declared = typeof s.type === "string" ? [s.type] : Array.isArray(s.type) ? (s.type as string[]) : [...TYPES];
  for (const type of declared) options.push({ arbitrary: typedDocument(type, s, depth), weight: 8 });
  return fc.oneof(...options);
}

function typedDocument(type: string, s: Record<string, unknown>, depth: number): fc.Arbitrary<Doc> {
  switch (type) {
    case "null":
      return fc.constant(null);
    case "boolean":
      return fc.boolean();
    case "integer":
      return numberArbitrary(s, true);
    case "number":
      return numberArbitrary(s, false);
    case "string":
      return stringArbitrary(s);
    case "array": {
      const min = typeof s.minItems === "number" ? s.minItems : 0;
      const max = typeof s.maxItems === "number" ? s.maxItems : 3;
      return fc.array(nearDocument(s.items ?? true, depth + 1), { minLength: Math.max(0, min - 1), maxLength: Math.min(Math.max(min, max) + 1, 6) });
    }
    default:
      return objectDocument(s, depth);
  }
}

function objectDocument(s: Record<string, unknown>, depth: number): fc.Arbitrary<Doc> {
  const properties = (s.properties ?? {}) as Record<string, unknown>;
  const required = (s.required ?? []) as string[];
  const names = [...new Set([...Object.keys(properties), ...required])];
  const member = (name: string) => {
    const value = nearDocument(name in properties ? properties[name] : true, depth + 1);
    const absentWeight = required.includes(name) ? 1 : 4;
    return fc.oneof({ arbitrary: value.map((v): [string, Doc][] => [[name, v]]), weight: 8 }, { arbitrary: fc.constant([]), weight: absentWeight });
  };
  const extra = fc.tuple(fc.constantFrom(...EXTRA_NAMES), nearDocument(s.additionalProperties ?? true, depth + 1));
  const duplicate = fc.tuple(fc.constantFrom(...(names.length ? names : ["a"])), randomDocument);
  return fc
    .tuple(
      fc.tuple(...names.map(member)),
      fc.oneof({ arbitrary: fc.constant([]), weight: 1 }, { arbitrary: fc.array(extra, { minLength: 1, maxLength: 2 }), weight: 1 }),
      fc.oneof({ arbitrary: fc.constant([]), weight: 4 }, { arbitrary: fc.array(duplicate, { minLength: 1, maxLength: 2 }), weight: 1 }),
      fc.boolean(),
      fc.nat(),
    )
    .map(([members, extras, duplicates, duplicatesFirst, rotation]) => {
      const own = members.flat() as [string, Doc][];
      const mixed = [...own, ...extras];
      const r = mixed.length ? rotation % mixed.length : 0;
      const ordered = [...mixed.slice(r), ...mixed.slice(0, r)];
      return new Members(duplicatesFirst ? [...duplicates, ...ordered] : [...ordered, ...duplicates]);
    });
}
