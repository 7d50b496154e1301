import { DISTINGUISHING_LABELS, LABELS, SERIES, SERIES_PREFIX, VALUE_HISTOGRAMS } from "./envoy-series.ts";
import { parsePrometheusText, parseSampleValue, parseSamplesContaining, type Sample } from "./prometheus-text.ts";
import {
  RESPONSE_CLASSES,
  VARIANTS,
  emptyRolloutCounts,
  emptyVariantCounts,
  type ResponseClass,
  type RolloutCounts,
  type SliceCounts,
  type VariantCounts,
} from "./provider.ts";

// Read once: these run per sample, and an imported binding can cost a getter call per use.
const ROLLOUT = LABELS.rollout;
const VARIANT = LABELS.variant;
const SEGMENT_DIMENSION = LABELS.segmentDimension;
const SEGMENT = LABELS.segment;
const RESPONSE_CLASS = LABELS.responseClass;
const UPPER_BOUND = LABELS.upperBound;
const REQUESTS = SERIES.requests;
const RESPONSES = SERIES.responses;
const LATENCY_BUCKET = SERIES.latencyBucket;
const LATENCY_SUM = SERIES.latencySum;
const LATENCY_COUNT = SERIES.latencyCount;

type CountedVariant = "stable" | "canary" | "shadow";
const COUNTED_VARIANTS: readonly CountedVariant[] = [...VARIANTS, "shadow"];
const [COUNTED_0, COUNTED_1, COUNTED_2] = COUNTED_VARIANTS;
const isCountedVariant = (value: string | undefined): value is CountedVariant => value === COUNTED_0 || value === COUNTED_1 || value === COUNTED_2;

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

/** Which of the series add() knows a sample belongs to, worked out once per run of samples of one name. */
type SeriesKind = 0 | 1 | 2 | 3 | 4 | 5;
const KIND_REQUESTS = 0;
const KIND_RESPONSES = 1;
const KIND_LATENCY_BUCKET = 2;
const KIND_LATENCY_SUM = 3;
const KIND_LATENCY_COUNT = 4;
const KIND_OTHER = 5;

function seriesKind(name: string): SeriesKind {
  switch (name) {
    case REQUESTS:
      return KIND_REQUESTS;
    case RESPONSES:
      return KIND_RESPONSES;
    case LATENCY_BUCKET:
      return KIND_LATENCY_BUCKET;
    case LATENCY_SUM:
      return KIND_LATENCY_SUM;
    case LATENCY_COUNT:
      return KIND_LATENCY_COUNT;
    default:
      return KIND_OTHER;
  }
}

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
        const bound = readBound(sample.labels[UPPER_BOUND]);
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

  /** `kind`: seriesKind(sample.name). */
  add(sample: Sample, kind: SeriesKind): void {
    const target = this.counts;
    switch (kind) {
      case KIND_REQUESTS:
        target.requests += sample.value;
        break;
      case KIND_RESPONSES: {
        const responseClass = sample.labels[RESPONSE_CLASS];
        if (isResponseClass(responseClass)) target.responses[responseClass] += sample.value;
        break;
      }
      case KIND_LATENCY_BUCKET: {
        const bound = readBound(sample.labels[UPPER_BOUND]);
        if (bound !== null) this.buckets.set(bound, (this.buckets.get(bound) ?? 0) + sample.value);
        break;
      }
      case KIND_LATENCY_SUM:
        target.latency.sumUs += sample.value;
        break;
      case KIND_LATENCY_COUNT:
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

/**
 * The samples of one scrape that rolloutCountsFromSamples(..., rollout) counts, and others it would skip
 * anyway, in their order. Only lines holding the rollout's name in quotes are read: a label value that
 * unescapes to a name without a backslash, a quote or a newline is that name as written.
 */
export function rolloutSamplesFromText(text: string, rollout: string): Sample[] {
  if (/[\\"\n]/.test(rollout)) return parsePrometheusText(text).samples;
  return parseSamplesContaining(text, `"${rollout}"`);
}

export function rolloutCountsFromSamples(samples: Iterable<Sample>, rollout: string): RolloutCounts {
  const sum = new RolloutCountsSum(rollout);
  sum.add(samples);
  return sum.finish();
}

/**
 * rolloutCountsFromSamples in parts: add() one scrape's samples after another, then finish() once. The
 * same counts as one call over all the samples in that order, so a scrape's samples can be dropped as soon
 * as they are added.
 */
export class RolloutCountsSum {
  readonly #rollout: string;
  readonly #overall = newSlice();
  readonly #bySegment = new Map<string, Map<string, Slice>>();
  readonly #seenShadow = new Set<SliceAccumulator>();
  // Samples come in runs of one series (a histogram's buckets): the last name's kind and the last segment
  // value's slice are kept. The parser hands out the same string objects along a run, so these compare fast.
  #lastName: string | undefined;
  #lastKind: SeriesKind = KIND_OTHER;
  #lastDimension: string | undefined;
  #lastValue: string | undefined;
  #lastSlice: Slice;

  constructor(rollout: string) {
    this.#rollout = rollout;
    this.#lastSlice = this.#overall;
  }

  add(samples: Iterable<Sample>): void {
    const rollout = this.#rollout;
    const overall = this.#overall;
    const bySegment = this.#bySegment;
    const seenShadow = this.#seenShadow;
    let lastName = this.#lastName;
    let lastKind = this.#lastKind;
    let lastDimension = this.#lastDimension;
    let lastValue = this.#lastValue;
    let lastSlice = this.#lastSlice;
    for (const sample of samples) {
      const labels = sample.labels;
      if (labels[ROLLOUT] !== rollout) continue;
      const variant = labels[VARIANT];
      // A NaN or infinite counter says nothing countable; leaving it out keeps the sums finite. (+Inf bucket
      // bounds are labels, not values, so histograms are unaffected.)
      if (!isCountedVariant(variant) || !Number.isFinite(sample.value)) continue;
      const dimension = labels[SEGMENT_DIMENSION];
      const value = labels[SEGMENT];
      let slice = overall;
      if (dimension !== undefined && value !== undefined) {
        if (dimension === lastDimension && value === lastValue) slice = lastSlice;
        else {
          let values = bySegment.get(dimension);
          if (!values) bySegment.set(dimension, (values = new Map()));
          let found = values.get(value);
          if (!found) values.set(value, (found = newSlice()));
          lastDimension = dimension;
          lastValue = value;
          slice = lastSlice = found;
        }
      }
      if (variant === "shadow") seenShadow.add(slice.shadow);
      const name = sample.name;
      if (name !== lastName) {
        lastName = name;
        lastKind = seriesKind(name);
      }
      slice[variant].add(sample, lastKind);
    }
    this.#lastName = lastName;
    this.#lastKind = lastKind;
    this.#lastDimension = lastDimension;
    this.#lastValue = lastValue;
    this.#lastSlice = lastSlice;
  }

  finish(): RolloutCounts {
    const seenShadow = this.#seenShadow;
    const counts = emptyRolloutCounts();
    const top = finishSlice(this.#overall, seenShadow);
    counts.stable = top.stable;
    counts.canary = top.canary;
    if (top.shadow) counts.shadow = top.shadow;
    for (const [dimension, values] of [...this.#bySegment].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      counts.segments[dimension] = {};
      for (const [value, slice] of [...values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        counts.segments[dimension][value] = finishSlice(slice, seenShadow);
      }
    }
    return counts;
  }
}

function readBound(le: string | undefined): number | null {
  if (le === undefined) return null;
  // Envoy's bounds: integers and +Inf. Up to 15 digits the sum of digits is exact, as Number() would give it.
  const length = le.length;
  if (length > 0 && length <= 15) {
    let bound = 0;
    let i = 0;
    for (; i < length; i++) {
      const c = le.charCodeAt(i);
      if (c < 48 || c > 57) break;
      bound = bound * 10 + (c - 48);
    }
    if (i === length) return bound;
  }
  if (le === "+Inf") return Infinity;
  try {
    const bound = parseSampleValue(le);
    return Number.isNaN(bound) ? null : bound;
  } catch {
    return null;
  }
}
