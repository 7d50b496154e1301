// The compiled output schema (controller/src/schema/compiled-format.ts), parsed once into typed nodes so
// validating a response body is plain field access. Every malformed input is an error result, never a trap:
// this runs on config from the controller or from Istio's pluginConfig, both outside the filter's control.
import { JsonKind, JsonValue, parseJson } from "./json";

export const TYPE_NULL: i32 = 1;
export const TYPE_BOOLEAN: i32 = 2;
export const TYPE_OBJECT: i32 = 4;
export const TYPE_ARRAY: i32 = 8;
export const TYPE_NUMBER: i32 = 16;
export const TYPE_INTEGER: i32 = 32;
export const TYPE_STRING: i32 = 64;
export const TYPE_ANY: i32 = 127;

export const COMPILED_SCHEMA_VERSION: i32 = 1;
/** Same limit as the controller's compiler; bounds the validator's recursion. */
export const MAX_SCHEMA_DEPTH: i32 = 32;
/**
 * JSON nesting of a compiled schema: the wrapper, 3 levels per subschema ("p" array, pair, node) and enum or
 * const values (at most 32 deep). Text embedding a compiled schema must allow this much more nesting.
 */
export const MAX_COMPILED_JSON_DEPTH: i32 = 160;
/** Above this many properties a node gets a hash index for additionalProperties lookups. */
const PROPERTY_INDEX_THRESHOLD: i32 = 8;

export class SchemaNode {
  /** The `false` schema: no value is valid here. */
  rejectsAll: bool = false;
  typeMask: i32 = TYPE_ANY;
  required: Array<string> = [];
  propertyNames: Array<string> = [];
  propertySchemas: Array<SchemaNode> = [];
  /** Property name -> index, for nodes with many properties; null means scan propertyNames. */
  propertyIndex: Map<string, i32> | null = null;
  /** null: any additional property is allowed. */
  additionalProperties: SchemaNode | null = null;
  /** null: any element is allowed. */
  items: SchemaNode | null = null;
  enumValues: Array<JsonValue> | null = null;
  constValue: JsonValue | null = null;
  // Bounds: NaN means "no bound". Every comparison with NaN is false, so an absent bound never fails.
  minimum: f64 = NaN;
  maximum: f64 = NaN;
  exclusiveMinimum: f64 = NaN;
  exclusiveMaximum: f64 = NaN;
  minLength: f64 = NaN;
  maxLength: f64 = NaN;
  minItems: f64 = NaN;
  maxItems: f64 = NaN;

  /** Whether an object value needs member-by-member work (lets the validator skip the loops). */
  checksMembers(): bool {
    return this.required.length > 0 || this.propertyNames.length > 0 || this.additionalProperties !== null;
  }

  declaresProperty(name: string): bool {
    const index = this.propertyIndex;
    if (index !== null) return index.has(name);
    for (let i = 0; i < this.propertyNames.length; i++) if (this.propertyNames[i] == name) return true;
    return false;
  }
}

export class CompiledSchemaParseResult {
  constructor(
    public schema: SchemaNode | null,
    public error: string,
  ) {}
  get ok(): bool {
    return this.schema !== null;
  }
}

/** Parses `{"v":1,"s":<node>}`; the error names the place in the compiled JSON ("s/p/0/1/t: ..."). */
export function parseCompiledSchema(json: JsonValue): CompiledSchemaParseResult {
  if (json.kind != JsonKind.Object) return new CompiledSchemaParseResult(null, "compiled schema: must be an object");
  for (let i = 0; i < json.keys.length; i++) {
    const key = json.keys[i];
    if (key != "v" && key != "s") return new CompiledSchemaParseResult(null, "compiled schema: unknown field " + key);
  }
  const version = json.get("v");
  if (version === null || version.kind != JsonKind.Number || version.num != <f64>COMPILED_SCHEMA_VERSION) {
    return new CompiledSchemaParseResult(null, "v: must be " + COMPILED_SCHEMA_VERSION.toString() + " (a compiled schema format this filter knows)");
  }
  const root = json.get("s");
  if (root === null) return new CompiledSchemaParseResult(null, "s: is required");
  const reader = new NodeReader();
  const node = reader.read(root, "s", 0);
  if (node === null) return new CompiledSchemaParseResult(null, reader.error);
  return new CompiledSchemaParseResult(node, "");
}

export function parseCompiledSchemaText(text: string): CompiledSchemaParseResult {
  const parsed = parseJson(text, MAX_COMPILED_JSON_DEPTH);
  const json = parsed.value;
  if (json === null) return new CompiledSchemaParseResult(null, "compiled schema: not JSON: " + parsed.error);
  return parseCompiledSchema(json);
}

class NodeReader {
  error: string = "";

  fail(at: string, message: string): SchemaNode | null {
    if (this.error.length == 0) this.error = at + ": " + message;
    return null;
  }

  read(json: JsonValue, at: string, depth: i32): SchemaNode | null {
    if (depth > MAX_SCHEMA_DEPTH) return this.fail(at, "subschemas nest deeper than " + MAX_SCHEMA_DEPTH.toString() + " levels");
    const node = new SchemaNode();
    if (json.kind == JsonKind.Bool) {
      node.rejectsAll = !json.bool;
      return node;
    }
    if (json.kind != JsonKind.Object) return this.fail(at, "must be a boolean or an object");
    for (let i = 0; i < json.keys.length; i++) {
      const key = json.keys[i];
      const value = json.values[i];
      const here = at + "/" + key;
      if (key == "t") {
        if (!isIntegerIn(value, 1, TYPE_ANY)) return this.fail(here, "must be a type bitmask 1..127");
        node.typeMask = <i32>value.num;
      } else if (key == "r") {
        if (value.kind != JsonKind.Array) return this.fail(here, "must be an array of strings");
        const names = new Array<string>();
        for (let j = 0; j < value.items.length; j++) {
          const item = value.items[j];
          if (item.kind != JsonKind.String) return this.fail(here + "/" + j.toString(), "must be a string");
          names.push(item.str);
        }
        node.required = names;
      } else if (key == "p") {
        if (!this.readProperties(node, value, here, depth)) return null;
      } else if (key == "a" || key == "i") {
        const sub = this.read(value, here, depth + 1);
        if (sub === null) return null;
        if (key == "a") node.additionalProperties = sub;
        else node.items = sub;
      } else if (key == "e") {
        if (value.kind != JsonKind.Array || value.items.length == 0) return this.fail(here, "must be a non-empty array");
        node.enumValues = value.items;
      } else if (key == "c") {
        node.constValue = value;
      } else if (key == "ge" || key == "le" || key == "gt" || key == "lt") {
        if (value.kind != JsonKind.Number || !isFinite(value.num)) return this.fail(here, "must be a finite number");
        if (key == "ge") node.minimum = value.num;
        else if (key == "le") node.maximum = value.num;
        else if (key == "gt") node.exclusiveMinimum = value.num;
        else node.exclusiveMaximum = value.num;
      } else if (key == "lmin" || key == "lmax" || key == "imin" || key == "imax") {
        if (!isIntegerIn(value, 0, F64.MAX_SAFE_INTEGER)) return this.fail(here, "must be a non-negative integer");
        if (key == "lmin") node.minLength = value.num;
        else if (key == "lmax") node.maxLength = value.num;
        else if (key == "imin") node.minItems = value.num;
        else node.maxItems = value.num;
      } else {
        return this.fail(here, "unknown field (a newer controller? refusing rather than skipping a constraint)");
      }
    }
    return node;
  }

  readProperties(node: SchemaNode, value: JsonValue, at: string, depth: i32): bool {
    if (value.kind != JsonKind.Array) {
      this.fail(at, "must be an array of [name, schema] pairs");
      return false;
    }
    const names = new Array<string>();
    const schemas = new Array<SchemaNode>();
    for (let j = 0; j < value.items.length; j++) {
      const pair = value.items[j];
      const here = at + "/" + j.toString();
      if (pair.kind != JsonKind.Array || pair.items.length != 2 || pair.items[0].kind != JsonKind.String) {
        this.fail(here, "must be a [name, schema] pair");
        return false;
      }
      const sub = this.read(pair.items[1], here + "/1", depth + 1);
      if (sub === null) return false;
      names.push(pair.items[0].str);
      schemas.push(sub);
    }
    node.propertyNames = names;
    node.propertySchemas = schemas;
    if (names.length > PROPERTY_INDEX_THRESHOLD) {
      const index = new Map<string, i32>();
      for (let j = 0; j < names.length; j++) index.set(names[j], j);
      node.propertyIndex = index;
    }
    return true;
  }
}

function isIntegerIn(value: JsonValue, low: f64, high: f64): bool {
  return value.kind == JsonKind.Number && value.num >= low && value.num <= high && Math.floor(value.num) == value.num;
}
