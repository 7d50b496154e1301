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

export interface ParseProblem {
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

export function parsePrometheusText(text: string): Exposition {
  const exposition: Exposition = { samples: [], types: new Map(), problems: [] };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    const trimmed = line.trim();
    if (trimmed === "") continue;
    if (trimmed.startsWith("#")) {
      readComment(trimmed, exposition.types);
      continue;
    }
    try {
      exposition.samples.push(new SampleLineReader(line).read());
    } catch (error) {
      exposition.problems.push({ line: i + 1, reason: (error as Error).message });
    }
  }
  return exposition;
}

function readComment(line: string, types: Map<string, string>): void {
  const parts = line.slice(1).trim().split(/\s+/);
  if (parts[0] === "TYPE" && parts.length >= 3) types.set(parts[1], parts[2].toLowerCase());
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
    const rest = this.line.slice(this.#pos).trim().split(/[ \t]+/);
    if (rest.length === 0 || rest[0] === "") throw new Error(`${name}: missing value`);
    if (rest.length > 2) throw new Error(`${name}: unexpected text after value and timestamp`);
    if (rest.length === 2 && !/^-?\d+$/.test(rest[1])) {
      throw new Error(`${name}: bad timestamp ${JSON.stringify(rest[1])}`);
    }
    return { name, labels, value: parseSampleValue(rest[0]) };
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
      value += escaped === "n" ? "\n" : escaped === "\\" || escaped === '"' ? escaped : "\\" + escaped;
    }
  }
}
