// The compiled output schema: what the controller ships to the filter inside its config and the filter
// parses once (filter/schema.ts). JSON, compact and explicit: short keys, types as a bitmask, properties
// as [name, schema] pairs (ordered, and no object key can collide with anything), no annotations.
//
//   { "v": 1, "s": <node> }
//   <node> = true | false | {
//     "t": type bitmask (absent: any type)            "r": required names
//     "p": [[name, <node>], ...]  properties           "a": <node> additionalProperties (absent: allowed)
//     "i": <node> items                                "e": [values] enum       "c": value  const
//     "ge": minimum   "le": maximum   "gt": exclusiveMinimum   "lt": exclusiveMaximum
//     "lmin" / "lmax": minLength / maxLength (Unicode code points)   "imin" / "imax": minItems / maxItems
//   }
//
// `true` accepts anything, `false` nothing (JSON Schema's boolean schemas). A node with no constraint is
// written as `true`. The filter refuses unknown keys and other versions: an old filter must not ignore a
// constraint it does not know.
//
// Example: {"type":"object","required":["label"],"properties":{"label":{"enum":["approve","decline"]},
// "confidence":{"type":"number","minimum":0,"maximum":1}},"additionalProperties":false} compiles to
// {"v":1,"s":{"t":4,"r":["label"],"p":[["label",{"e":["approve","decline"]}],["confidence",{"t":16,"ge":0,"le":1}]],"a":false}}

export const COMPILED_SCHEMA_VERSION = 1;

/** Bits of "t". "number" accepts every number; "integer" only those with no fractional part. */
export const TYPE_BITS = {
  null: 1,
  boolean: 2,
  object: 4,
  array: 8,
  number: 16,
  integer: 32,
  string: 64,
} as const;

export type SchemaTypeName = keyof typeof TYPE_BITS;

/** Properties, items and additionalProperties each go one level down; the root is level 0. */
export const MAX_SCHEMA_DEPTH = 32;
/** Nesting of enum, const and default values (arrays and objects). */
export const MAX_VALUE_DEPTH = 32;
/** The schema as JSON.stringify writes it, in UTF-8 bytes. */
export const MAX_SCHEMA_BYTES = 64 * 1024;

export type JsonData = null | boolean | number | string | JsonData[] | { [key: string]: JsonData };

export type CompiledNode = boolean | CompiledConstraints;

export interface CompiledConstraints {
  t?: number;
  r?: string[];
  p?: [string, CompiledNode][];
  a?: CompiledNode;
  i?: CompiledNode;
  e?: JsonData[];
  c?: JsonData;
  ge?: number;
  le?: number;
  gt?: number;
  lt?: number;
  lmin?: number;
  lmax?: number;
  imin?: number;
  imax?: number;
}

export interface CompiledSchema {
  v: typeof COMPILED_SCHEMA_VERSION;
  s: CompiledNode;
}
