// Validates a parsed response body against a SchemaNode and returns the first failure as a reason (an index
// into SCHEMA_RESULT_NAMES, schema-results.ts, whose names are Envoy stat labels) plus the JSON pointer of the
// failing place.
//
// Verdicts match ajv (draft-07, strict: false, ownProperties: true) on JSON.parse of the same text; the
// differential test checks it. Semantics that needed care:
// - string length counts Unicode code points like ajv's ucs2length: a surrogate pair is one, a lone
//   surrogate is one;
// - "integer" is ajv's `!(x % 1) && !isNaN(x)`: 1.0 is an integer, and so are the infinities 1e400 parses to
//   (ajv without strictNumbers treats Infinity as a number and an integer; bounds still compare normally);
// - enum and const use deep equality: object key order does not matter, numbers compare by value (0 == -0);
// - with duplicate object keys only the last value counts, as with JSON.parse;
// - members are own properties only ("constructor" or "__proto__" are ordinary names).
// Order within a node: type, const, enum, number bounds, string length, item count, then members
// (required, properties, additionalProperties) and elements, in document order.
//
// Cost: one pass over the parts of the document the schema reaches, with hash lookups for big objects.
// Recursion follows the schema, whose depth the parser bounds (MAX_SCHEMA_DEPTH); deep equality follows an
// enum/const value, bounded by the compiled JSON's depth.
import { JsonKind, JsonValue, parseJsonBytes } from "./json";
import {
  REASON_BAD_LENGTH,
  REASON_MISSING_FIELD,
  REASON_NOT_ALLOWED,
  REASON_NOT_JSON,
  REASON_OUT_OF_RANGE,
  REASON_TOO_DEEP,
  REASON_UNEXPECTED_FIELD,
  REASON_WRONG_TYPE,
  SCHEMA_VALID,
} from "./schema-results";
import { MAX_SCHEMA_DEPTH, SchemaNode, TYPE_ANY, TYPE_ARRAY, TYPE_BOOLEAN, TYPE_INTEGER, TYPE_NULL, TYPE_NUMBER, TYPE_OBJECT, TYPE_STRING } from "./schema";

export class ValidationResult {
  constructor(
    /** SCHEMA_VALID, or the first failure's REASON_* (an index into SCHEMA_RESULT_NAMES). */
    public result: i32,
    /** RFC 6901 pointer into the document ("" = the whole document or valid). */
    public pointer: string,
  ) {}

  get valid(): bool {
    return this.result == SCHEMA_VALID;
  }
}

/** Objects with more keys than this get a key -> last index map instead of linear scans. */
const KEY_INDEX_THRESHOLD: i32 = 16;

export function validate(schema: SchemaNode, doc: JsonValue): ValidationResult {
  const v = new Validator();
  if (v.check(schema, doc, 0)) return new ValidationResult(SCHEMA_VALID, "");
  return new ValidationResult(v.reason, v.pointer());
}

/** Parses and validates a body in one call (the unit tests' entry; the data path parses once and calls validate). */
export function validateBody(schema: SchemaNode, body: ArrayBuffer, maxDepth: i32 = 64): ValidationResult {
  const parsed = parseJsonBytes(body, maxDepth);
  const doc = parsed.value;
  if (doc === null) return new ValidationResult(parsed.tooDeep ? REASON_TOO_DEEP : REASON_NOT_JSON, "");
  return validate(schema, doc);
}

class Validator {
  reason: i32 = SCHEMA_VALID;
  /** Reference tokens of the failing place, innermost first: pushed while the recursion unwinds. */
  tokensInnermostFirst: Array<string> = [];

  fail(reason: i32): bool {
    this.reason = reason;
    return false;
  }

  failAt(reason: i32, token: string): bool {
    this.reason = reason;
    this.tokensInnermostFirst.push(token);
    return false;
  }

  pointer(): string {
    let out = "";
    for (let i = this.tokensInnermostFirst.length - 1; i >= 0; i--) out += "/" + escapeToken(this.tokensInnermostFirst[i]);
    return out;
  }

  check(node: SchemaNode, value: JsonValue, depth: i32): bool {
    // The parser refuses deeper schemas; this only keeps the recursion bounded whatever happens.
    if (depth > MAX_SCHEMA_DEPTH + 1) return this.fail(REASON_TOO_DEEP);
    if (node.rejectsAll) return this.fail(REASON_NOT_ALLOWED);
    if (node.typeMask != TYPE_ANY && !hasType(node.typeMask, value)) return this.fail(REASON_WRONG_TYPE);
    const constValue = node.constValue;
    if (constValue !== null && !jsonEqual(value, constValue, 0)) return this.fail(REASON_NOT_ALLOWED);
    const enumValues = node.enumValues;
    if (enumValues !== null && !isOneOf(value, enumValues)) return this.fail(REASON_NOT_ALLOWED);
    const kind = value.kind;
    if (kind == JsonKind.Number) {
      const x = value.num;
      if (x < node.minimum || x > node.maximum || x <= node.exclusiveMinimum || x >= node.exclusiveMaximum) {
        return this.fail(REASON_OUT_OF_RANGE);
      }
    } else if (kind == JsonKind.String) {
      if (!lengthWithin(value.str, node.minLength, node.maxLength)) return this.fail(REASON_BAD_LENGTH);
    } else if (kind == JsonKind.Array) {
      const count = <f64>value.items.length;
      if (count < node.minItems || count > node.maxItems) return this.fail(REASON_BAD_LENGTH);
      const items = node.items;
      if (items !== null) {
        for (let i = 0; i < value.items.length; i++) {
          if (!this.check(items, value.items[i], depth + 1)) {
            this.tokensInnermostFirst.push(i.toString());
            return false;
          }
        }
      }
    } else if (kind == JsonKind.Object && node.checksMembers()) {
      return this.checkMembers(node, value, depth);
    }
    return true;
  }

  checkMembers(node: SchemaNode, obj: JsonValue, depth: i32): bool {
    const keys = obj.keys;
    const lastIndexOf = keys.length > KEY_INDEX_THRESHOLD ? indexKeys(keys) : null;
    for (let i = 0; i < node.required.length; i++) {
      const name = node.required[i];
      if (findMember(keys, name, lastIndexOf) < 0) return this.failAt(REASON_MISSING_FIELD, name);
    }
    for (let i = 0; i < node.propertyNames.length; i++) {
      const name = node.propertyNames[i];
      const at = findMember(keys, name, lastIndexOf);
      if (at >= 0 && !this.check(node.propertySchemas[i], obj.values[at], depth + 1)) {
        this.tokensInnermostFirst.push(name);
        return false;
      }
    }
    const additional = node.additionalProperties;
    if (additional === null) return true;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (node.declaresProperty(key) || !isLastOccurrence(keys, i, lastIndexOf)) continue;
      if (additional.rejectsAll) return this.failAt(REASON_UNEXPECTED_FIELD, key);
      if (!this.check(additional, obj.values[i], depth + 1)) {
        this.tokensInnermostFirst.push(key);
        return false;
      }
    }
    return true;
  }
}

function hasType(mask: i32, value: JsonValue): bool {
  const kind = value.kind;
  if (kind == JsonKind.Null) return (mask & TYPE_NULL) != 0;
  if (kind == JsonKind.Bool) return (mask & TYPE_BOOLEAN) != 0;
  if (kind == JsonKind.String) return (mask & TYPE_STRING) != 0;
  if (kind == JsonKind.Array) return (mask & TYPE_ARRAY) != 0;
  if (kind == JsonKind.Object) return (mask & TYPE_OBJECT) != 0;
  if ((mask & TYPE_NUMBER) != 0) return true;
  return (mask & TYPE_INTEGER) != 0 && isIntegral(value.num);
}

/** ajv's `!(x % 1) && !isNaN(x)`: true for whole numbers and for the infinities. */
function isIntegral(x: f64): bool {
  if (isNaN(x)) return false;
  return !isFinite(x) || Math.floor(x) == x;
}

/** Key -> index of its last occurrence (the one JSON.parse keeps). */
function indexKeys(keys: Array<string>): Map<string, i32> {
  const index = new Map<string, i32>();
  for (let i = 0; i < keys.length; i++) index.set(keys[i], i);
  return index;
}

function findMember(keys: Array<string>, name: string, lastIndexOf: Map<string, i32> | null): i32 {
  if (lastIndexOf !== null) return lastIndexOf.has(name) ? lastIndexOf.get(name) : -1;
  for (let i = keys.length - 1; i >= 0; i--) if (keys[i] == name) return i;
  return -1;
}

/** An earlier duplicate is not what JSON.parse keeps, so it is neither validated nor counted. */
function isLastOccurrence(keys: Array<string>, i: i32, lastIndexOf: Map<string, i32> | null): bool {
  const key = keys[i];
  if (lastIndexOf !== null) return lastIndexOf.has(key) && lastIndexOf.get(key) == i;
  for (let j = i + 1; j < keys.length; j++) if (keys[j] == key) return false;
  return true;
}

function isOneOf(value: JsonValue, candidates: Array<JsonValue>): bool {
  for (let i = 0; i < candidates.length; i++) if (jsonEqual(value, candidates[i], 0)) return true;
  return false;
}

/** Deep equality as ajv's fast-deep-equal sees JSON.parse results; `expected` comes from the schema. */
function jsonEqual(actual: JsonValue, expected: JsonValue, depth: i32): bool {
  if (actual.kind != expected.kind) return false;
  const kind = actual.kind;
  if (kind == JsonKind.Null) return true;
  if (kind == JsonKind.Bool) return actual.bool == expected.bool;
  if (kind == JsonKind.Number) return actual.num == expected.num;
  if (kind == JsonKind.String) return actual.str == expected.str;
  // Containers: the schema side's depth bounds this recursion; the extra guard costs nothing.
  if (depth > 256) return false;
  if (kind == JsonKind.Array) {
    if (actual.items.length != expected.items.length) return false;
    for (let i = 0; i < actual.items.length; i++) {
      if (!jsonEqual(actual.items[i], expected.items[i], depth + 1)) return false;
    }
    return true;
  }
  // Objects: same set of distinct keys, same (last) value per key. Duplicates make key counts useless.
  for (let i = 0; i < expected.keys.length; i++) {
    const mine = actual.get(expected.keys[i]);
    if (mine === null || !jsonEqual(mine, expected.values[i], depth + 1)) return false;
  }
  for (let i = 0; i < actual.keys.length; i++) if (!expected.has(actual.keys[i])) return false;
  return true;
}

/**
 * Code points as ajv's ucs2length counts them. A string of n UTF-16 units has between ceil(n/2) and n code
 * points, so most verdicts need no count, which keeps a 10 MB string against maxLength cheap.
 */
function lengthWithin(s: string, minLength: f64, maxLength: f64): bool {
  if (isNaN(minLength) && isNaN(maxLength)) return true;
  const units = s.length;
  const fewest = <f64>((units + 1) >> 1);
  if (<f64>units < minLength || fewest > maxLength) return false;
  if (!(fewest < minLength) && !(<f64>units > maxLength)) return true;
  const count = <f64>codePointLength(s);
  return !(count < minLength) && !(count > maxLength);
}

function codePointLength(s: string): i32 {
  const units = s.length;
  let count = 0;
  let i = 0;
  while (i < units) {
    const unit = s.charCodeAt(i++);
    count++;
    if (unit >= 0xd800 && unit <= 0xdbff && i < units && (s.charCodeAt(i) & 0xfc00) == 0xdc00) i++;
  }
  return count;
}

function escapeToken(token: string): string {
  if (token.indexOf("~") < 0 && token.indexOf("/") < 0) return token;
  return token.replaceAll("~", "~0").replaceAll("/", "~1");
}
