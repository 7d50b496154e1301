// The stats part of the Envoy bootstrap (stats_tags, histogram buckets) as the sidecars' bootstrap override in
// deploy/istio/monitoring.yaml carries it: derived from deploy/envoy/envoy.template.yaml, so the two cannot drift.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { TEMPLATE_PATH } from "../../controller/src/envoy/bootstrap.ts";

export interface StatsConfig {
  stats_tags: Array<{ tag_name: string; regex: string }>;
  histogram_bucket_settings: Array<{ match: Record<string, string>; buckets: number[] }>;
}

export function templateStatsConfig(): StatsConfig {
  // Placeholders only appear outside stats_config; any value parses.
  const bootstrap = parse(readFileSync(TEMPLATE_PATH, "utf8").replace(/\{\{[A-Z_]+\}\}/g, "1")) as { stats_config: StatsConfig };
  return bootstrap.stats_config;
}

/** custom_bootstrap.json as written in the ConfigMap: one stats tag or bucket setting per line. */
export function proxyStatsBootstrapJson(): string {
  const sc = templateStatsConfig();
  const list = (items: unknown[]) => items.map((x, i) => `    ${JSON.stringify(x)}${i < items.length - 1 ? "," : ""}`);
  return [
    '{"stats_config": {',
    '  "stats_tags": [',
    ...list(sc.stats_tags),
    "  ],",
    '  "histogram_bucket_settings": [',
    ...list(sc.histogram_bucket_settings),
    "  ]",
    "}}",
  ].join("\n");
}
