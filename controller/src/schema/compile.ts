// Output schema compiler: a rollout's JSON Schema for model responses, checked against the subset the
// filter implements and turned into the compact form of compiled-format.ts.
//
// Supported subset (with the meaning of draft-06 to 2020-12; README "Output schema subset" says the same for users):
//   type               a name or a non-empty array of unique names: object, array, string, number, integer,
//                      boolean, null ("integer" accepts 1.0)
//   required           array of unique strings
//   properties         object of schemas
//   additionalProperties  boolean or schema
//   items              one schema for every element (the array/tuple form is refused)
//   enum, const        any JSON values, compared by deep equality (object key order and 1 vs 1.0 do not matter);
//                      enum non-empty, without duplicates
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum   finite numbers (the draft-04 boolean form is refused)
//   minLength, maxLength (Unicode code points), minItems, maxItems   non-negative integers
//   boolean schemas    true / false anywhere a schema goes
// Annotations, accepted and dropped: $id, $comment, title, description (strings), examples (an array),
// default. $schema, when given, must name a dialect in which every keyword above means what the filter does:
// draft-06, draft-07, 2019-09 or 2020-12 (DIALECTS); draft-04 and earlier (boolean exclusiveMinimum, no boolean
// schemas) and any other meta-schema (which may switch vocabularies off or give keywords another meaning) are
// refused. Every other keyword ($ref, oneOf, pattern, format, ...) is refused with its JSON pointer: a validator
// that silently skipped a constraint would report schema-valid responses that are not.
// Limits: subschemas nest at most MAX_SCHEMA_DEPTH deep, values at most MAX_VALUE_DEPTH, and the schema is
// at most MAX_SCHEMA_BYTES as JSON. Every problem is reported, not just the first.
import type { ErrorDetail } from "../errors.ts";
import {
  COMPILED_SCHEMA_VERSION,
  MAX_SCHEMA_BYTES,
  MAX_SCHEMA_DEPTH,
  MAX_VALUE_DEPTH,
  TYPE_BITS,
  type CompiledConstraints,
  type CompiledNode,
  type CompiledSchema,
  type JsonData,
  type SchemaTypeName,
} from "./compiled-format.ts";

export * from "./compiled-format.ts";

type CompileResult = { ok: true; compiled: CompiledSchema } | { ok: false; errors: ErrorDetail[] };

const ANNOTATION_KEYWORDS = new Set(["$id", "$comment", "title", "description", "examples", "default"]);

/**
 * The dialects (meta-schema URIs, as json-schema.org publishes them, http or https, with or without an empty
 * fragment) whose meaning of the subset's keywords is the one the filter implements.
 */
const DIALECTS: ReadonlyMap<string, string> = new Map([
  ["json-schema.org/draft-06/schema", "draft-06"],
  ["json-schema.org/draft-07/schema", "draft-07"],
  ["json-schema.org/draft/2019-09/schema", "2019-09"],
  ["json-schema.org/draft/2020-12/schema", "2020-12"],
]);
const DIALECT_NAMES = [...DIALECTS.values()].join(", ");
const NUMBER_KEYWORDS = { minimum: "ge", maximum: "le", exclusiveMinimum: "gt", exclusiveMaximum: "lt" } as const;
const COUNT_KEYWORDS = { minLength: "lmin", maxLength: "lmax", minItems: "imin", maxItems: "imax" } as const;
const TYPE_NAMES = Object.keys(TYPE_BITS).join(", ");

export function compileOutputSchema(schema: unknown): CompileResult {
  let serialized: string | undefined;
  try {
    serialized = JSON.stringify(schema);
  } catch (e) {
    const why = e instanceof RangeError ? "it nests too deeply" : e instanceof Error ? e.message : String(e);
    return { ok: false, errors: [{ path: "", reason: `must be JSON data: ${why}` }] };
  }
  if (serialized !== undefined) {
    const bytes = Buffer.byteLength(serialized, "utf8");
    if (bytes > MAX_SCHEMA_BYTES) {
      return { ok: false, errors: [{ path: "", reason: `is ${bytes} bytes as JSON; the limit is ${MAX_SCHEMA_BYTES}` }] };
    }
  }
  const errors: ErrorDetail[] = [];
  const root = compileNode(schema, "", 0, errors);
  if (errors.length > 0 || root === undefined) return { ok: false, errors };
  return { ok: true, compiled: { v: COMPILED_SCHEMA_VERSION, s: root } };
}

/** RFC 6901 escaping of one reference token. */
function pointerToken(name: string): string {
  return name.replace(/~/g, "~0").replace(/\//g, "~1");
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function compileNode(schema: unknown, path: string, depth: number, errors: ErrorDetail[]): CompiledNode | undefined {
  if (typeof schema === "boolean") return schema;
  if (!isPlainObject(schema)) {
    errors.push({ path, reason: "must be a schema (an object or a boolean)" });
    return undefined;
  }
  if (depth > MAX_SCHEMA_DEPTH) {
    errors.push({ path, reason: `subschemas nest deeper than ${MAX_SCHEMA_DEPTH} levels` });
    return undefined;
  }
  const out: CompiledConstraints = {};
  for (const keyword of Object.keys(schema)) {
    const value = schema[keyword];
    const at = `${path}/${pointerToken(keyword)}`;
    const fail = (reason: string) => errors.push({ path: at, reason });
    switch (keyword) {
      case "type": {
        const mask = compileType(value, at, errors);
        if (mask !== undefined) out.t = mask;
        break;
      }
      case "required": {
        const names = compileRequired(value, at, errors);
        if (names !== undefined && names.length > 0) out.r = names;
        break;
      }
      case "properties": {
        if (!isPlainObject(value)) {
          fail("must be an object of schemas");
          break;
        }
        const pairs: [string, CompiledNode][] = [];
        for (const name of Object.keys(value)) {
          const sub = compileNode(value[name], `${at}/${pointerToken(name)}`, depth + 1, errors);
          if (sub !== undefined) pairs.push([name, sub]);
        }
        if (pairs.length > 0) out.p = pairs;
        break;
      }
      case "additionalProperties": {
        const sub = compileNode(value, at, depth + 1, errors);
        if (sub !== undefined && sub !== true) out.a = sub;
        break;
      }
      case "items": {
        if (Array.isArray(value)) {
          fail("must be a single schema (the array form, tuple validation, is not in the supported subset)");
          break;
        }
        const sub = compileNode(value, at, depth + 1, errors);
        if (sub !== undefined && sub !== true) out.i = sub;
        break;
      }
      case "enum": {
        const values = compileEnum(value, at, errors);
        if (values !== undefined) out.e = values;
        break;
      }
      case "const": {
        if (checkJsonData(value, at, 0, errors)) out.c = value as JsonData;
        break;
      }
      case "minimum":
      case "maximum":
      case "exclusiveMinimum":
      case "exclusiveMaximum": {
        if (typeof value !== "number") {
          fail(typeof value === "boolean" ? "must be a number (the draft-04 boolean form is not supported)" : "must be a number");
        } else if (!Number.isFinite(value)) fail("must be a finite number");
        else out[NUMBER_KEYWORDS[keyword]] = value;
        break;
      }
      case "minLength":
      case "maxLength":
      case "minItems":
      case "maxItems": {
        if (typeof value !== "number" || !Number.isInteger(value) || value < 0) fail("must be a non-negative integer");
        else out[COUNT_KEYWORDS[keyword]] = value;
        break;
      }
      case "$schema": {
        checkDialect(value, at, errors);
        break;
      }
      default:
        if (ANNOTATION_KEYWORDS.has(keyword)) checkAnnotation(keyword, value, at, errors);
        else fail(`keyword '${keyword}' is not in the supported subset`);
    }
  }
  return Object.keys(out).length === 0 ? true : out;
}

function compileType(value: unknown, at: string, errors: ErrorDetail[]): number | undefined {
  const bitOf = (name: unknown): number | undefined =>
    typeof name === "string" && Object.hasOwn(TYPE_BITS, name) ? TYPE_BITS[name as SchemaTypeName] : undefined;
  if (typeof value === "string") {
    const bit = bitOf(value);
    if (bit === undefined) errors.push({ path: at, reason: `unknown type '${value}' (one of ${TYPE_NAMES})` });
    return bit;
  }
  if (!Array.isArray(value)) {
    errors.push({ path: at, reason: `must be a type name or an array of them (${TYPE_NAMES})` });
    return undefined;
  }
  if (value.length === 0) {
    errors.push({ path: at, reason: "must not be empty" });
    return undefined;
  }
  let mask = 0;
  let valid = true;
  value.forEach((name, i) => {
    const bit = bitOf(name);
    if (bit === undefined) {
      errors.push({ path: `${at}/${i}`, reason: typeof name === "string" ? `unknown type '${name}' (one of ${TYPE_NAMES})` : "must be a string" });
      valid = false;
    } else if ((mask & bit) !== 0) {
      errors.push({ path: `${at}/${i}`, reason: `duplicate type '${name}'` });
      valid = false;
    } else mask |= bit;
  });
  return valid ? mask : undefined;
}

function compileRequired(value: unknown, at: string, errors: ErrorDetail[]): string[] | undefined {
  if (!Array.isArray(value)) {
    errors.push({ path: at, reason: "must be an array of strings" });
    return undefined;
  }
  const seen = new Set<string>();
  let valid = true;
  value.forEach((name, i) => {
    if (typeof name !== "string") {
      errors.push({ path: `${at}/${i}`, reason: "must be a string" });
      valid = false;
    } else if (seen.has(name)) {
      errors.push({ path: `${at}/${i}`, reason: `duplicate '${name}'` });
      valid = false;
    } else seen.add(name);
  });
  return valid ? (value as string[]) : undefined;
}

function compileEnum(value: unknown, at: string, errors: ErrorDetail[]): JsonData[] | undefined {
  if (!Array.isArray(value)) {
    errors.push({ path: at, reason: "must be an array" });
    return undefined;
  }
  if (value.length === 0) {
    errors.push({ path: at, reason: "must not be empty (nothing would be valid)" });
    return undefined;
  }
  const firstIndexByCanonical = new Map<string, number>();
  let valid = true;
  value.forEach((item, i) => {
    if (!checkJsonData(item, `${at}/${i}`, 0, errors)) {
      valid = false;
      return;
    }
    const canonical = canonicalJson(item as JsonData);
    const first = firstIndexByCanonical.get(canonical);
    if (first !== undefined) {
      errors.push({ path: `${at}/${i}`, reason: `duplicate of ${at}/${first}` });
      valid = false;
    } else firstIndexByCanonical.set(canonical, i);
  });
  return valid ? (value as JsonData[]) : undefined;
}

/** $schema: one of DIALECTS, or refused with the reason (the validation would not mean what it says). */
function checkDialect(value: unknown, at: string, errors: ErrorDetail[]): void {
  if (typeof value !== "string") {
    errors.push({ path: at, reason: "must be a string (the URI of the schema's dialect)" });
    return;
  }
  const uri = /^https?:\/\/([^?#]*)#?$/.exec(value);
  const dialect = uri?.[1];
  if (dialect !== undefined && DIALECTS.has(dialect)) return;
  const early = dialect !== undefined && /^json-schema\.org\/draft-0([0-5])\/schema$/.exec(dialect);
  errors.push({
    path: at,
    reason: early
      ? `draft-0${early[1]} is not supported: its exclusiveMinimum/exclusiveMaximum are booleans and it has no boolean schemas, so the subset would not mean what the schema says; declare one of ${DIALECT_NAMES} (or leave $schema out)`
      : `'${value.length > 100 ? `${value.slice(0, 100)}...` : value}' is not a dialect the subset implements (another meta-schema may switch validation off or give keywords another meaning); declare one of ${DIALECT_NAMES} (or leave $schema out)`,
  });
}

function checkAnnotation(keyword: string, value: unknown, at: string, errors: ErrorDetail[]): void {
  if (keyword === "examples") {
    if (!Array.isArray(value)) errors.push({ path: at, reason: "must be an array" });
    else checkJsonData(value, at, 0, errors);
  } else if (keyword === "default") {
    checkJsonData(value, at, 0, errors);
  } else if (typeof value !== "string") {
    errors.push({ path: at, reason: "must be a string" });
  }
}

/** True when the value is JSON data (what JSON.parse can return), nesting at most MAX_VALUE_DEPTH. */
function checkJsonData(value: unknown, at: string, depth: number, errors: ErrorDetail[]): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") {
    if (Number.isFinite(value)) return true;
    errors.push({ path: at, reason: "must be JSON data (NaN and infinities are not JSON numbers)" });
    return false;
  }
  const isContainer = Array.isArray(value) || isPlainObject(value);
  if (!isContainer) {
    errors.push({ path: at, reason: `must be JSON data, not ${value === undefined ? "undefined" : typeof value}` });
    return false;
  }
  if (depth >= MAX_VALUE_DEPTH) {
    errors.push({ path: at, reason: `nests deeper than ${MAX_VALUE_DEPTH} levels` });
    return false;
  }
  let ok = true;
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      ok = checkJsonData(item, `${at}/${i}`, depth + 1, errors) && ok;
    });
  } else {
    for (const key of Object.keys(value)) ok = checkJsonData(value[key], `${at}/${pointerToken(key)}`, depth + 1, errors) && ok;
  }
  return ok;
}

/** JSON with object keys sorted, so values deep-equal in JSON Schema's sense (key order aside) serialize alike. */
function canonicalJson(value: JsonData): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
