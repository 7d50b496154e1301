/**
 * The PromQL behind the Prometheus metric source, and how its answers become the filter's samples. Pure.
 *
 * The engine wants cumulative counts whose difference between two ticks is exactly what happened in
 * between, and that only go down when the data path really lost its counts. Summing the sidecars' raw
 * counters would go down whenever a pod goes away or a sidecar restarts, and `increase()` extrapolates
 * (fractional counts that can shrink from one tick to the next, and a series whose only samples hold the
 * same value counts 0). So, per series, counts since the rollout began (S) as of the tick (T):
 *   - a sidecar that did not restart since S: last_over_time(series[S..T]) - series @ S, where a series
 *     absent at S (born later: a new pod, or the first request of its kind) counts from 0, and a pod gone
 *     since keeps its last value;
 *   - a sidecar whose counters went down since S (it restarted): the same per life of the process,
 *     life by life (lives end at the last sample before a drop; a restarted Envoy counts from 0).
 * Sums keep the metric name and the filter's labels (the slice, variant, class, `le`, ...) and drop the
 * sidecar's own. A restarted sidecar is first summed with the others as if it had not restarted, then that
 * part is replaced by its life-by-life counts: excluding it from the big sums instead (`unless`) would double
 * what they cost Prometheus, for sidecars that are rarely there.
 */
import { LABELS } from "./envoy-series.ts";
import type { MatrixSeries, VectorSample } from "./prometheus-http.ts";
import type { Sample } from "./prometheus-text.ts";

/** Tells apart the parts of one answer. */
const PART_LABEL = "modelroll_part";

/** The labels the filter's stats carry (stats_tags) and the histogram bound: the sums keep them apart. */
const FILTER_LABELS: readonly string[] = [
  LABELS.rollout,
  LABELS.variant,
  LABELS.segmentDimension,
  LABELS.segment,
  LABELS.responseClass,
  LABELS.schemaResult,
  LABELS.unanalyzedReason,
  LABELS.label,
  LABELS.model,
  LABELS.upperBound,
];
/** Labels that tell one sidecar's series of a rollout apart; every other label names the sidecar. */
const PER_SERIES = FILTER_LABELS.filter((l) => l !== LABELS.rollout);
// last_over_time keeps the metric name, so sums can keep it too.
const SUM = `sum by (${["__name__", ...FILTER_LABELS].join(", ")})`;

/** A PromQL string literal (Go escapes; JSON's are a subset Prometheus reads). */
export const quote = (value: string): string => JSON.stringify(value);
export const duration = (ms: number): string => `${Math.max(1, Math.round(ms))}ms`;
const atSeconds = (ms: number): string => (ms / 1000).toFixed(3);

function matchers(rollout: string, sidecar: Record<string, string>): string {
  const out = [`${LABELS.rollout}=${quote(rollout)}`];
  for (const [name, value] of Object.entries(sidecar)) if (name !== LABELS.rollout && name !== "__name__") out.push(`${name}=${quote(value)}`);
  return out.join(",");
}

/** Every series of the rollout (all names), optionally of one sidecar only (its labels). */
export function rolloutSelector(rollout: string, sidecar: Record<string, string> = {}): string {
  return `{__name__=~"modelroll_.+",${matchers(rollout, sidecar)}}`;
}

const tagged = (expr: string, part: string) => `label_replace(${expr}, "${PART_LABEL}", "${part}", "", "")`;
const requests = (rollout: string, sidecar: Record<string, string> = {}) => `modelroll_requests{${matchers(rollout, sidecar)}}`;

/** The sidecars (their labels) whose request counters went down between S and T: they restarted. */
function restartedSidecars(rollout: string, since: number, at: number): string {
  return `(max without (${PER_SERIES.join(", ")}) (resets(${requests(rollout)}[${duration(at - since)}])) > 0)`;
}

/**
 * One query, so that its parts see the same data: `now` (last value in [S, T], summed over every sidecar),
 * `start` (value at S; it never changes, so a caller may ask for it once), `restarted` (the sidecars whose
 * counters went down since S), and the newest sample's time of the rollout's series and of the filter's own
 * config counter (freshness).
 */
export function mainQuery(rollout: string, since: number, at: number, withStart = true): string {
  const selector = rolloutSelector(rollout);
  // `> 0`: a sum that is 0 adds nothing (the proxies' zero buckets and unused counters, most of an answer).
  return [
    tagged(`${SUM} (last_over_time(${selector}[${duration(at - since)}])) > 0`, "now"),
    ...(withStart ? [tagged(`${SUM} (${selector} @ ${atSeconds(since)}) > 0`, "start")] : []),
    tagged(restartedSidecars(rollout, since, at), "restarted"),
    tagged(`max(timestamp(${requests(rollout)}))`, "newest"),
    tagged(`max(timestamp(modelroll_config_updates))`, "newest_filter"),
  ].join(" or ");
}

/** The raw request counters of one restarted sidecar over [S, T], to find where its lives end. */
export function restartSamplesQuery(rollout: string, sidecar: Record<string, string>, since: number, at: number): string {
  return `${requests(rollout, sidecar)}[${duration(at - since)}]`;
}

/**
 * Where a restarted sidecar's lives end: the time of the last sample before each drop. A process's series
 * are scraped together, so their samples share timestamps and their drops line up.
 */
export function lifeEnds(series: readonly MatrixSeries[]): number[] {
  const ends = new Set<number>();
  for (const s of series) {
    let previous: (typeof s.samples)[number] | undefined;
    for (const sample of s.samples) {
      if (previous !== undefined && sample[1] < previous[1]) ends.add(previous[0]);
      previous = sample;
    }
  }
  return [...ends].sort((a, b) => a - b);
}

/**
 * One restarted sidecar, life by life: `life<i>` is the last value in each life's span (a life after a
 * restart starts 1 ms after the previous one ended, so it never sees that one's last sample), and `naive` its
 * last value over [S, T], which the main query summed as if it had not restarted. Its part of the counts since
 * S becomes: sum of lives - naive (the value at S is in the main query's `start` either way).
 */
export function restartedSidecarQuery(rollout: string, sidecar: Record<string, string>, ends: readonly number[], since: number, at: number): string {
  const selector = rolloutSelector(rollout, sidecar);
  const bounds = [...ends.filter((e) => e > since && e < at), at];
  const parts = [tagged(`${SUM} (last_over_time(${selector}[${duration(at - since)}])) > 0`, "naive")];
  let from = since;
  bounds.forEach((end, i) => {
    if (end - from >= 1) parts.push(tagged(`${SUM} (last_over_time(${selector}[${duration(end - from)}] @ ${atSeconds(end)})) > 0`, `life${i}`));
    from = end + 1;
  });
  return parts.join(" or ");
}

interface MainAnswer {
  /** Summed last values in [S, T], and values at S (empty when not asked). */
  now: VectorSample[];
  start: VectorSample[];
  /** Labels of each sidecar that restarted since S. */
  restarted: Array<Record<string, string>>;
  /** The newest sample of the rollout's or the filter's series (ms), null when Prometheus has none. */
  newest: number | null;
}

export function splitMainAnswer(samples: readonly VectorSample[]): MainAnswer {
  const out: MainAnswer = { now: [], start: [], restarted: [], newest: null };
  for (const s of samples) {
    const { [PART_LABEL]: part, ...labels } = s.labels;
    if (part === "now") out.now.push({ labels, value: s.value });
    else if (part === "start") out.start.push({ labels, value: s.value });
    else if (part === "restarted") out.restarted.push(labels);
    else if ((part === "newest" || part === "newest_filter") && Number.isFinite(s.value)) out.newest = Math.max(out.newest ?? 0, s.value * 1000);
  }
  return out;
}

/** A restarted sidecar's answer: lives added, `naive` (what the main query counted for it) subtracted. */
export function restartedCounts(samples: readonly VectorSample[]): { plus: VectorSample[]; minus: VectorSample[] } {
  const plus: VectorSample[] = [];
  const minus: VectorSample[] = [];
  for (const s of samples) {
    const { [PART_LABEL]: part, ...labels } = s.labels;
    (part === "naive" ? minus : plus).push({ labels, value: s.value });
  }
  return { plus, minus };
}

/**
 * The filter's samples (name and labels) from summed parts: every `plus` added and every `minus` subtracted,
 * per series. Sorted by name so a histogram's buckets come together.
 */
export function samplesFrom(plus: ReadonlyArray<readonly VectorSample[]>, minus: ReadonlyArray<readonly VectorSample[]>): Sample[] {
  const byKey = new Map<string, Sample>();
  const add = (s: VectorSample, sign: 1 | -1) => {
    const { __name__: name, ...labels } = s.labels;
    if (name === undefined || !Number.isFinite(s.value)) return;
    const key = `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;
    const found = byKey.get(key);
    if (found) found.value += sign * s.value;
    else byKey.set(key, { name, labels, value: sign * s.value });
  };
  for (const list of plus) for (const s of list) add(s, 1);
  for (const list of minus) for (const s of list) add(s, -1);
  return [...byKey.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
