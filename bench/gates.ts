// Benchmark (not a test): what one gate evaluation costs the controller with 100 Envoy stat endpoints and
// 10 segment values. Each endpoint is a local HTTP server answering /stats/prometheus with recorded stats
// (the filter's series in Envoy's format, all 273 latency buckets per series, as `usedonly` prints them),
// advancing one recorded tick per evaluation. Per tick: the Envoy admin provider scrapes and sums all
// endpoints, then the engine evaluates every gate overall and per segment value. The parse + sum figure
// comes with a baseline timed in the same run: the same texts through the parser and summing it replaced.
//   npx tsx bench/gates.ts        (BENCH_ENDPOINTS, BENCH_TICKS, BENCH_ROLLOUTS to change the sizes)
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { EnvoyAdminMetricProvider } from "../controller/src/metrics/envoy-admin.ts";
import { parsePrometheusText } from "../controller/src/metrics/prometheus-text.ts";
import type { RolloutCounts } from "../controller/src/metrics/provider.ts";
import { rolloutCountsFromSamples } from "../controller/src/metrics/rollout-counts.ts";
import { parseEngineSpec } from "../controller/src/engine/spec.ts";
import { initialState, type EngineState } from "../controller/src/engine/state.ts";
import { step } from "../controller/src/engine/step.ts";
import { SqliteRolloutState } from "../controller/src/rollouts/sqlite-state.ts";
import type { Rollout } from "../controller/src/rollouts/model.ts";
import { referenceParse, referenceRolloutCounts } from "../test/controller/prometheus-reference.ts";
import { GOOD, TrafficSim } from "../test/engine/sim.ts";
import { renderRolloutStats } from "./stats-text.ts";

const ENDPOINTS = Number(process.env.BENCH_ENDPOINTS ?? 100);
const TICKS = Number(process.env.BENCH_TICKS ?? 20);
const ROLLOUTS = Number(process.env.BENCH_ROLLOUTS ?? 100);
const REQUESTS_PER_TICK = 300;
const BASELINE_ROUNDS = 5;
const ROLLOUT = "fraud-model";
const VALUES = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"]; // + "other" = 10 segment values
const SHARES = Object.fromEntries([...VALUES, "other"].map((v) => [v, 0.1]));

function render(counts: RolloutCounts): string {
  return renderRolloutStats(ROLLOUT, counts, { omitZeroResponses: true });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function main(): Promise<void> {
  const parsed = parseEngineSpec(
    {
      owner: "bench",
      rollbackCondition: "bench",
      stages: [5, 100],
      stageDefaults: { minDurationSeconds: 3600, minRequests: 100, deadlineSeconds: 7200 },
      promotion_gates: {
        latency_p95_ms: { maximum_regression_percent: 10 },
        error_rate: { maximum: 0.01 },
        schema_validation_pass_rate: { minimum: 0.995 },
      },
    },
    { hasOutputSchema: true },
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const segments = [{ dimension: "tenant", values: VALUES }];

  // Recorded stats: each endpoint's traffic, rendered one tick ahead of its scrape (outside the timing).
  const sims = Array.from(
    { length: ENDPOINTS },
    (_, e) => new TrafficSim({ seed: e + 1, segment: { dimension: "tenant", shares: SHARES }, behavior: () => GOOD, allBuckets: true }),
  );
  let current: string[] = [];
  const record = () => {
    current = sims.map((sim) => {
      sim.run(REQUESTS_PER_TICK, { canaryPercent: 5, shadowPercent: 0 });
      return render(sim.counts());
    });
  };

  const servers: Server[] = [];
  const urls: string[] = [];
  for (let e = 0; e < ENDPOINTS; e++) {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end(current[e]);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  const provider = new EnvoyAdminMetricProvider(urls, { timeoutMs: 10_000 });

  const now0 = Date.UTC(2026, 0, 1);
  let state: EngineState = initialState({ rollout: ROLLOUT, spec: parsed.spec, segments, now: now0 });
  const scrapeMs: number[] = [];
  const stepMs: number[] = [];
  let measurements = 0;
  const parseMs: number[] = [];
  // Each tick's outcome written to a state file, as the store does (one transaction: rollout record + decisions).
  const stateDir = mkdtempSync(join(tmpdir(), "modelroll-bench-"));
  const stateFile = new SqliteRolloutState(join(stateDir, "state.db"));
  stateFile.initialize("benchbenchbench0", 1);
  const writeMs: number[] = [];
  let failedSources = 0;
  let firstFailure: string | null = null;
  let decisionsWritten = 0;
  for (let tick = 0; tick <= TICKS; tick++) {
    record();
    const a = performance.now();
    const reading = await provider.readRollout(ROLLOUT);
    const b = performance.now();
    if (reading.status !== "measured") throw new Error(`bench: scrape failed: ${reading.error}`);
    // A partial scrape is quicker and would flatter the figure: count it, and say so below.
    const failed = reading.sources.filter((source) => !source.ok);
    if (tick > 0) failedSources += failed.length;
    if (failed.length > 0 && firstFailure === null) firstFailure = `${failed[0].url}: ${failed[0].error}`;
    const result = step(state, { now: now0 + tick * 10_000, counts: reading });
    const c = performance.now();
    state = result.state;
    measurements = result.evaluation?.measurements.length ?? measurements;
    // The same texts without HTTP: how much of the scrape is parsing and summing.
    const d = performance.now();
    rolloutCountsFromSamples(
      current.flatMap((text) => parsePrometheusText(text).samples),
      ROLLOUT,
    );
    const e = performance.now();
    const at = new Date(now0 + tick * 10_000);
    const saved = {
      spec: { name: ROLLOUT },
      canaryPercent: 5,
      shadowPercent: 0,
      configVersion: tick + 2,
      revision: tick + 1,
      createdAt: at,
      updatedAt: at,
      lastRollbackAt: null,
      engine: { state, decisions: [], lastEvaluation: result.evaluation ?? null },
    } as unknown as Rollout;
    stateFile.write({ version: tick + 2, rollout: saved, newDecisions: result.decisions });
    decisionsWritten += result.decisions.length;
    const f = performance.now();
    if (tick > 0) {
      scrapeMs.push(b - a);
      stepMs.push(c - b);
      parseMs.push(e - d);
      writeMs.push(f - e);
    }
  }
  stateFile.close();
  // The baseline, in the same run but after the timed ticks (3-4 s of blocked event loop inside a tick makes
  // the endpoint servers drop kept-alive connections): the last tick's texts through the current parse + sum
  // and through the code it replaced (kept for the differential test), alternately.
  const currentParseMs: number[] = [];
  const baselineParseMs: number[] = [];
  for (let round = 0; round < BASELINE_ROUNDS; round++) {
    const g = performance.now();
    rolloutCountsFromSamples(
      current.flatMap((text) => parsePrometheusText(text).samples),
      ROLLOUT,
    );
    const h = performance.now();
    referenceRolloutCounts(
      current.flatMap((text) => referenceParse(text).samples),
      ROLLOUT,
    );
    currentParseMs.push(h - g);
    baselineParseMs.push(performance.now() - h);
  }
  rmSync(stateDir, { recursive: true, force: true });
  console.log(`one endpoint's scrape is ${(current[0].length / 1024).toFixed(0)} KiB, ${current[0].split("\n").length} lines`);
  for (const s of servers) s.close();

  const sortedScrape = [...scrapeMs].sort((x, y) => x - y);
  const sortedStep = [...stepMs].sort((x, y) => x - y);
  console.log(
    failedSources === 0
      ? `every endpoint answered on every timed tick`
      : `WARNING: ${failedSources} of ${ENDPOINTS * TICKS} endpoint scrapes failed (first: ${firstFailure}); the scrape figure below covers partial reads`,
  );
  console.log(`per evaluation (${ENDPOINTS} endpoints, 10 segment values, 3 gates -> ${measurements} measurements), median / p95 over ${TICKS} ticks:`);
  console.log(`  scrape + parse + sum (EnvoyAdminMetricProvider): ${quantile(sortedScrape, 0.5).toFixed(1)} / ${quantile(sortedScrape, 0.95).toFixed(1)} ms`);
  const sortedParse = [...parseMs].sort((x, y) => x - y);
  console.log(`    of which parse + sum alone (no HTTP):          ${quantile(sortedParse, 0.5).toFixed(1)} / ${quantile(sortedParse, 0.95).toFixed(1)} ms`);
  const baselineMedian = quantile(
    [...baselineParseMs].sort((x, y) => x - y),
    0.5,
  );
  const currentMedian = quantile(
    [...currentParseMs].sort((x, y) => x - y),
    0.5,
  );
  console.log(
    `    baseline, ${BASELINE_ROUNDS} rounds on the last tick's texts: the code it replaced ${baselineMedian.toFixed(1)} ms, current ${currentMedian.toFixed(1)} ms` +
      ` (median ratio baseline/current ${(baselineMedian / currentMedian).toFixed(2)})`,
  );
  console.log(`  engine step (window, gates, traffic mix):       ${quantile(sortedStep, 0.5).toFixed(2)} / ${quantile(sortedStep, 0.95).toFixed(2)} ms`);
  const sortedWrite = [...writeMs].sort((x, y) => x - y);
  console.log(
    `  state file write (SQLite, WAL, one transaction): ${quantile(sortedWrite, 0.5).toFixed(2)} / ${quantile(sortedWrite, 0.95).toFixed(2)} ms` +
      ` (${decisionsWritten} decisions written; median ratio to the engine step ${(quantile(sortedWrite, 0.5) / quantile(sortedStep, 0.5)).toFixed(2)})`,
  );

  // Memory: the engine state of ROLLOUTS rollouts like this one (each holds its stage baseline).
  const stateJson = JSON.stringify(state);
  globalThis.gc?.();
  const before = process.memoryUsage().heapUsed;
  const states = Array.from({ length: ROLLOUTS }, () => JSON.parse(stateJson) as EngineState);
  globalThis.gc?.();
  const after = process.memoryUsage().heapUsed;
  console.log(
    `memory: one rollout's engine state is ${(stateJson.length / 1024).toFixed(0)} KiB as JSON; ${ROLLOUTS} of them add ${((after - before) / 1024 / 1024).toFixed(1)} MiB of heap` +
      `${globalThis.gc ? "" : " (run with node --expose-gc for a steadier figure)"}; process RSS ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MiB`,
  );
  if (states.length !== ROLLOUTS) throw new Error("unreachable");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
