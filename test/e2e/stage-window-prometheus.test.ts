// The stage window's wait with --metrics prometheus: the proxies are the `instance`s of the filter's version
// gauges as a real Prometheus scrapes them from a real Envoy; the window starts once they show the stage's version.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeVersions, PrometheusConfigVersions } from "../../controller/src/metrics/config-versions.ts";
import { PrometheusClient } from "../../controller/src/metrics/prometheus-http.ts";
import { startPrometheus, type PrometheusProcess } from "../../controller/src/prometheus/process.ts";
import { api, freePort, managedSpec, startStack, waitFor, type Stack } from "./harness.ts";

let stack: Stack;
let prometheus: PrometheusProcess | null = null;
let prometheusUrl: string;

beforeAll(async () => {
  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  stack = await startStack({ controller: { tickIntervalMs: 0, metrics: "prometheus", prometheusUrl } });
  prometheus = await startPrometheus({
    scrapeTargets: [new URL(stack.adminUrl).host],
    port,
    scrapeIntervalMs: 250,
    waitForTargets: true,
    readyTimeoutMs: 30_000,
  });
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  await stack?.stop();
});

describe("the stage window with Prometheus as the metric source", () => {
  it("names the scraped Envoy by its instance and starts the window once Prometheus shows the stage's version", async () => {
    const ctl = stack.controller!.url;
    const app = (stack.controller as unknown as { app: { modelroll: { driver: { tick(): Promise<unknown> }; store: { version: number } } } }).app.modelroll;
    const created = await api(
      ctl,
      "POST",
      "/v1/rollouts",
      managedSpec("pw", "canary errors above 5%", {
        stages: [{ canaryPercent: 20, minDurationSeconds: 0, minRequests: 100_000, deadlineSeconds: 3600 }, 100],
        promotion_gates: { error_rate: { maximum: 0.05 } },
      }),
    );
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    await app.driver.tick(); // Pending -> 20%: a new config version
    const required = (await api(ctl, "GET", "/v1/rollouts/pw")).json.configVersion as number;
    const source = new PrometheusConfigVersions(new PrometheusClient({ baseUrl: prometheusUrl }));
    const instance = new URL(stack.adminUrl).host;
    const waited = await waitFor(
      `Prometheus showing ${instance} at version ${required}`,
      async () => {
        const read = await source.read(Date.now());
        if ("error" in read) return false;
        return read.length === 1 && read[0]?.proxy === instance && (decodeVersions(read[0], app.store.version).oldest ?? -1) >= required;
      },
      15_000,
      50,
    );
    console.log(`commit -> Prometheus shows every worker at version ${required}: ${waited.toFixed(0)} ms (250 ms scrapes)`);
    await app.driver.tick();
    const view = (await api(ctl, "GET", "/v1/rollouts/pw")).json;
    expect(view.evaluation.propagation).toMatchObject({ required, rule: "all", ready: 1, total: 1, laggards: [] });
    expect(view.evaluation.windowStartedAt).not.toBeNull();
  }, 60_000);
});
