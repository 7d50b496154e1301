// Per-variant resource usage (controller/src/metrics/resource-usage.ts) against a real Prometheus that scrapes
// the series a cluster's exporters publish, with their exact names and labels: cAdvisor's container series
// (including the pod-level aggregate container="" and the pause container, which must not count),
// kube-state-metrics' kube_pod_labels, restarts and last termination reason, and DCGM's framebuffer memory.
// The pods: two stable (app=fraud-model, version=v1), one canary (version=v2) that was OOM-killed once, and
// decoys that a loose selector would count (another app with version=v2, the same labels in another namespace).
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrometheusClient } from "../../controller/src/metrics/prometheus-http.ts";
import { freePort } from "../../controller/src/net.ts";
import { readResourceUsage, resourceQueries, type VariantPods } from "../../controller/src/metrics/resource-usage.ts";
import { startPrometheus, type PrometheusProcess } from "../../controller/src/prometheus/process.ts";

const GiB = 1024 ** 3;

interface Pod {
  ns: string;
  name: string;
  labels: Record<string, string>;
  cpuCores: number;
  memoryBytes: number;
  gpuMiB?: number;
  oomAfterScrapes?: number;
}

const PODS: Pod[] = [
  { ns: "ml", name: "fraud-model-v1-7d9f-a", labels: { app: "fraud-model", version: "v1" }, cpuCores: 0.5, memoryBytes: 1 * GiB, gpuMiB: 10_000 },
  { ns: "ml", name: "fraud-model-v1-7d9f-b", labels: { app: "fraud-model", version: "v1" }, cpuCores: 0.3, memoryBytes: 1.5 * GiB, gpuMiB: 12_000 },
  {
    ns: "ml",
    name: "fraud-model-v2-5c4b-a",
    labels: { app: "fraud-model", version: "v2" },
    cpuCores: 0.9,
    memoryBytes: 2 * GiB,
    gpuMiB: 15_000,
    oomAfterScrapes: 3,
  },
  // Decoys: version=v2 of another app, and the canary's labels in another namespace.
  { ns: "ml", name: "churn-model-v2-1111-a", labels: { app: "churn-model", version: "v2" }, cpuCores: 3, memoryBytes: 8 * GiB },
  { ns: "staging", name: "fraud-model-v2-2222-a", labels: { app: "fraud-model", version: "v2" }, cpuCores: 3, memoryBytes: 8 * GiB },
];

let server: Server;
let prometheus: PrometheusProcess;
let scrapes = 0;
const started = Date.now();

/** One scrape's exposition text: counters grow with the time since start, as the real ones do. */
function exposition(): string {
  scrapes++;
  const elapsed = (Date.now() - started) / 1000;
  const lines: string[] = [];
  for (const p of PODS) {
    const uid = `uid-${p.name}`;
    const id = `/kubepods/burstable/pod${uid}`;
    const c = (container: string) =>
      `container="${container}",id="${id}/${container}",image="registry.example.com/${p.labels.app}:${p.labels.version}",name="k8s_${container}_${p.name}",namespace="${p.ns}",pod="${p.name}"`;
    // cAdvisor: the model container, the sidecar, the pause container and the pod-level aggregate.
    lines.push(`container_cpu_usage_seconds_total{${c("model")}} ${(p.cpuCores * elapsed).toFixed(4)}`);
    lines.push(`container_cpu_usage_seconds_total{${c("istio-proxy")}} ${(0.1 * elapsed).toFixed(4)}`);
    lines.push(`container_cpu_usage_seconds_total{${c("POD")}} ${(0.001 * elapsed).toFixed(4)}`);
    lines.push(
      `container_cpu_usage_seconds_total{container="",id="${id}",image="",name="",namespace="${p.ns}",pod="${p.name}"} ${((p.cpuCores + 0.101) * elapsed).toFixed(4)}`,
    );
    lines.push(`container_memory_working_set_bytes{${c("model")}} ${p.memoryBytes}`);
    lines.push(`container_memory_working_set_bytes{${c("istio-proxy")}} ${64 * 1024 ** 2}`);
    lines.push(
      `container_memory_working_set_bytes{container="",id="${id}",image="",name="",namespace="${p.ns}",pod="${p.name}"} ${p.memoryBytes + 64 * 1024 ** 2}`,
    );
    // kube-state-metrics (labels allowlisted with --metric-labels-allowlist=pods=[app,version]).
    const labels = Object.entries(p.labels)
      .map(([k, v]) => `label_${k}="${v}"`)
      .join(",");
    lines.push(`kube_pod_labels{namespace="${p.ns}",pod="${p.name}",uid="${uid}",${labels}} 1`);
    const oomed = p.oomAfterScrapes !== undefined && scrapes > p.oomAfterScrapes;
    for (const container of ["model", "istio-proxy"]) {
      lines.push(
        `kube_pod_container_status_restarts_total{namespace="${p.ns}",pod="${p.name}",uid="${uid}",container="${container}"} ${container === "model" && oomed ? 1 : 0}`,
      );
    }
    if (oomed)
      lines.push(`kube_pod_container_status_last_terminated_reason{namespace="${p.ns}",pod="${p.name}",uid="${uid}",container="model",reason="OOMKilled"} 1`);
    // DCGM exporter with pod attribution (MiB).
    if (p.gpuMiB !== undefined) {
      lines.push(
        `DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-${uid}",device="nvidia0",modelName="NVIDIA A10G",Hostname="node-1",DCGM_FI_DRIVER_VERSION="550.54.15",container="model",namespace="${p.ns}",pod="${p.name}"} ${p.gpuMiB}`,
      );
    }
  }
  return `${[
    "# TYPE container_cpu_usage_seconds_total counter",
    "# TYPE container_memory_working_set_bytes gauge",
    "# TYPE kube_pod_labels gauge",
    "# TYPE kube_pod_container_status_restarts_total counter",
    "# TYPE kube_pod_container_status_last_terminated_reason gauge",
    "# TYPE DCGM_FI_DEV_FB_USED gauge",
    ...lines,
  ].join("\n")}\n`;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url !== "/metrics") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(exposition());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  prometheus = await startPrometheus({
    scrapeTargets: [`127.0.0.1:${port}`],
    metricsPath: "/metrics",
    scrapeIntervalMs: 250,
    waitForTargets: true,
    readyTimeoutMs: 30_000,
  });
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  await new Promise((r) => server?.close(r));
});

const VARIANTS: Record<string, VariantPods> = {
  stable: { namespace: "ml", labels: { app: "fraud-model", version: "v1" } },
  canary: { namespace: "ml", labels: { app: "fraud-model", version: "v2" } },
  gpuless: { namespace: "ml", labels: { app: "churn-model", version: "v2" } },
};

describe("resource usage per variant, from cAdvisor, kube-state-metrics and DCGM series in a real Prometheus", () => {
  it("sums each pod's containers (not the pod aggregate, pause or sidecar) and compares the variants' pods", async () => {
    const client = new PrometheusClient({ baseUrl: prometheus.url });
    // Enough scrapes for a rate over the window and for the canary's OOM kill to be in it (bounded).
    const deadline = Date.now() + 60_000;
    while (scrapes < 12) {
      if (Date.now() > deadline) throw new Error(`only ${scrapes} scrapes after 60 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300));
    const usage = await readResourceUsage(client, VARIANTS, Date.now(), 3);
    const s = usage.stable.figures;
    const c = usage.canary.figures;
    expect(usage.stable.error).toBeUndefined();
    expect(s.pods).toBe(2);
    expect(c.pods).toBe(1);
    expect(s.cpuCoresPerPod).toBeCloseTo(0.4, 1);
    expect(c.cpuCoresPerPod).toBeCloseTo(0.9, 1);
    expect(s.memoryBytesPerPod).toBe(1.25 * GiB);
    expect(s.memoryBytesMaxPod).toBe(1.5 * GiB);
    expect(c.memoryBytesPerPod).toBe(2 * GiB);
    expect(s.gpuMemoryBytesPerPod).toBe(11_000 * 1024 ** 2);
    expect(c.gpuMemoryBytesPerPod).toBe(15_000 * 1024 ** 2);
    expect(s.restarts).toBe(0);
    expect(s.oomKills).toBe(0);
    expect(c.restarts).toBeGreaterThan(0);
    expect(c.oomKills).toBe(1);
    // A variant without GPUs has no GPU figure (null: not measured), and its own pods only.
    expect(usage.gpuless.figures.gpuMemoryBytesPerPod).toBeNull();
    expect(usage.gpuless.figures.pods).toBe(1);
    expect(usage.gpuless.figures.memoryBytesPerPod).toBe(8 * GiB);
  });

  it("says what it could not measure: a selector no pod matches, labels that need quoting, Prometheus down", async () => {
    const client = new PrometheusClient({ baseUrl: prometheus.url });
    const none = await readResourceUsage(client, { x: { namespace: "ml", labels: { "app.kubernetes.io/name": 'we"ird\\' } } }, Date.now(), 3);
    expect(none.x.error).toBeUndefined();
    expect(Object.values(none.x.figures)).toEqual([null, null, null, null, null, null, null]);
    expect(resourceQueries(VARIANTS.stable, 60).pods).toBe(
      'count(max by (namespace, pod) (kube_pod_labels{namespace="ml",label_app="fraud-model",label_version="v1"}))',
    );

    const nobody = await freePort();
    const down = await readResourceUsage(
      new PrometheusClient({ baseUrl: `http://127.0.0.1:${nobody}`, timeoutMs: 2000 }),
      { stable: VARIANTS.stable },
      Date.now(),
      3,
    );
    expect(down.stable.error).toMatch(/^variant stable: cpuCoresPerPod: .*ECONNREFUSED/);
    expect(down.stable.figures.pods).toBeNull();
  });
});
