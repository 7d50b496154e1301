// Reading the members of config objects, with problems named by their field path
// ("rollouts[2].canaryBasisPoints: must be an integer 0..10000").
//
// An ObjectReader remembers which members it was asked for. In strict mode (the plugin configuration, written by
// hand, where typos happen) `finish()` refuses every other member as an unknown field; otherwise (the controller's
// table: an older filter must keep working with a newer controller) other members are ignored. So a parser that
// reads a new field has made it known, and there is no separate list of allowed keys to keep in step.
import { JsonKind, JsonValue } from "./json";

/** Every problem found in one config, in the order found. */
export class Problems {
  list: Array<string> = [];
  constructor(public readonly strict: bool) {}

  add(message: string): void {
    this.list.push(message);
  }

  get count(): i32 {
    return this.list.length;
  }

  join(): string {
    return this.list.join("; ");
  }
}

export class ObjectReader {
  private read: Array<string> = [];

  /** `path` ends with "." (or is "" at the top level): members are named path + key. */
  constructor(
    public readonly obj: JsonValue,
    public readonly path: string,
    public readonly problems: Problems,
  ) {}

  /** The member, or null when absent; asking for it makes it a known field. */
  get(key: string): JsonValue | null {
    if (!this.read.includes(key)) this.read.push(key);
    return this.obj.get(key);
  }

  has(key: string): bool {
    return this.get(key) !== null;
  }

  problem(key: string, message: string): void {
    this.problems.add(this.path + key + ": " + message);
  }

  /** A string member; null when absent (reported if required) or not a string (reported). */
  string(key: string, required: bool): string | null {
    const v = this.get(key);
    if (v === null) {
      if (required) this.problem(key, "is required");
      return null;
    }
    if (v.kind != JsonKind.String) {
      this.problem(key, "must be a string");
      return null;
    }
    return v.str;
  }

  /** An integer member in [min, max]; NaN when absent or invalid (reported). */
  integer(key: string, min: f64, max: f64): f64 {
    const v = this.get(key);
    if (v === null) return NaN;
    if (v.kind != JsonKind.Number || !isFinite(v.num) || Math.floor(v.num) != v.num || v.num < min || v.num > max) {
      this.problem(key, "must be an integer " + (<i64>min).toString() + ".." + (<i64>max).toString());
      return NaN;
    }
    return v.num;
  }

  /** A boolean member, or `fallback` when absent or not a boolean (reported). */
  boolean(key: string, fallback: bool): bool {
    const v = this.get(key);
    if (v === null) return fallback;
    if (v.kind != JsonKind.Bool) {
      this.problem(key, "must be a boolean");
      return fallback;
    }
    return v.bool;
  }

  /** An array of strings; empty when absent ("is required") or not an array (reported). */
  stringList(key: string): Array<string> {
    return stringListAt(this.get(key), this.path + key, this.problems);
  }

  /** A dotted path like "usage.prompt_tokens" split at the dots, or `fallback` when absent or malformed (reported). */
  fieldPath(key: string, fallback: Array<string>): Array<string> {
    const text = this.string(key, false);
    if (text === null) return fallback;
    const parts = text.split(".");
    for (let i = 0; i < parts.length; i++) {
      if (parts[i].length == 0) {
        this.problem(key, "must be a dotted path like output.label");
        return fallback;
      }
    }
    return parts;
  }

  /** fieldPath for a member without a default: null when absent. */
  optionalFieldPath(key: string): Array<string> | null {
    if (!this.has(key)) return null;
    return this.fieldPath(key, []);
  }

  /** Strict mode: every member not asked for is an unknown field. Call after reading all members. */
  finish(): void {
    if (!this.problems.strict) return;
    const keys = this.obj.keys;
    for (let i = 0; i < keys.length; i++) {
      if (!this.read.includes(keys[i])) this.problem(keys[i], "unknown field");
    }
  }
}

/**
 * A reader for `v` with members named `path` + key, or null when `v` is not an object (reported as
 * "<errorPath>: must be an object"; errorPath defaults to `path`, dot included, as the messages have always read).
 */
export function objectAt(v: JsonValue, path: string, problems: Problems, errorPath: string | null = null): ObjectReader | null {
  if (v.kind != JsonKind.Object) {
    problems.add((errorPath === null ? path : errorPath) + ": must be an object");
    return null;
  }
  return new ObjectReader(v, path, problems);
}

export function stringListAt(v: JsonValue | null, path: string, problems: Problems): Array<string> {
  const list = new Array<string>();
  if (v === null) {
    problems.add(path + ": is required");
    return list;
  }
  if (v.kind != JsonKind.Array) {
    problems.add(path + ": must be an array");
    return list;
  }
  for (let i = 0; i < v.items.length; i++) {
    const item = v.items[i];
    if (item.kind != JsonKind.String) problems.add(path + "[" + i.toString() + "]: must be a string");
    else list.push(item.str);
  }
  return list;
}

/** Header names as written in configs: lowercase token characters, 1..128. */
export function isLowerToken(s: string): bool {
  if (s.length == 0 || s.length > 128) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e;
    if (!ok) return false;
  }
  return true;
}

/** Segment names and values become parts of stat names: a-z, 0-9, '_' and '-', no dots. */
export function isStatToken(s: string): bool {
  if (s.length == 0 || s.length > 32) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f;
    if (!ok) return false;
  }
  return true;
}

/** DNS-label rollout names: they are embedded in Envoy stat names, so no dots. */
export function isRolloutName(s: string): bool {
  if (s.length == 0 || s.length > 63) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || (c == 0x2d && i > 0 && i < s.length - 1);
    if (!ok) return false;
  }
  return true;
}

/** Printable ASCII without spaces, 1..max: goes into a header value (a token) or is compared as written (a version). */
export function isPrintableToken(s: string, max: i32): bool {
  if (s.length == 0 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}
