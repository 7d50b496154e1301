/**
 * A parser for the Prometheus text exposition format (0.0.4), the one Envoy's /stats/prometheus speaks.
 * A line it cannot read is reported and skipped rather than failing the whole scrape: one odd stat from
 * another filter must not blind the gates.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface ParseProblem {
  line: number;
  reason: string;
}

export interface Exposition {
  samples: Sample[];
  /** Metric family name -> declared type (counter, gauge, histogram, summary, untyped). */
  types: Map<string, string>;
  problems: ParseProblem[];
}

const NAME_START = /[a-zA-Z_:]/;
const NAME_CHAR = /[a-zA-Z0-9_:]/;
const LABEL_START = /[a-zA-Z_]/;
const LABEL_CHAR = /[a-zA-Z0-9_]/;

// One table lookup per character on the fast path: bit 1 = may start a metric name, 2 = may continue one,
// 4 = may start a label name, 8 = may continue one, 16 = a digit.
const CHAR_CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  CHAR_CLASS[c] =
    (NAME_START.test(ch) ? 1 : 0) |
    (NAME_CHAR.test(ch) ? 2 : 0) |
    (LABEL_START.test(ch) ? 4 : 0) |
    (LABEL_CHAR.test(ch) ? 8 : 0) |
    (c >= 48 && c <= 57 ? 16 : 0);
}
const charClass = (c: number): number => (c < 128 ? (CHAR_CLASS[c] ?? 0) : 0);

export function parsePrometheusText(text: string): Exposition {
  const exposition: Exposition = { samples: [], types: new Map(), problems: [] };
  const samples = exposition.samples;
  const reader = new FastLineReader();
  // Lines as text.split("\n") would give them, without building the array.
  let lineNumber = 0;
  for (let start = 0; start <= text.length; ) {
    let next = text.indexOf("\n", start);
    if (next === -1) next = text.length;
    lineNumber++;
    const end = next > start && text.charCodeAt(next - 1) === 13 /* \r */ ? next - 1 : next;
    if (end > start) {
      const sample = (charClass(text.charCodeAt(start)) & 1) !== 0 ? reader.read(text, start, end) : null;
      if (sample !== null) samples.push(sample);
      else readLineSlowly(text.slice(start, end), lineNumber, exposition);
    }
    start = next + 1;
  }
  return exposition;
}

/**
 * The samples of the lines that contain `needle`, read as parsePrometheusText reads them, in the same order;
 * every other line is skipped unread (so neither its problems nor its TYPE comments are reported). For a
 * caller that only wants series with a known label value: the value, quoted, is a needle every such line
 * contains.
 */
export function parseSamplesContaining(text: string, needle: string): Sample[] {
  const samples: Sample[] = [];
  const reader = new FastLineReader();
  for (let at = text.indexOf(needle); at !== -1; ) {
    const start = text.lastIndexOf("\n", at) + 1;
    let next = text.indexOf("\n", at);
    if (next === -1) next = text.length;
    const end = next > start && text.charCodeAt(next - 1) === 13 /* \r */ ? next - 1 : next;
    // A needle that contains "\r" or "\n" may end beyond the line; such a line only matches if it really holds it.
    if (at + needle.length <= end) {
      const sample = (charClass(text.charCodeAt(start)) & 1) !== 0 ? reader.read(text, start, end) : null;
      if (sample !== null) samples.push(sample);
      else {
        const line = text.slice(start, end);
        const trimmed = line.trim();
        if (trimmed !== "" && !trimmed.startsWith("#")) {
          try {
            samples.push(new SampleLineReader(line).read());
          } catch {
            // A problem, which the caller did not ask for.
          }
        }
      }
    }
    if (next >= text.length) break;
    at = text.indexOf(needle, next + 1);
  }
  return samples;
}

/** The original line-at-a-time reading: comments, odd whitespace, escapes, and every error message. */
function readLineSlowly(line: string, lineNumber: number, exposition: Exposition): void {
  const trimmed = line.trim();
  if (trimmed === "") return;
  if (trimmed.startsWith("#")) {
    readComment(trimmed, exposition.types);
    return;
  }
  try {
    exposition.samples.push(new SampleLineReader(line).read());
  } catch (error) {
    exposition.problems.push({ line: lineNumber, reason: (error as Error).message });
  }
}

/**
 * The common line, `name{label="value",...} value [timestamp]` with no spaces inside the braces, no escapes
 * and nothing but spaces and tabs between the parts, read with char codes. Anything else returns null and
 * the caller reads the line with SampleLineReader, which gives the same sample or the error. So this must
 * return a sample only where SampleLineReader would return an equal one.
 *
 * Consecutive lines mostly repeat the metric name, the label names and most label values (a histogram's
 * buckets differ only in `le`). The reader keeps the previous line's text up to its last label value: a
 * line that starts with the same text has the same name and labels up to there, taken over without reading
 * them again. Other names and values are reused when the text matches the previous line's at the same
 * label position, which saves allocations and hands the summing the same string objects.
 */
class FastLineReader {
  #name = "";
  /** Label names and values of recent lines, by position. */
  readonly #labelNames: string[] = [];
  readonly #labelValues: string[] = [];
  /** A line read without problems up to the opening quote of its last label value ("": none), and that label's position. */
  #prefix = "";
  #prefixLabel = 0;

  read(text: string, start: number, end: number): Sample | null {
    const sample = this.#read(text, start, end);
    if (sample === null) this.#prefix = "";
    return sample;
  }

  #read(text: string, start: number, end: number): Sample | null {
    const labels: Record<string, string> = {};
    const labelNames = this.#labelNames;
    const labelValues = this.#labelValues;
    let name = this.#name;
    let p: number;
    let c = -1;
    let index = 0;
    let atValue = false;
    let inLabels = false;
    const prefix = this.#prefix;
    const samePrefix = prefix.length > 0 && start + prefix.length <= end && text.slice(start, start + prefix.length) === prefix;
    if (samePrefix) {
      for (; index < this.#prefixLabel; index++) {
        const known = labelNames[index];
        const value = labelValues[index];
        if (known === undefined || value === undefined) return null; // the prefix was read with them; else the slow reader
        labels[known] = value;
      }
      p = start + prefix.length;
      inLabels = atValue = true;
    } else {
      if (
        name.length > 0 &&
        start + name.length <= end &&
        text.startsWith(name, start) &&
        (start + name.length === end || (charClass(text.charCodeAt(start + name.length)) & 2) === 0)
      ) {
        p = start + name.length;
      } else {
        p = start + 1;
        while (p < end && (charClass(text.charCodeAt(p)) & 2) !== 0) p++;
        this.#name = name = text.slice(start, p);
      }
      c = p < end ? text.charCodeAt(p) : -1;
      while (c === 32 || c === 9) c = ++p < end ? text.charCodeAt(p) : -1;
      if (c === 123 /* { */) {
        p++;
        inLabels = true;
      }
    }
    if (inLabels) {
      let lastValueStart = -1;
      let lastLabel = 0;
      for (; ; index++) {
        let label: string;
        if (atValue) {
          const known = labelNames[index];
          if (known === undefined) return null;
          label = known;
          atValue = false;
        } else {
          if (p >= end) return null;
          c = text.charCodeAt(p);
          if (c === 125 /* } */) break; // {} or a trailing comma
          if ((charClass(c) & 4) === 0) return null;
          // The label name, then =" right after it.
          const known = labelNames[index];
          if (known !== undefined && p + known.length + 1 < end && text.charCodeAt(p + known.length) === 61 && text.startsWith(known, p)) {
            label = known;
            p += known.length;
          } else {
            const labelStart = p++;
            while (p < end && (charClass(text.charCodeAt(p)) & 8) !== 0) p++;
            if (p + 1 >= end || text.charCodeAt(p) !== 61 /* = */) return null;
            labelNames[index] = label = text.slice(labelStart, p);
          }
          if (text.charCodeAt(p + 1) !== 34 /* " */) return null;
          p += 2;
        }
        // The value, up to the closing quote; an escape sends the line to the slow reader.
        lastValueStart = p;
        lastLabel = index;
        let value = labelValues[index];
        if (value !== undefined && p + value.length < end && text.charCodeAt(p + value.length) === 34 && text.startsWith(value, p)) {
          p += value.length;
        } else {
          const valueStart = p;
          for (;;) {
            if (p >= end) return null;
            c = text.charCodeAt(p);
            if (c === 34 /* " */) break;
            if (c === 92 /* \ */) return null;
            p++;
          }
          labelValues[index] = value = text.slice(valueStart, p);
        }
        labels[label] = value;
        if (++p >= end) return null;
        c = text.charCodeAt(p);
        if (c === 44 /* , */) {
          p++;
          continue;
        }
        if (c !== 125 /* } */) return null;
        break;
      }
      c = ++p < end ? text.charCodeAt(p) : -1;
      while (c === 32 || c === 9) c = ++p < end ? text.charCodeAt(p) : -1;
      if (!samePrefix) {
        // Every position up to lastLabel now holds this line's label, as a later line with this prefix needs.
        this.#prefix = lastValueStart < 0 ? "" : text.slice(start, lastValueStart);
        this.#prefixLabel = lastLabel;
      }
    } else {
      this.#prefix = "";
    }
    // The value: printable ASCII up to a space, a tab or the end (other whitespace: the slow path's trim).
    const valueStart = p;
    let digitsOnly = true;
    while (p < end) {
      c = text.charCodeAt(p);
      if (c <= 32 || c >= 127) break;
      if (c < 48 || c > 57) digitsOnly = false;
      p++;
    }
    const valueEnd = p;
    if (valueEnd === valueStart) return null;
    if (p < end) {
      if (c !== 32 && c !== 9) return null;
      while (p < end && (text.charCodeAt(p) === 32 || text.charCodeAt(p) === 9)) p++;
      if (p < end) {
        // A timestamp, -?\d+, then only spaces.
        if (text.charCodeAt(p) === 45 /* - */) p++;
        const digits = p;
        while (p < end && (charClass(text.charCodeAt(p)) & 16) !== 0) p++;
        if (p === digits) return null;
        while (p < end && (text.charCodeAt(p) === 32 || text.charCodeAt(p) === 9)) p++;
        if (p < end) return null;
      }
    }
    let value: number;
    if (digitsOnly && valueEnd - valueStart <= 15) {
      // Below 2^53, so exact, as Number() would give it.
      value = 0;
      for (let i = valueStart; i < valueEnd; i++) value = value * 10 + (text.charCodeAt(i) - 48);
    } else {
      try {
        value = parseSampleValue(text.slice(valueStart, valueEnd));
      } catch {
        return null;
      }
    }
    return { name, labels, value };
  }
}

function readComment(line: string, types: Map<string, string>): void {
  const parts = line.slice(1).trim().split(/\s+/);
  const [keyword, name, type] = parts;
  if (keyword === "TYPE" && name !== undefined && type !== undefined) types.set(name, type.toLowerCase());
  // HELP and free comments carry nothing we use.
}

/** Parses "+Inf", "-Inf", "NaN" (any case, as Go's ParseFloat does) and ordinary floats. */
export function parseSampleValue(token: string): number {
  const lower = token.toLowerCase();
  if (lower === "+inf" || lower === "inf" || lower === "+infinity" || lower === "infinity") return Infinity;
  if (lower === "-inf" || lower === "-infinity") return -Infinity;
  if (lower === "nan") return NaN;
  // Number() would accept "", "0x10" and " 1 "; the format allows none of them.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(token)) {
    throw new Error(`not a number: ${JSON.stringify(token)}`);
  }
  return Number(token);
}

class SampleLineReader {
  #pos = 0;

  constructor(private readonly line: string) {}

  read(): Sample {
    this.#skipSpaces();
    const name = this.#readName(NAME_START, NAME_CHAR, "metric name");
    this.#skipSpaces();
    const labels = this.#peek() === "{" ? this.#readLabels() : {};
    this.#skipSpaces();
    const rest = this.line
      .slice(this.#pos)
      .trim()
      .split(/[ \t]+/);
    const [value, timestamp, ...extra] = rest;
    if (value === undefined || value === "") throw new Error(`${name}: missing value`);
    if (extra.length > 0) throw new Error(`${name}: unexpected text after value and timestamp`);
    if (timestamp !== undefined && !/^-?\d+$/.test(timestamp)) {
      throw new Error(`${name}: bad timestamp ${JSON.stringify(timestamp)}`);
    }
    return { name, labels, value: parseSampleValue(value) };
  }

  #peek(): string {
    return this.line[this.#pos] ?? "";
  }

  #skipSpaces(): void {
    while (this.#peek() === " " || this.#peek() === "\t") this.#pos++;
  }

  #expect(char: string, what: string): void {
    if (this.#peek() !== char) {
      const found = this.#peek() === "" ? "end of line" : JSON.stringify(this.#peek());
      throw new Error(`expected ${what} at column ${this.#pos + 1}, found ${found}`);
    }
    this.#pos++;
  }

  #readName(start: RegExp, rest: RegExp, what: string): string {
    const from = this.#pos;
    if (!start.test(this.#peek())) throw new Error(`expected ${what} at column ${from + 1}`);
    this.#pos++;
    while (this.#peek() !== "" && rest.test(this.#peek())) this.#pos++;
    return this.line.slice(from, this.#pos);
  }

  #readLabels(): Record<string, string> {
    const labels: Record<string, string> = {};
    this.#expect("{", "'{'");
    for (;;) {
      this.#skipSpaces();
      if (this.#peek() === "}") break;
      const label = this.#readName(LABEL_START, LABEL_CHAR, "label name");
      this.#skipSpaces();
      this.#expect("=", "'='");
      this.#skipSpaces();
      labels[label] = this.#readQuoted();
      this.#skipSpaces();
      if (this.#peek() === ",") {
        this.#pos++;
        continue;
      }
      if (this.#peek() !== "}") this.#expect("}", "',' or '}'");
    }
    this.#pos++;
    return labels;
  }

  #readQuoted(): string {
    this.#expect('"', "'\"'");
    let value = "";
    for (;;) {
      const char = this.#peek();
      if (char === "") throw new Error("unterminated label value");
      this.#pos++;
      if (char === '"') return value;
      if (char !== "\\") {
        value += char;
        continue;
      }
      const escaped = this.#peek();
      if (escaped === "") throw new Error("unterminated label value");
      this.#pos++;
      // The format defines \\, \" and \n; keep any other escaped character as written.
      value += escaped === "n" ? "\n" : escaped === "\\" || escaped === '"' ? escaped : `\\${escaped}`;
    }
  }
}
