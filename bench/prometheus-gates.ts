// Benchmark (not a test): one gate evaluation of one rollout across 1,000 simulated sidecars, its counts read
// through a real Prometheus (Debian's, scraping every sidecar) vs by scraping every sidecar's admin endpoint
// from the controller (the baseline, in the same run on the same series). The sidecars (bench/sidecars.ts) run
// in a process of their own, advanced one recorded tick at a time; after each advance the bench waits until
// Prometheus has scraped every sidecar, then reads both sources at the same instant, checks that they give
// the same counters and the same verdicts, and measures: the read's time, the bytes the controller receives,
// the controller's CPU and Prometheus' CPU during it, and the engine step.
//   npm run bench:prometheus    (BENCH_SIDECARS, BENCH_TICKS, BENCH_SCRAPE_MS, BENCH_SEGMENT_VALUES to change sizes)
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { toSnapshot } from "../controller/src/engine/counts.ts";
import { parseEngineSpec } from "../controller/src/engine/spec.ts";
import { initialState, type EngineState } from "../controller/src/engine/state.ts";
import { step } from "../controller/src/engine/step.ts";
import { EnvoyAdminMetricProvider } from "../controller/src/metrics/envoy-admin.ts";
import { PrometheusClient } from "../controller/src/metrics/prometheus-http.ts";
import { PrometheusMetricProvider } from "../controller/src/metrics/prometheus-provider.ts";
import type { MetricReading, RolloutCounts } from "../controller/src/metrics/provider.ts";
import { repoRoot } from "../controller/src/paths.ts";
import { startPrometheus } from "../controller/src/prometheus/process.ts";
import { median, percentile, present } from "./lib.ts";

const SIDECARS = Number(process.env.BENCH_SIDECARS ?? 1000);
const TICKS = Number(process.env.BENCH_TICKS ?? 5);
const SCRAPE_MS = Number(process.env.BENCH_SCRAPE_MS ?? 15_000);
const SEGMENT_VALUES = Number(process.env.BENCH_SEGMENT_VALUES ?? 0);
const ROLLOUT = "fraud-model";
const VALUES = Array.from({ length: SEGMENT_VALUES }, (_, i) => `t${i}`);

/** A process's resident memory (MiB) and CPU seconds so far, from /proc. */
function processUse(pid: number): { rssMiB: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return { rssMiB: rss, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100 };
}

const fmt = (xs: number[]) => `${median(xs).toFixed(0)} / ${percentile(xs, 0.95).toFixed(0)}`;

async function main(): Promise<void> {
  const parsed = parseEngineSpec(
    {
      owner: "bench",
      rollbackCondition: "bench",
      stages: [5, 100],
      stageDefaults: { minDurationSeconds: 3600, minRequests: 100, deadlineSeconds: 7200 },
      promotion_gates: { latency_p95_ms: { maximum_regression_percent: 10 }, error_rate: { maximum: 0.01 }, schema_validation_pass_rate: { minimum: 0.995 } },
    },
    { hasOutputSchema: true },
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const segments = SEGMENT_VALUES > 0 ? [{ dimension: "tenant", values: VALUES }] : [];
  const since = Date.now();
  const sidecars = fork(join(repoRoot, "bench", "sidecars.ts"), [], { execArgv: ["--import", "tsx"], env: process.env });
  const next = () => new Promise<{ bytes: number; urls?: string[]; series?: number; kib?: number }>((resolve) => sidecars.once("message", resolve as never));
  const hello = await next();
  const urls = present(hello.urls, "sidecar URLs in the first message");
  let servedBytes = hello.bytes;
  const advance = async () => {
    sidecars.send("advance");
    servedBytes = (await next()).bytes;
  };
  console.log(
    `${SIDECARS} sidecars (in their own process), ${hello.series} series each (${present(hello.kib, "sidecar page size").toFixed(0)} KiB), ${SEGMENT_VALUES} segment values; Prometheus scrapes every ${SCRAPE_MS / 1000} s`,
  );
  const started = performance.now();
  const prometheus = await startPrometheus({
    scrapeTargets: urls.map((u) => new URL(u).host),
    scrapeIntervalMs: SCRAPE_MS,
    readyTimeoutMs: 180_000,
    logLevel: "warn",
  });
  const client = new PrometheusClient({ baseUrl: prometheus.url, timeoutMs: 180_000 });
  // Every sidecar scraped once (asked with a small answer, not the 500 KB target list).
  for (const deadline = Date.now() + 240_000; ; ) {
    const up = await client.vector(`count(up == 1)`, Date.now());
    if (up.ok && up.samples[0]?.value === SIDECARS) break;
    if (Date.now() > deadline) throw new Error(`not every sidecar was scraped within 240 s: ${JSON.stringify(up).slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  console.log(`Prometheus up and every sidecar scraped once after ${((performance.now() - started) / 1000).toFixed(0)} s`);
  const admin = new EnvoyAdminMetricProvider(urls, { timeoutMs: 30_000 });
  const prom = new PrometheusMetricProvider(client, { maxLagMs: 3 * SCRAPE_MS });

  const now0 = Date.UTC(2026, 0, 1);
  let adminState: EngineState = initialState({ rollout: ROLLOUT, spec: parsed.spec, segments, now: now0 });
  let promState = adminState;
  const rows = {
    adminMs: [] as number[],
    promMs: [] as number[],
    adminBytes: [] as number[],
    promBytes: [] as number[],
    adminStepMs: [] as number[],
    promStepMs: [] as number[],
    adminCpuMs: [] as number[],
    promCpuMs: [] as number[],
    prometheusCpuMs: [] as number[],
  };
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let measurements = 0;
  const prometheusPid = present(prometheus.child.pid, "Prometheus process id");
  const cpuStart = processUse(prometheusPid);
  try {
    for (let tick = 0; tick <= TICKS; tick++) {
      await advance();
      const changedAt = Date.now();
      // Every sidecar scraped since the change: the oldest of their newest samples is after it.
      const deadline = Date.now() + 4 * SCRAPE_MS;
      for (;;) {
        const v = await client.vector(`min(timestamp(modelroll_requests{modelroll_rollout="${ROLLOUT}",modelroll_variant="stable"}))`, Date.now());
        if (v.ok && v.samples.length === 1 && v.samples[0].value * 1000 >= changedAt) break;
        if (Date.now() > deadline) throw new Error(`Prometheus did not scrape every sidecar within ${4 * SCRAPE_MS} ms`);
        await new Promise((r) => setTimeout(r, 500));
      }
      const at = Date.now();
      const c0 = cpuMs();
      const a0 = performance.now();
      const adminReading = await admin.readRollout(ROLLOUT, { at, since });
      const a1 = performance.now();
      const c1 = cpuMs();
      const bytesBefore = client.bytesReceived;
      const p0 = processUse(prometheusPid).cpuSeconds;
      const promReading = await prom.readRollout(ROLLOUT, { at, since });
      const a2 = performance.now();
      const c2 = cpuMs();
      const p1 = processUse(prometheusPid).cpuSeconds;
      if (adminReading.status !== "measured" || adminReading.sources.some((s) => !s.ok))
        throw new Error(`admin read failed: ${JSON.stringify(adminReading).slice(0, 300)}`);
      if (promReading.status !== "measured") throw new Error(`Prometheus read failed: ${promReading.error}`);
      const adminStep = step(adminState, { now: now0 + tick * 10_000, counts: adminReading as MetricReading<RolloutCounts> });
      const a3 = performance.now();
      const promStep = step(promState, { now: now0 + tick * 10_000, counts: promReading });
      const a4 = performance.now();
      adminState = adminStep.state;
      promState = promStep.state;
      // To the engine an absent counter is 0; Prometheus' answer leaves out sums that are 0.
      const counted = (r: RolloutCounts) =>
        JSON.stringify(
          Object.entries(toSnapshot(r).slices).map(([k, v]) => [
            k,
            Object.entries(v).map(([variant, c]) => [
              variant,
              Object.entries(c?.counters ?? {})
                .filter(([, n]) => n !== 0)
                .sort(),
            ]),
          ]),
        );
      const same = counted(adminReading.value) === counted(promReading.value);
      const verdicts = (r: typeof adminStep) => JSON.stringify(r.evaluation?.measurements.map((m) => [m.gate, m.segment, m.status, m.candidateValue]) ?? []);
      if (!same || verdicts(adminStep) !== verdicts(promStep)) throw new Error(`tick ${tick}: the two sources disagree`);
      measurements = adminStep.evaluation?.measurements.length ?? measurements;
      if (tick === 0) continue; // the first tick only enters the stage
      rows.adminMs.push(a1 - a0);
      rows.promMs.push(a2 - a1);
      rows.adminBytes.push(servedBytes);
      rows.promBytes.push(client.bytesReceived - bytesBefore);
      rows.adminStepMs.push(a3 - a2);
      rows.promStepMs.push(a4 - a3);
      // The controller's CPU for each read, and Prometheus' CPU while it answered (its scraping at the time included).
      rows.adminCpuMs.push(c1 - c0);
      rows.promCpuMs.push(c2 - c1);
      rows.prometheusCpuMs.push((p1 - p0) * 1000);
      console.log(
        `tick ${tick}: admin ${(a1 - a0).toFixed(0)} ms, Prometheus ${(a2 - a1).toFixed(0)} ms; same counters and ${measurements} identical verdicts`,
      );
    }
  } finally {
    const use = processUse(prometheusPid);
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `Prometheus during the run: RSS ${use.rssMiB.toFixed(0)} MiB, ${(use.cpuSeconds - cpuStart.cpuSeconds).toFixed(1)} CPU s over the timed ticks (scraping ${SIDECARS} sidecars and answering the queries), ${seconds.toFixed(0)} s in all`,
    );
    await prometheus.stop();
    sidecars.disconnect();
  }
  const kib = (xs: number[]) => `${(median(xs) / 1024).toFixed(0)} KiB`;
  console.log(`per tick, median / p95 over ${TICKS} ticks (${SIDECARS} sidecars, ${measurements} measurements):`);
  console.log(`  read through Prometheus:          ${fmt(rows.promMs)} ms, ${kib(rows.promBytes)} received`);
  console.log(`  read by scraping every admin port: ${fmt(rows.adminMs)} ms, ${kib(rows.adminBytes)} received (baseline)`);
  console.log(
    `  ratio Prometheus / admin: time ${(median(rows.promMs) / median(rows.adminMs)).toFixed(2)}, bytes ${(median(rows.promBytes) / median(rows.adminBytes)).toFixed(4)}`,
  );
  console.log(
    `  CPU: the controller ${median(rows.promCpuMs).toFixed(0)} ms through Prometheus (Prometheus itself ${median(rows.prometheusCpuMs).toFixed(0)} ms, scraping included) vs ${median(rows.adminCpuMs).toFixed(0)} ms scraping every admin port`,
  );
  console.log(`  engine step on each reading: ${median(rows.promStepMs).toFixed(1)} / ${median(rows.adminStepMs).toFixed(1)} ms (Prometheus / admin)`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
