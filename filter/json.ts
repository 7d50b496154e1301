// A strict JSON parser (RFC 8259) that never traps: every malformed input becomes an error result.
// It parses the plugin and controller configs and, on the data path, the models' answers (bytes from Envoy,
// possibly hostile), hence the depth limit (no unbounded recursion) and UTF-8 validation. Numbers get the value
// JavaScript's JSON.parse gives (correctly rounded, see decimal.ts), so schema bounds compare as in JavaScript.
import { parseJsonNumber } from "./decimal";

const EXACT_POWERS_OF_TEN: StaticArray<f64> = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

export const enum JsonKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

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

  has(key: string): bool {
    return this.get(key) !== null;
  }
}

export class JsonParseResult {
  /** The input nests deeper than the limit (told apart from malformed input: a different verdict for bodies). */
  tooDeep: bool = false;
  constructor(
    public value: JsonValue | null,
    public error: string,
    public offset: i32,
  ) {}
  get ok(): bool {
    return this.value !== null;
  }
}

class Parser {
  pos: i32 = 0;
  error: string = "";
  tooDeep: bool = false;
  constructor(
    public base: usize,
    public len: i32,
    public maxDepth: i32,
  ) {}

  fail(message: string): JsonValue | null {
    if (this.error.length == 0) this.error = message;
    return null;
  }

  failTooDeep(): JsonValue | null {
    if (this.error.length == 0) this.tooDeep = true;
    return this.fail("nesting deeper than " + this.maxDepth.toString());
  }

  peek(): i32 {
    return this.pos < this.len ? <i32>load<u8>(this.base + <usize>this.pos) : -1;
  }

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
    if (c == 0x74) {
      if (!this.expectWord("true")) return this.fail("invalid literal");
      return boolValue(true);
    }
    if (c == 0x66) {
      if (!this.expectWord("false")) return this.fail("invalid literal");
      return boolValue(false);
    }
    if (c == 0x6e) {
      if (!this.expectWord("null")) return this.fail("invalid literal");
      return NULL_VALUE;
    }
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
    if (this.peek() == 0x7d) {
      this.pos++;
      return obj;
    }
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
      if (c == 0x2c) {
        this.pos++;
        continue;
      }
      if (c == 0x7d) {
        this.pos++;
        return obj;
      }
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
    if (this.peek() == 0x5d) {
      this.pos++;
      return arr;
    }
    while (true) {
      const value = this.parseValue(depth);
      if (value === null) return null;
      arr.items.push(value);
      this.skipWhitespace();
      const c = this.peek();
      if (c == 0x2c) {
        this.pos++;
        continue;
      }
      if (c == 0x5d) {
        this.pos++;
        return arr;
      }
      return this.fail(c < 0 ? "unexpected end of input" : "expected ',' or ']'");
    }
  }

  parseNumber(): JsonValue | null {
    const start = this.pos;
    // Digits are gathered on the way: a number without exponent, at most 15 digits and at most 22 after the
    // point is exact as mantissa / 10^k (Clinger's fast path, one rounding), the same value decimal.ts gives.
    let mantissa: u64 = 0;
    let digits = 0;
    let fractionDigits = 0;
    const negative = this.peek() == 0x2d;
    if (negative) this.pos++;
    let c = this.peek();
    if (c == 0x30) {
      this.pos++;
    } else if (c >= 0x31 && c <= 0x39) {
      while (true) {
        c = this.peek();
        if (c < 0x30 || c > 0x39) break;
        mantissa = mantissa * 10 + <u64>(c - 0x30);
        digits++;
        this.pos++;
      }
    } else {
      return this.fail("invalid number");
    }
    if (this.peek() == 0x2e) {
      this.pos++;
      if (!(this.peek() >= 0x30 && this.peek() <= 0x39)) return this.fail("invalid number");
      while (true) {
        c = this.peek();
        if (c < 0x30 || c > 0x39) break;
        mantissa = mantissa * 10 + <u64>(c - 0x30);
        digits++;
        fractionDigits++;
        this.pos++;
      }
    }
    c = this.peek();
    let simple = digits <= 15 && fractionDigits <= 22;
    if (c == 0x65 || c == 0x45) {
      simple = false;
      this.pos++;
      c = this.peek();
      if (c == 0x2b || c == 0x2d) this.pos++;
      if (!(this.peek() >= 0x30 && this.peek() <= 0x39)) return this.fail("invalid number");
      while (this.peek() >= 0x30 && this.peek() <= 0x39) this.pos++;
    }
    const v = new JsonValue();
    v.kind = JsonKind.Number;
    if (simple) {
      // digits <= 15 (leading zeros of "0.000x" included), so the mantissa is exact in an f64.
      const magnitude = <f64>mantissa / unchecked(EXACT_POWERS_OF_TEN[fractionDigits]);
      v.num = negative ? -magnitude : magnitude;
    } else {
      v.num = parseJsonNumber(this.base + <usize>start, this.pos - start);
    }
    return v;
  }

  /** Parses a string starting at the opening quote; null (with error set) when malformed. */
  parseString(): string | null {
    this.pos++; // opening quote
    let runStart = this.pos;
    let parts: Array<string> | null = null;
    let ascii = true;
    while (true) {
      if (this.pos >= this.len) {
        this.fail("unterminated string");
        return null;
      }
      const c = <i32>load<u8>(this.base + <usize>this.pos);
      if (c == 0x22) {
        const runLength = this.pos - runStart;
        if (parts === null && ascii && runLength <= INTERN_MAX_LENGTH) {
          const interned = internAscii(this.base + <usize>runStart, runLength);
          this.pos++;
          return interned;
        }
        const tail = String.UTF8.decodeUnsafe(this.base + <usize>runStart, <usize>runLength);
        this.pos++;
        if (parts === null) return tail;
        parts.push(tail);
        return parts.join("");
      }
      if (c < 0x20) {
        this.fail("control character in string");
        return null;
      }
      if (c == 0x5c) {
        if (parts === null) parts = new Array<string>();
        parts.push(String.UTF8.decodeUnsafe(this.base + <usize>runStart, <usize>(this.pos - runStart)));
        this.pos++;
        const e = this.peek();
        this.pos++;
        if (e == 0x22) parts.push('"');
        else if (e == 0x5c) parts.push("\\");
        else if (e == 0x2f) parts.push("/");
        else if (e == 0x62) parts.push("\b");
        else if (e == 0x66) parts.push("\f");
        else if (e == 0x6e) parts.push("\n");
        else if (e == 0x72) parts.push("\r");
        else if (e == 0x74) parts.push("\t");
        else if (e == 0x75) {
          const unit = this.readHex4();
          if (unit < 0) {
            this.fail("invalid \\u escape");
            return null;
          }
          // Lone surrogates are kept as JavaScript keeps them, so verdicts match JSON.parse.
          parts.push(String.fromCharCode(unit));
        } else {
          this.fail("invalid escape");
          return null;
        }
        runStart = this.pos;
        continue;
      }
      if (c < 0x80) {
        this.pos++;
        continue;
      }
      ascii = false;
      const width = utf8SequenceLength(this.base, this.pos, this.len);
      if (width == 0) {
        this.fail("invalid UTF-8");
        return null;
      }
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

// Short ASCII strings (keys above all, and label-like values) repeat throughout an answer: one string per
// distinct text instead of one allocation per occurrence. Strings are immutable, so sharing is invisible.
const INTERN_MAX_LENGTH: i32 = 32;
const INTERN_SLOTS: i32 = 512;
const internTable = new StaticArray<string | null>(INTERN_SLOTS);

function internAscii(at: usize, length: i32): string {
  let hash: u32 = 2166136261;
  for (let i = 0; i < length; i++) hash = (hash ^ <u32>load<u8>(at + <usize>i)) * 16777619;
  const slot = <i32>(hash & <u32>(INTERN_SLOTS - 1));
  const cached = unchecked(internTable[slot]);
  if (cached !== null && cached.length == length) {
    const chars = changetype<usize>(cached);
    let same = true;
    for (let i = 0; i < length; i++) {
      if (<u32>load<u16>(chars + ((<usize>i) << 1)) != <u32>load<u8>(at + <usize>i)) {
        same = false;
        break;
      }
    }
    if (same) return cached;
  }
  const fresh = String.UTF8.decodeUnsafe(at, <usize>length);
  unchecked((internTable[slot] = fresh));
  return fresh;
}

// Values are never changed after parsing, so every true, false and null can be the same object.
const TRUE_VALUE = makeBool(true);
const FALSE_VALUE = makeBool(false);
const NULL_VALUE = new JsonValue();

function makeBool(b: bool): JsonValue {
  const v = new JsonValue();
  v.kind = JsonKind.Bool;
  v.bool = b;
  return v;
}

function boolValue(b: bool): JsonValue {
  return b ? TRUE_VALUE : FALSE_VALUE;
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
  return parseJsonRange(changetype<usize>(bytes), bytes.byteLength, maxDepth);
}

/**
 * Parses `len` bytes at `base` (inside a buffer the caller keeps alive for the call), so a line of a streamed
 * answer is read where it lies instead of copied out first.
 */
export function parseJsonRange(base: usize, len: i32, maxDepth: i32 = 64): JsonParseResult {
  const p = new Parser(base, len, maxDepth);
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
