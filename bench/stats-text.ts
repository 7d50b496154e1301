// A rollout's counts written back as the filter's series in Envoy's /stats/prometheus form, as Prometheus scrapes
// them from a sidecar: what the gate benches serve from their simulated sidecars.
import type { RolloutCounts, VariantCounts } from "../controller/src/metrics/provider.ts";

export interface StatsTextOptions {
  /** Leave out response classes counted 0 (as Envoy does for a counter never incremented). */
  omitZeroResponses: boolean;
  /** Lines written before the rollout's series. */
  before?: string[];
}

function renderVariant(lines: string[], rollout: string, variant: string, counts: VariantCounts, segment: string | null, options: StatsTextOptions): void {
  const labels = `modelroll_rollout="${rollout}",modelroll_variant="${variant}"${segment === null ? "" : `,modelroll_segment_dimension="tenant",modelroll_segment="${segment}"`}`;
  lines.push(`modelroll_requests{${labels}} ${counts.requests}`);
  for (const [cls, n] of Object.entries(counts.responses))
    if (n > 0 || !options.omitZeroResponses) lines.push(`modelroll_responses{${labels},modelroll_class="${cls}"} ${n}`);
  for (const [key, n] of Object.entries(counts.counters)) {
    const schema = /^outputs\{schema=(\w+)\}$/.exec(key);
    if (schema) lines.push(`modelroll_outputs{${labels},modelroll_schema="${schema[1]}"} ${n}`);
  }
  for (const b of counts.latency.bucketsUs)
    lines.push(`modelroll_latency_us_bucket{${labels},le="${b.upperBound === Infinity ? "+Inf" : b.upperBound}"} ${b.cumulativeCount}`);
  lines.push(`modelroll_latency_us_sum{${labels}} ${counts.latency.sumUs}`);
  lines.push(`modelroll_latency_us_count{${labels}} ${counts.latency.count}`);
}

/** Stable's and canary's series, overall and per value of the `tenant` segment dimension. */
export function renderRolloutStats(rollout: string, counts: RolloutCounts, options: StatsTextOptions): string {
  const lines = [...(options.before ?? [])];
  for (const variant of ["stable", "canary"] as const) renderVariant(lines, rollout, variant, counts[variant], null, options);
  for (const [value, slice] of Object.entries(counts.segments.tenant ?? {})) {
    for (const variant of ["stable", "canary"] as const) renderVariant(lines, rollout, variant, slice[variant], value, options);
  }
  return `${lines.join("\n")}\n`;
}
