/**
 * The metric sources a controller reads, chosen in one place from its options (`--metrics admin|prometheus`,
 * `--prometheus URL`): the built-in gates' counts from every Envoy's admin endpoint or from Prometheus, and
 * the PromQL gates' numbers from Prometheus whenever a URL is given.
 */
import { EnvoyAdminConfigVersions, PrometheusConfigVersions, type ConfigVersionSource } from "./config-versions.ts";
import { EnvoyAdminMetricProvider } from "./envoy-admin.ts";
import { PrometheusClient, PrometheusHttpSource, type PromQLSource } from "./prometheus-http.ts";
import { PrometheusMetricProvider } from "./prometheus-provider.ts";
import type { MetricProvider } from "./provider.ts";

export const METRIC_SOURCE_KINDS = ["admin", "prometheus"] as const;
export type MetricSourceKind = (typeof METRIC_SOURCE_KINDS)[number];

interface MetricSourceOptions {
  /** Where the built-in gates' counts come from; default "admin". */
  metrics?: MetricSourceKind;
  /** Envoy admin base URLs (metrics "admin"). */
  envoyAdminUrls?: string[];
  /** Per admin endpoint; default 2000 ms. */
  envoyAdminTimeoutMs?: number;
  /** Prometheus base URL: PromQL gates, and the counts with metrics "prometheus". */
  prometheusUrl?: string;
  /** Per Prometheus query; default 10 000 ms. */
  prometheusTimeoutMs?: number;
  /** Freshness bound of the Prometheus counts (prometheus-provider.ts); default 60 000 ms. */
  prometheusMaxLagMs?: number;
}

interface MetricSources {
  kind: MetricSourceKind;
  /** The built-in gates' counts. */
  counts: MetricProvider;
  /** The PromQL gates' numbers; null without a Prometheus URL (those gates then read Error). */
  promql: PromQLSource | null;
  /** Which config version each proxy runs, from the same place as the counts; null when no proxy is known (no admin URLs). */
  versions: ConfigVersionSource | null;
}

export function metricSources(options: MetricSourceOptions): MetricSources {
  const kind = options.metrics ?? "admin";
  if (!(METRIC_SOURCE_KINDS as readonly string[]).includes(kind)) throw new Error(`metrics: expected one of ${METRIC_SOURCE_KINDS.join(", ")}, got '${kind}'`);
  const client = options.prometheusUrl ? new PrometheusClient({ baseUrl: options.prometheusUrl, timeoutMs: options.prometheusTimeoutMs ?? 10_000 }) : null;
  let counts: MetricProvider;
  let versions: ConfigVersionSource | null;
  if (kind === "prometheus") {
    if (client === null) throw new Error("metrics prometheus: needs a Prometheus URL (--prometheus or MODELROLL_PROMETHEUS_URL)");
    counts = new PrometheusMetricProvider(client, { maxLagMs: options.prometheusMaxLagMs });
    versions = new PrometheusConfigVersions(client);
  } else {
    const urls = options.envoyAdminUrls ?? [];
    counts = new EnvoyAdminMetricProvider(urls, { timeoutMs: options.envoyAdminTimeoutMs });
    versions = urls.length > 0 ? new EnvoyAdminConfigVersions(urls, options.envoyAdminTimeoutMs) : null;
  }
  return { kind, counts, promql: client ? new PrometheusHttpSource(client) : null, versions };
}
