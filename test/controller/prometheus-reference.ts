// The Prometheus text parser and the summing as they were before they were rewritten for speed (commit
// 40f1e85, controller/src/metrics/prometheus-text.ts and rollout-counts.ts), verbatim except for the names.
// Two users: prometheus-text-differential.test.ts (the new code must give exactly what this gives) and
// bench/gates.ts (the baseline its parse + sum figure is a ratio against).
// Do not "fix" anything here: the new code must match this, quirks included.
import { DISTINGUISHING_LABELS, LABELS, SERIES, SERIES_PREFIX, VALUE_HISTOGRAMS } from "../../controller/src/metrics/envoy-series.ts";
import type { Exposition, Sample } from "../../controller/src/metrics/prometheus-text.ts";
import {
  RESPONSE_CLASSES,
  VARIANTS,
  emptyRolloutCounts,
  emptyVariantCounts,
  type ResponseClass,
  type RolloutCounts,
  type SliceCounts,
  type VariantCounts,
} from "../../controller/src/metrics/provider.ts";

// ---- prometheus-text.ts ----

const NAME_START = /[a-zA-Z_:]/;
const NAME_CHAR = /[a-zA-Z0-9_:]/;
const LABEL_START = /[a-zA-Z_]/;
const LABEL_CHAR = /[a-zA-Z0-9_]/;

export function referenceParse(text: string): Exposition {
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
function referenceParseSampleValue(token: string): number {
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
    if (rest.length === 0 || rest[0] === "") throw new Error(`${name}: missing value`);
    if (rest.length > 2) throw new Error(`${name}: unexpected text after value and timestamp`);
    if (rest.length === 2 && !/^-?\d+$/.test(rest[1])) {
      throw new Error(`${name}: bad timestamp ${JSON.stringify(rest[1])}`);
    }
    return { name, labels, value: referenceParseSampleValue(rest[0]) };
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

// ---- rollout-counts.ts ----

type CountedVariant = "stable" | "canary" | "shadow";
const COUNTED_VARIANTS: readonly CountedVariant[] = [...VARIANTS, "shadow"];
const isCountedVariant = (value: string | undefined): value is CountedVariant => (COUNTED_VARIANTS as readonly string[]).includes(value ?? "");

/** "confidence_milli" for "modelroll_confidence_milli_bucket", with the part; null for other series. */
function valueHistogramPart(name: string): { base: string; part: "bucket" | "sum" | "count" } | null {
  for (const base of VALUE_HISTOGRAMS) {
    const full = SERIES_PREFIX + base;
    if (name === `${full}_bucket`) return { base, part: "bucket" };
    if (name === `${full}_sum`) return { base, part: "sum" };
    if (name === `${full}_count`) return { base, part: "count" };
  }
  return null;
}
const isResponseClass = (value: string | undefined): value is ResponseClass => (RESPONSE_CLASSES as readonly string[]).includes(value ?? "");

/** One slice's counts being summed, with its histogram buckets keyed by bound until the end. */
class SliceAccumulator {
  readonly counts: VariantCounts = emptyVariantCounts();
  readonly buckets = new Map<number, number>();
  readonly valueBuckets = new Map<string, Map<number, number>>();
  hasCountSeries = false;

  addOther(sample: Sample): void {
    const target = this.counts;
    const hist = valueHistogramPart(sample.name);
    if (hist) {
      const h = (target.histograms[hist.base] ??= { buckets: [], sum: 0, count: 0 });
      if (hist.part === "sum") h.sum += sample.value;
      else if (hist.part === "count") h.count += sample.value;
      else {
        const bound = readBound(sample.labels[LABELS.upperBound]);
        if (bound === null) return;
        let m = this.valueBuckets.get(hist.base);
        if (!m) this.valueBuckets.set(hist.base, (m = new Map()));
        m.set(bound, (m.get(bound) ?? 0) + sample.value);
      }
      return;
    }
    if (!sample.name.startsWith(SERIES_PREFIX)) return;
    let key = sample.name.slice(SERIES_PREFIX.length);
    for (const label of DISTINGUISHING_LABELS) {
      const value = sample.labels[label];
      if (value !== undefined) key += `{${label.slice(SERIES_PREFIX.length)}=${value}}`;
    }
    target.counters[key] = (target.counters[key] ?? 0) + sample.value;
  }

  add(sample: Sample): void {
    const target = this.counts;
    switch (sample.name) {
      case SERIES.requests:
        target.requests += sample.value;
        break;
      case SERIES.responses: {
        const responseClass = sample.labels[LABELS.responseClass];
        if (isResponseClass(responseClass)) target.responses[responseClass] += sample.value;
        break;
      }
      case SERIES.latencyBucket: {
        const bound = readBound(sample.labels[LABELS.upperBound]);
        if (bound !== null) this.buckets.set(bound, (this.buckets.get(bound) ?? 0) + sample.value);
        break;
      }
      case SERIES.latencySum:
        target.latency.sumUs += sample.value;
        break;
      case SERIES.latencyCount:
        target.latency.count += sample.value;
        this.hasCountSeries = true;
        break;
      default:
        this.addOther(sample);
    }
  }

  finish(): VariantCounts {
    for (const [base, m] of this.valueBuckets) {
      const h = (this.counts.histograms[base] ??= { buckets: [], sum: 0, count: 0 });
      h.buckets = [...m].map(([upperBound, cumulativeCount]) => ({ upperBound, cumulativeCount })).sort((a, b) => a.upperBound - b.upperBound);
    }
    const latency = this.counts.latency;
    latency.bucketsUs = [...this.buckets].map(([upperBound, cumulativeCount]) => ({ upperBound, cumulativeCount })).sort((a, b) => a.upperBound - b.upperBound);
    const infBucket = latency.bucketsUs.find((b) => b.upperBound === Infinity);
    if (!this.hasCountSeries && infBucket) latency.count = infBucket.cumulativeCount;
    // Without a +Inf bucket no quantile can be placed; the _count series knows the total.
    if (!infBucket && latency.count > 0 && latency.bucketsUs.length > 0) {
      latency.bucketsUs.push({ upperBound: Infinity, cumulativeCount: latency.count });
    }
    return this.counts;
  }
}

/**
 * Adds up one rollout's series from any number of scrapes (several Envoys: same series summed).
 * A series with a segment label counts for that segment value only; one without counts for the variant
 * overall. Labels we do not know (another Envoy's, a future one) are summed over.
 */
type Slice = Record<CountedVariant, SliceAccumulator>;
const newSlice = (): Slice => ({ stable: new SliceAccumulator(), canary: new SliceAccumulator(), shadow: new SliceAccumulator() });

function finishSlice(slice: Slice, seen: Set<SliceAccumulator>): SliceCounts {
  const out: SliceCounts = { stable: slice.stable.finish(), canary: slice.canary.finish() };
  if (seen.has(slice.shadow)) out.shadow = slice.shadow.finish();
  return out;
}

export function referenceRolloutCounts(samples: Iterable<Sample>, rollout: string): RolloutCounts {
  const overall = newSlice();
  const bySegment = new Map<string, Map<string, Slice>>();
  const seenShadow = new Set<SliceAccumulator>();

  for (const sample of samples) {
    if (sample.labels[LABELS.rollout] !== rollout) continue;
    const variant = sample.labels[LABELS.variant];
    // A NaN or infinite counter says nothing countable; leaving it out keeps the sums finite. (+Inf bucket
    // bounds are labels, not values, so histograms are unaffected.)
    if (!isCountedVariant(variant) || !Number.isFinite(sample.value)) continue;
    const dimension = sample.labels[LABELS.segmentDimension];
    const value = sample.labels[LABELS.segment];
    let slice = overall;
    if (dimension !== undefined && value !== undefined) {
      let values = bySegment.get(dimension);
      if (!values) bySegment.set(dimension, (values = new Map()));
      let found = values.get(value);
      if (!found) values.set(value, (found = newSlice()));
      slice = found;
    }
    if (variant === "shadow") seenShadow.add(slice.shadow);
    slice[variant].add(sample);
  }

  const counts = emptyRolloutCounts();
  const top = finishSlice(overall, seenShadow);
  counts.stable = top.stable;
  counts.canary = top.canary;
  if (top.shadow) counts.shadow = top.shadow;
  for (const [dimension, values] of [...bySegment].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    counts.segments[dimension] = {};
    for (const [value, slice] of [...values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      counts.segments[dimension][value] = finishSlice(slice, seenShadow);
    }
  }
  return counts;
}

function readBound(le: string | undefined): number | null {
  if (le === undefined) return null;
  try {
    const bound = referenceParseSampleValue(le);
    return Number.isNaN(bound) ? null : bound;
  } catch {
    return null;
  }
}
