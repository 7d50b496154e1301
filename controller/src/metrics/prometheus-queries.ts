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
 * Sums keep the filter's labels (the slice, variant, class, `le`, ...) and drop the sidecar's own.
 */
import { LABELS } from "./envoy-series.ts";
import type { MatrixSeries, VectorSample } from "./prometheus-http.ts";
import type { Sample } from "./prometheus-text.ts";

/** Carries each series' metric name through sums (aggregation drops __name__). */
export const SERIES_LABEL = "modelroll_series";
/** Tells apart the parts of one answer. */
export const PART_LABEL = "modelroll_part";

/** The labels the filter's stats carry (stats_tags) and the histogram bound: the sums keep them apart. */
export const FILTER_LABELS: readonly string[] = [
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
const SUM = `sum by (${[SERIES_LABEL, ...FILTER_LABELS].join(", ")})`;

/** A PromQL string literal (Go escapes; JSON's are a subset Prometheus reads). */
export const quote = (value: string): string => JSON.stringify(value);
export const duration = (ms: number): string => `${Math.max(1, Math.round(ms))}ms`;
export const atSeconds = (ms: number): string => (ms / 1000).toFixed(3);

function matchers(rollout: string, sidecar: Record<string, string>): string {
  const out = [`${LABELS.rollout}=${quote(rollout)}`];
  for (const [name, value] of Object.entries(sidecar)) if (name !== LABELS.rollout && name !== "__name__") out.push(`${name}=${quote(value)}`);
  return out.join(",");
}

/** Every series of the rollout (all names), optionally of one sidecar only (its labels). */
export function rolloutSelector(rollout: string, sidecar: Record<string, string> = {}): string {
  return `{__name__=~"modelroll_.+",${matchers(rollout, sidecar)}}`;
}

const named = (expr: string) => `label_replace(${expr}, "${SERIES_LABEL}", "$1", "__name__", "(.+)")`;
const tagged = (expr: string, part: string) => `label_replace(${expr}, "${PART_LABEL}", "${part}", "", "")`;
const requests = (rollout: string, sidecar: Record<string, string> = {}) => `modelroll_requests{${matchers(rollout, sidecar)}}`;

/** The sidecars (their labels) whose request counters went down between S and T: they restarted. */
export function restartedSidecars(rollout: string, since: number, at: number): string {
  return `(max without (${PER_SERIES.join(", ")}) (resets(${requests(rollout)}[${duration(at - since)}])) > 0)`;
}

/**
 * One query, so that its parts see the same data: `now` and `start` (last value in [S, T] and value at S,
 * summed over the sidecars that did not restart), `restarted` (those that did), and the newest sample's
 * time of the rollout's series and of the filter's own config counter (freshness).
 */
export function mainQuery(rollout: string, since: number, at: number): string {
  const selector = rolloutSelector(rollout);
  const restarted = restartedSidecars(rollout, since, at);
  const notRestarted = `unless ignoring(${[SERIES_LABEL, ...PER_SERIES].join(", ")}) ${restarted}`;
  // `> 0`: a sum that is 0 adds nothing (the proxies' zero buckets and unused counters, most of an answer).
  return [
    tagged(`${SUM} (${named(`last_over_time(${selector}[${duration(at - since)}])`)} ${notRestarted}) > 0`, "now"),
    tagged(`${SUM} (${named(`${selector} @ ${atSeconds(since)}`)} ${notRestarted}) > 0`, "start"),
    tagged(restarted, "restarted"),
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
    for (let i = 1; i < s.samples.length; i++) if (s.samples[i][1] < s.samples[i - 1][1]) ends.add(s.samples[i - 1][0]);
  }
  return [...ends].sort((a, b) => a - b);
}

/**
 * One restarted sidecar's counts since S, life by life: `life<i>` is the last value in each life's span
 * (a life after a restart starts 1 ms after the previous one ended, so it never sees that one's last sample),
 * `start` the value at S. Counts = sum of lives - start.
 */
export function restartedSidecarQuery(rollout: string, sidecar: Record<string, string>, ends: readonly number[], since: number, at: number): string {
  const selector = rolloutSelector(rollout, sidecar);
  const bounds = [...ends.filter((e) => e > since && e < at), at];
  const parts = [tagged(`${SUM} (${named(`${selector} @ ${atSeconds(since)}`)}) > 0`, "start")];
  let from = since;
  bounds.forEach((end, i) => {
    if (end - from >= 1) parts.push(tagged(`${SUM} (${named(`last_over_time(${selector}[${duration(end - from)}] @ ${atSeconds(end)})`)}) > 0`, `life${i}`));
    from = end + 1;
  });
  return parts.join(" or ");
}

export interface MainAnswer {
  /** Summed last values and values at S of the sidecars that did not restart. */
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

/** Sums of the restarted sidecar answers' parts: lives added, `start` subtracted. */
export function restartedCounts(samples: readonly VectorSample[]): { plus: VectorSample[]; minus: VectorSample[] } {
  const plus: VectorSample[] = [];
  const minus: VectorSample[] = [];
  for (const s of samples) {
    const { [PART_LABEL]: part, ...labels } = s.labels;
    (part === "start" ? minus : plus).push({ labels, value: s.value });
  }
  return { plus, minus };
}

/**
 * The filter's samples (name from SERIES_LABEL, its labels) from summed parts: every `plus` added and every
 * `minus` subtracted, per series. Sorted by name so a histogram's buckets come together.
 */
export function samplesFrom(plus: ReadonlyArray<readonly VectorSample[]>, minus: ReadonlyArray<readonly VectorSample[]>): Sample[] {
  const byKey = new Map<string, Sample>();
  const add = (s: VectorSample, sign: 1 | -1) => {
    const { [SERIES_LABEL]: name, ...labels } = s.labels;
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
