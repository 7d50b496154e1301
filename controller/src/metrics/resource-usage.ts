/**
 * Resource usage per variant in Kubernetes: CPU, memory, restarts, OOM kills and GPU memory of each variant's
 * pods, from the series a cluster's Prometheus already has, with no PromQL written by the user:
 *  - cAdvisor (the kubelet's /metrics/cadvisor): container_cpu_usage_seconds_total,
 *    container_memory_working_set_bytes (what eviction and the OOM killer look at), labels namespace, pod, container;
 *  - kube-state-metrics: kube_pod_labels (the pods' labels as label_<name>, for the labels its
 *    --metric-labels-allowlist lets through), kube_pod_container_status_restarts_total,
 *    kube_pod_container_status_last_terminated_reason;
 *  - NVIDIA's DCGM exporter, where present: DCGM_FI_DEV_FB_USED (MiB), with the pod attribution labels
 *    namespace, pod, container.
 * A variant's pods are the ones whose labels match its selector: the Service's selector plus the DestinationRule
 * subset's labels (a subset's labels alone may match other applications' pods in the namespace). cAdvisor's
 * series carry no pod labels, so every figure joins on (namespace, pod) with kube_pod_labels.
 *
 * Counted: the containers of the pod, not the pod-level aggregate cAdvisor also exports (container="") nor the
 * pause container (container="POD"), nor the Istio sidecar (container="istio-proxy": the same on both variants,
 * and not what a new model changes).
 */
import type { PrometheusClient } from "./prometheus-http.ts";

/** Which pods run one variant. */
export interface VariantPods {
  namespace: string;
  /** Pod labels, all of which must match (the Service's selector and the subset's labels). */
  labels: Record<string, string>;
}

export const RESOURCE_FIGURES = ["pods", "cpuCoresPerPod", "memoryBytesPerPod", "memoryBytesMaxPod", "restarts", "oomKills", "gpuMemoryBytesPerPod"] as const;
export type ResourceFigure = (typeof RESOURCE_FIGURES)[number];

/**
 * One variant's figures over the window. A figure is null when Prometheus has no series for it (no GPU, no
 * kube-state-metrics, labels not allowlisted); restarts and OOM kills are 0, not null, once the variant's pods
 * are known. `error` says why nothing could be measured (Prometheus down, a query refused).
 */
export interface ResourceUsage {
  figures: Record<ResourceFigure, number | null>;
  error?: string;
}

/** kube-state-metrics' name for a pod label: label_ and the key with every character outside [a-zA-Z0-9_] as _. */
export function kubeStateLabelName(key: string): string {
  return `label_${key.replace(/[^a-zA-Z0-9_]/g, "_")}`;
}

/** A PromQL string literal. */
const quote = (value: string) => `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;

const CONTAINERS = `container!="",container!="POD",container!="istio-proxy"`;

/** The variant's pods as a (namespace, pod) vector of 1s, once per pod even with several kube-state-metrics. */
export function variantPodsVector(pods: VariantPods): string {
  const matchers = [`namespace=${quote(pods.namespace)}`, ...Object.entries(pods.labels).map(([k, v]) => `${kubeStateLabelName(k)}=${quote(v)}`)];
  return `max by (namespace, pod) (kube_pod_labels{${matchers.join(",")}})`;
}

/** Every figure's query for one variant over a window of `windowSeconds`. */
export function resourceQueries(pods: VariantPods, windowSeconds: number): Record<ResourceFigure, string> {
  if (!(Number.isInteger(windowSeconds) && windowSeconds > 0))
    throw new Error(`resource usage: the window must be whole seconds above 0, got ${windowSeconds}`);
  const ns = `namespace=${quote(pods.namespace)}`;
  const w = `${windowSeconds}s`;
  const of = variantPodsVector(pods);
  // Per pod first (the sum of its containers), then over the variant's pods.
  const perPod = (expr: string) => `sum by (namespace, pod) (${expr}) * on (namespace, pod) group_left () ${of}`;
  return {
    pods: `count(${of})`,
    cpuCoresPerPod: `avg(${perPod(`rate(container_cpu_usage_seconds_total{${ns},${CONTAINERS}}[${w}])`)})`,
    memoryBytesPerPod: `avg(${perPod(`avg_over_time(container_memory_working_set_bytes{${ns},${CONTAINERS}}[${w}])`)})`,
    memoryBytesMaxPod: `max(${perPod(`max_over_time(container_memory_working_set_bytes{${ns},${CONTAINERS}}[${w}])`)})`,
    restarts: `sum(${perPod(`increase(kube_pod_container_status_restarts_total{${ns}}[${w}])`)})`,
    // Containers that restarted in the window and whose last end was the OOM killer.
    oomKills: `count((increase(kube_pod_container_status_restarts_total{${ns}}[${w}]) > 0) * on (namespace, pod, container) group_left () (max by (namespace, pod, container) (kube_pod_container_status_last_terminated_reason{${ns},reason="OOMKilled"}) == 1) * on (namespace, pod) group_left () ${of})`,
    gpuMemoryBytesPerPod: `avg(${perPod(`avg_over_time(DCGM_FI_DEV_FB_USED{${ns},${CONTAINERS}}[${w}])`)}) * 1048576`,
  };
}

/** Every variant's figures at `at` (ms since the epoch), each figure one instant query. */
export async function readResourceUsage(
  client: PrometheusClient,
  variants: Record<string, VariantPods>,
  at: number,
  windowSeconds: number,
): Promise<Record<string, ResourceUsage>> {
  const out: Record<string, ResourceUsage> = {};
  await Promise.all(
    Object.entries(variants).map(async ([variant, pods]) => {
      const queries = resourceQueries(pods, windowSeconds);
      const figures = Object.fromEntries(RESOURCE_FIGURES.map((f) => [f, null])) as Record<ResourceFigure, number | null>;
      const errors: string[] = [];
      await Promise.all(
        RESOURCE_FIGURES.map(async (figure) => {
          const answer = await client.vector(queries[figure], at);
          if (!answer.ok) errors.push(`${figure}: ${answer.error}`);
          else figures[figure] = answer.samples[0]?.value ?? null;
        }),
      );
      // count() of nothing is no series: a variant with known pods and no restarted container had 0 of each.
      if (figures.pods !== null) {
        figures.restarts ??= 0;
        figures.oomKills ??= 0;
      }
      out[variant] = errors.length > 0 ? { figures, error: `variant ${variant}: ${errors.sort().join("; ")}` } : { figures };
    }),
  );
  return out;
}
