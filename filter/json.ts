// A strict JSON parser (RFC 8259) that never traps: every malformed input becomes an error result.
// Used for the plugin and controller configs; built to take model output bodies later, hence the
// depth limit (no unbounded recursion) and UTF-8 validation. Numbers get the value JavaScript's JSON.parse
// gives (correctly rounded, see decimal.ts), so schema bounds compare the way they do in JavaScript.
import { parseJsonNumber } from "./decimal";

export const enum JsonKind { Null = 0, Bool = 1, Number = 2, String = 3, Array = 4, Object = 5 }

// Scalars share these empty arrays instead of allocating three each: allocation dominated parse time.
// Only the parser fills arrays, and it gives every array and object value fresh ones.
const NO_VALUES = new Array<JsonValue>(0);
const NO_KEYS = new Array<string>(0);

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: Array<JsonValue> = NO_VALUES;
  keys: Array<string> = NO_KEYS;
  values: Array<JsonValue> = NO_VALUES;

  /** Member of an object; with duplicate keys the last one wins, as in JavaScript's JSON.parse. */
  get(key: string): JsonValue | null {
    if (this.kind != JsonKind.Object) return null;
    for (let i = this.keys.length - 1; i >= 0; i--) {
      if (this.keys[i] == key) return this.values[i];
    }
    return null;
  }

  has(key: string): bool { return this.get(key) !== null; }
}

export class JsonParseResult {
  /** The input nests deeper than the limit (told apart from malformed input: a different verdict for bodies). */
  tooDeep: bool = false;
  constructor(public value: JsonValue | null, public error: string, public offset: i32) {}
  get ok(): bool { return this.value !== null; }
}

class Parser {
  pos: i32 = 0;
  error: string = "";
  tooDeep: bool = false;
  constructor(public base: usize, public len: i32, public maxDepth: i32) {}

  fail(message: string): JsonValue | null {
    if (this.error.length == 0) this.error = message;
    return null;
  }

  failTooDeep(): JsonValue | null {
    if (this.error.length == 0) this.tooDeep = true;
    return this.fail("nesting deeper than " + this.maxDepth.toString());
  }

  peek(): i32 { return this.pos < this.len ? <i32>load<u8>(this.base + <usize>this.pos) : -1; }

  skipWhitespace(): void {
    while (this.pos < this.len) {
      const c = load<u8>(this.base + <usize>this.pos);
      if (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) this.pos++;
      else break;
    }
  }

  expectWord(word: string): bool {
    const n = word.length;
    if (this.pos + n > this.len) return false;
    for (let i = 0; i < n; i++) {
      if (<i32>load<u8>(this.base + <usize>(this.pos + i)) != word.charCodeAt(i)) return false;
    }
    this.pos += n;
    return true;
  }

  parseValue(depth: i32): JsonValue | null {
    this.skipWhitespace();
    const c = this.peek();
    if (c < 0) return this.fail("unexpected end of input");
    if (c == 0x7b) return this.parseObject(depth + 1);
    if (c == 0x5b) return this.parseArray(depth + 1);
    if (c == 0x22) {
      const s = this.parseString();
      if (s === null) return null;
      const v = new JsonValue();
      v.kind = JsonKind.String;
      v.str = s;
      return v;
    }
    if (c == 0x74) { if (!this.expectWord("true")) return this.fail("invalid literal"); return boolValue(true); }
    if (c == 0x66) { if (!this.expectWord("false")) return this.fail("invalid literal"); return boolValue(false); }
    if (c == 0x6e) { if (!this.expectWord("null")) return this.fail("invalid literal"); return new JsonValue(); }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
    return this.fail("unexpected character");
  }

  parseObject(depth: i32): JsonValue | null {
    if (depth > this.maxDepth) return this.failTooDeep();
    this.pos++; // {
    const obj = new JsonValue();
    obj.kind = JsonKind.Object;
    obj.keys = new Array<string>();
    obj.values = new Array<JsonValue>();
    this.skipWhitespace();
    if (this.peek() == 0x7d) { this.pos++; return obj; }
    while (true) {
      this.skipWhitespace();
      const k = this.peek();
      if (k < 0) return this.fail("unexpected end of input");
      if (k != 0x22) return this.fail("expected a string key");
      const key = this.parseString();
      if (key === null) return null;
      this.skipWhitespace();
      if (this.peek() != 0x3a) return this.fail("expected ':'");
      this.pos++;
      const value = this.parseValue(depth);
      if (value === null) return null;
      obj.keys.push(key);
      obj.values.push(value);
      this.skipWhitespace();
      const c = this.peek();
      if (c == 0x2c) { this.pos++; continue; }
      if (c == 0x7d) { this.pos++; return obj; }
      return this.fail(c < 0 ? "unexpected end of input" : "expected ',' or '}'");
    }
  }

  parseArray(depth: i32): JsonValue | null {
    if (depth > this.maxDepth) return this.failTooDeep();
    this.pos++; // [
    const arr = new JsonValue();
    arr.kind = JsonKind.Array;
    arr.items = new Array<JsonValue>();
    this.skipWhitespace();
    if (this.peek() == 0x5d) { this.pos++; return arr; }
    while (true) {
      const value = this.parseValue(depth);
      if (value === null) return null;
      arr.items.push(value);
      this.skipWhitespace();
      const c = this.peek();
      if (c == 0x2c) { this.pos++; continue; }
      if (c == 0x5d) { this.pos++; return arr; }
      return this.fail(c < 0 ? "unexpected end of input" : "expected ',' or ']'");
    }
  }

  parseNumber(): JsonValue | null {
    const start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    let c = this.peek();
    if (c == 0x30) {
      this.pos++;
    } else if (c >= 0x31 && c <= 0x39) {
      while (this.peek() >= 0x30 && this.peek() <= 0x39) this.pos++;
    } else {
      return this.fail("invalid number");
    }
    if (this.peek() == 0x2e) {
      this.pos++;
      if (!(this.peek() >= 0x30 && this.peek() <= 0x39)) return this.fail("invalid number");
      while (this.peek() >= 0x30 && this.peek() <= 0x39) this.pos++;
    }
    c = this.peek();
    if (c == 0x65 || c == 0x45) {
      this.pos++;
      c = this.peek();
      if (c == 0x2b || c == 0x2d) this.pos++;
      if (!(this.peek() >= 0x30 && this.peek() <= 0x39)) return this.fail("invalid number");
      while (this.peek() >= 0x30 && this.peek() <= 0x39) this.pos++;
    }
    const v = new JsonValue();
    v.kind = JsonKind.Number;
    v.num = parseJsonNumber(this.base + <usize>start, this.pos - start);
    return v;
  }

  /** Parses a string starting at the opening quote; null (with error set) when malformed. */
  parseString(): string | null {
    this.pos++; // opening quote
    let runStart = this.pos;
    let parts: Array<string> | null = null;
    while (true) {
      if (this.pos >= this.len) { this.fail("unterminated string"); return null; }
      const c = <i32>load<u8>(this.base + <usize>this.pos);
      if (c == 0x22) {
        const tail = String.UTF8.decodeUnsafe(this.base + <usize>runStart, <usize>(this.pos - runStart));
        this.pos++;
        if (parts === null) return tail;
        parts.push(tail);
        return parts.join("");
      }
      if (c < 0x20) { this.fail("control character in string"); return null; }
      if (c == 0x5c) {
        if (parts === null) parts = new Array<string>();
        parts.push(String.UTF8.decodeUnsafe(this.base + <usize>runStart, <usize>(this.pos - runStart)));
        this.pos++;
        const e = this.peek();
        this.pos++;
        if (e == 0x22) parts.push("\"");
        else if (e == 0x5c) parts.push("\\");
        else if (e == 0x2f) parts.push("/");
        else if (e == 0x62) parts.push("\b");
        else if (e == 0x66) parts.push("\f");
        else if (e == 0x6e) parts.push("\n");
        else if (e == 0x72) parts.push("\r");
        else if (e == 0x74) parts.push("\t");
        else if (e == 0x75) {
          const unit = this.readHex4();
          if (unit < 0) { this.fail("invalid \\u escape"); return null; }
          // Lone surrogates are kept as JavaScript keeps them, so verdicts match JSON.parse.
          parts.push(String.fromCharCode(unit));
        } else { this.fail("invalid escape"); return null; }
        runStart = this.pos;
        continue;
      }
      if (c < 0x80) { this.pos++; continue; }
      const width = utf8SequenceLength(this.base, this.pos, this.len);
      if (width == 0) { this.fail("invalid UTF-8"); return null; }
      this.pos += width;
    }
  }

  readHex4(): i32 {
    if (this.pos + 4 > this.len) return -1;
    let value = 0;
    for (let i = 0; i < 4; i++) {
      const c = <i32>load<u8>(this.base + <usize>(this.pos + i));
      let d = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      if (d < 0) return -1;
      value = (value << 4) | d;
    }
    this.pos += 4;
    return value;
  }
}

function boolValue(b: bool): JsonValue {
  const v = new JsonValue();
  v.kind = JsonKind.Bool;
  v.bool = b;
  return v;
}

function cont(base: usize, at: i32, len: i32): bool {
  return at < len && (load<u8>(base + <usize>at) & 0xc0) == 0x80;
}

/** Length of the well-formed UTF-8 sequence at `pos` (RFC 3629: no overlongs, no surrogates), 0 if ill-formed. */
function utf8SequenceLength(base: usize, pos: i32, len: i32): i32 {
  const b0 = <i32>load<u8>(base + <usize>pos);
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(base, pos + 1, len) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    if (!cont(base, pos + 1, len) || !cont(base, pos + 2, len)) return 0;
    const b1 = <i32>load<u8>(base + <usize>(pos + 1));
    if (b0 == 0xe0 && b1 < 0xa0) return 0;
    if (b0 == 0xed && b1 > 0x9f) return 0;
    return 3;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    if (!cont(base, pos + 1, len) || !cont(base, pos + 2, len) || !cont(base, pos + 3, len)) return 0;
    const b1 = <i32>load<u8>(base + <usize>(pos + 1));
    if (b0 == 0xf0 && b1 < 0x90) return 0;
    if (b0 == 0xf4 && b1 > 0x8f) return 0;
    return 4;
  }
  return 0;
}

export function parseJsonBytes(bytes: ArrayBuffer, maxDepth: i32 = 64): JsonParseResult {
  const p = new Parser(changetype<usize>(bytes), bytes.byteLength, maxDepth);
  const value = p.parseValue(0);
  if (value === null) {
    const failed = new JsonParseResult(null, p.error, p.pos);
    failed.tooDeep = p.tooDeep;
    return failed;
  }
  p.skipWhitespace();
  if (p.pos != p.len) return new JsonParseResult(null, "trailing characters after the JSON value", p.pos);
  return new JsonParseResult(value, "", p.pos);
}

export function parseJson(text: string, maxDepth: i32 = 64): JsonParseResult {
  return parseJsonBytes(String.UTF8.encode(text), maxDepth);
}
