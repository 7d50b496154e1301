// The filter's stat names. One scheme; Envoy's stats_tags (deploy/envoy) turn the dotted parts into labels:
//   modelroll.rollout.<rollout>.variant.<variant>.requests
//   modelroll.rollout.<rollout>.variant.<variant>.class.<2xx|3xx|4xx|5xx|local>.responses
//   modelroll.rollout.<rollout>.variant.<variant>.latency_us          (histogram, microseconds)
//   modelroll.config.<updates|fetch_failures|rejected>                 (filter-wide)
// Envoy stores them as wasmcustom.<name>; /stats/prometheus prints e.g.
//   modelroll_requests{modelroll_rollout="fraud-model",modelroll_variant="canary"} 42
import { defineMetric, MetricType } from "./sdk/host";

export const VARIANT_STABLE: i32 = 0;
export const VARIANT_CANARY: i32 = 1;
export const VARIANT_NAMES: Array<string> = ["stable", "canary"];

export const CLASS_2XX: i32 = 0;
export const CLASS_3XX: i32 = 1;
export const CLASS_4XX: i32 = 2;
export const CLASS_5XX: i32 = 3;
export const CLASS_LOCAL: i32 = 4;
export const CLASS_NAMES: Array<string> = ["2xx", "3xx", "4xx", "5xx", "local"];

/** Status class of a response that came from the upstream; 1xx never reaches here as a final status. */
export function statusClass(status: i32): i32 {
  if (status >= 200 && status < 300) return CLASS_2XX;
  if (status >= 300 && status < 400) return CLASS_3XX;
  if (status >= 400 && status < 500) return CLASS_4XX;
  return CLASS_5XX;
}

export class VariantMetrics {
  requests: u32;
  responses: Array<u32> = new Array<u32>(5);
  latencyUs: u32;
  constructor(rollout: string, variant: string) {
    const base = "modelroll.rollout." + rollout + ".variant." + variant + ".";
    this.requests = defineMetric(MetricType.Counter, base + "requests");
    for (let c = 0; c < CLASS_NAMES.length; c++) {
      this.responses[c] = defineMetric(MetricType.Counter, base + "class." + CLASS_NAMES[c] + ".responses");
    }
    this.latencyUs = defineMetric(MetricType.Histogram, base + "latency_us");
  }
}

export class RolloutMetrics {
  variants: Array<VariantMetrics> = new Array<VariantMetrics>(2);
  constructor(rollout: string) {
    this.variants[VARIANT_STABLE] = new VariantMetrics(rollout, "stable");
    this.variants[VARIANT_CANARY] = new VariantMetrics(rollout, "canary");
  }
}

export class FilterMetrics {
  configUpdates: u32 = defineMetric(MetricType.Counter, "modelroll.config.updates");
  configFetchFailures: u32 = defineMetric(MetricType.Counter, "modelroll.config.fetch_failures");
  configRejected: u32 = defineMetric(MetricType.Counter, "modelroll.config.rejected");
}
