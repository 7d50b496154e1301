// Benchmark (not a test): sequential tests compared on the samples a gate needs to decide, at equal
// false-rollback guarantees (every method is valid at every look at the same nominal alpha, and its measured
// false-alarm rate at the boundary is printed next to it). Per gate kind:
//   proportions (error rate, schema pass rate): the Jeffreys beta-binomial mixture the engine used before
//     (loaded from git at a6cca0d), the one-sided tilt mixture it uses now (sequences.ts), and a betting
//     sequence (predictable plug-in Kelly bets, one bet size per tick, Waudby-Smith & Ramdas 2023);
//   latency p95 against 10% above stable (canary at 5% of traffic, Envoy's 5% buckets): the quantile
//     intervals before (Jeffreys; Fail on the strict interval) and now (tilt mixture; both directions at the
//     histogram's resolution; alpha split by the traffic shares), and a sequential rank (exceedance) test:
//     each canary observation scored by whether it lies above 1.1 x stable's upper p95 bound of the look
//     before, the scores tested with the tilt mixture.
//   npx tsx bench/sequential-tests.ts        (BENCH_RUNS, default 400; BENCH_ALPHA, default 0.005)
import { engineModuleBefore } from "./decisions/engines.ts";
import { logTiltMixture, quantileConfidenceSequence, type CumulativeHistogram } from "../controller/src/engine/sequences.ts";
import { ENVOY_LATENCY_BOUNDS, rng } from "../test/engine/sim.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 400);
const ALPHA = Number(process.env.BENCH_ALPHA ?? 0.005);
const BATCH = 25;

interface OldStatistics {
  proportionConfidenceSequence(s: number, n: number, alpha: number): { lower: number; upper: number };
  quantileConfidenceSequence(h: CumulativeHistogram, q: number, alpha: number): { lower: number; upper: number; bucketLower: number };
}

/** A sequential test fed batches of Bernoulli outcomes; says "reject" once (the null: the rate is on the limit's good side). */
interface ProportionTest {
  reset(): void;
  add(successes: number, trials: number): boolean;
}

function cumulative(decide: (s: number, n: number) => boolean): ProportionTest {
  let s = 0;
  let n = 0;
  return {
    reset: () => {
      s = 0;
      n = 0;
    },
    add(sb, nb) {
      s += sb;
      n += nb;
      return decide(s, n);
    },
  };
}

/** Betting: wealth prod (1 + lambda (x - p0)) on the side tested, lambda from the rate seen before this batch. */
function betting(p0: number, side: "above" | "below", alpha: number): ProportionTest {
  let logWealth = 0;
  let s = 0;
  let n = 0;
  const threshold = Math.log(1 / alpha);
  return {
    reset: () => {
      logWealth = 0;
      s = 0;
      n = 0;
    },
    add(sb, nb) {
      const estimate = (s + p0) / (n + 1); // shrunk towards p0
      const kelly = (estimate - p0) / Math.max(estimate * (1 - estimate), 1e-9);
      const lambda = side === "above" ? Math.min(Math.max(kelly, 0), 0.5 / p0) : Math.min(Math.max(-kelly, 0), 0.5 / (1 - p0));
      const win = side === "above" ? Math.log1p(lambda * (1 - p0)) : Math.log1p(-lambda * (1 - p0));
      const lose = side === "above" ? Math.log1p(-lambda * p0) : Math.log1p(lambda * p0);
      logWealth += sb * win + (nb - sb) * lose;
      s += sb;
      n += nb;
      return logWealth >= threshold;
    },
  };
}

function samplesToDecide(test: ProportionTest, rate: number, seed: number, maxSamples: number): number[] {
  const random = rng(seed);
  const out: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    test.reset();
    let n = 0;
    let done = Infinity;
    while (n < maxSamples) {
      let sb = 0;
      for (let i = 0; i < BATCH; i++) if (random() < rate) sb++;
      n += BATCH;
      if (test.add(sb, BATCH)) {
        done = n;
        break;
      }
    }
    out.push(done);
  }
  return out;
}

const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const fmt = (x: number) => (Number.isFinite(x) ? String(x) : "never");
  return `${fmt(q(0.5))} (p90 ${fmt(q(0.9))})`;
};
const rejectRate = (xs: number[]) => `${((xs.filter(Number.isFinite).length / xs.length) * 100).toFixed(1)}%`;

async function main(): Promise<void> {
  const old = await engineModuleBefore<OldStatistics>("statistics.ts");
  try {
    console.log(`# Sequential tests: samples to a decision (median, p90 over ${RUNS} runs), batches of ${BATCH} per look, alpha ${ALPHA}\n`);
    console.log("## Proportions (error rate against a 1% maximum; schema failures against a 0.5% allowance)\n");
    const cases: Array<{ name: string; rate: number; limit: number; side: "above" | "below"; max: number }> = [
      { name: "fail: 5% errors vs maximum 1%", rate: 0.05, limit: 0.01, side: "above", max: 20_000 },
      { name: "fail: 2% errors vs maximum 1%", rate: 0.02, limit: 0.01, side: "above", max: 50_000 },
      { name: "pass: 0.3% errors under maximum 1%", rate: 0.003, limit: 0.01, side: "below", max: 50_000 },
      { name: "fail: 2.05% schema failures vs 0.5%", rate: 0.0205, limit: 0.005, side: "above", max: 50_000 },
      { name: "pass: 0.05% schema failures under 0.5%", rate: 0.0005, limit: 0.005, side: "below", max: 50_000 },
    ];
    const methods = (limit: number, side: "above" | "below", alpha: number): Array<[string, ProportionTest]> => [
      [
        "Jeffreys mixture (before)",
        cumulative((s, n) =>
          side === "above"
            ? old.module.proportionConfidenceSequence(s, n, alpha).lower > limit
            : old.module.proportionConfidenceSequence(s, n, alpha).upper < limit,
        ),
      ],
      ["tilt mixture (now)", cumulative((s, n) => logTiltMixture(s, n, limit, side) >= Math.log(1 / alpha))],
      ["betting (plug-in Kelly)", betting(limit, side, alpha)],
    ];
    const rows = [
      "| case | " +
        methods(0.01, "above", ALPHA)
          .map(([m]) => m)
          .join(" | ") +
        " |",
      "|---|---|---|---|",
    ];
    cases.forEach((c, i) => {
      rows.push(
        `| ${c.name} | ${methods(c.limit, c.side, ALPHA)
          .map(([, t]) => summary(samplesToDecide(t, c.rate, 1000 + i, c.max)))
          .join(" | ")} |`,
      );
    });
    // Equal guarantees, checked: at the limit itself, how often does each wrongly decide within 20 000 samples?
    rows.push(
      `| false alarms at the limit (1% errors, alpha 0.05, 20 000 samples) | ${methods(0.01, "above", 0.05)
        .map(([, t]) => rejectRate(samplesToDecide(t, 0.01, 77, 20_000)))
        .join(" | ")} |`,
    );
    console.log(rows.join("\n"));

    console.log("\n## Latency p95, at most 10% above stable (canary 5% of traffic: 25 canary and 475 stable observations per look)\n");
    const latencyRows = [
      "| case | quantile intervals, Jeffreys (before) | quantile intervals, tilt mixture (now) | sequential rank (exceedance) test |",
      "|---|---|---|---|",
    ];
    for (const [name, ratio, wantFail] of [
      ["fail: canary p95 25% slower", 1.25, true],
      ["fail: canary p95 50% slower", 1.5, true],
      ["pass: canary as fast as stable", 1, false],
    ] as const) {
      latencyRows.push(`| ${name} | ${latencyMethods(old.module, ratio, wantFail, 2000 + Math.round(ratio * 100)).join(" | ")} |`);
    }
    latencyRows.push(
      `| false alarms, identical (alpha 0.05, 20 000 canary samples) | ${latencyMethods(old.module, 1, true, 99, 0.05, 20_000)
        .map((x) => x.replace(/^.*\[/, "").replace("]", ""))
        .join(" | ")} |`,
    );
    console.log(latencyRows.join("\n"));
  } finally {
    old.cleanup();
  }
}

/** Lognormal latency (median 40 ms, sigma 0.25) drawn into Envoy's buckets. */
function draw(random: () => number, counts: Float64Array, scale: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const x = 40_000 * scale * Math.exp(0.25 * z);
    let lo = 0;
    let hi = ENVOY_LATENCY_BOUNDS.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (x <= ENVOY_LATENCY_BOUNDS[mid]) hi = mid;
      else lo = mid + 1;
    }
    counts[lo]++;
  }
}

function histogram(counts: Float64Array): CumulativeHistogram {
  const cumulative: number[] = [];
  let running = 0;
  for (let i = 0; i < ENVOY_LATENCY_BOUNDS.length; i++) cumulative.push((running += counts[i]));
  return { bounds: ENVOY_LATENCY_BOUNDS, cumulative, total: running + counts[ENVOY_LATENCY_BOUNDS.length] };
}

function latencyMethods(old: OldStatistics, ratio: number, wantFail: boolean, seed: number, alpha = ALPHA, maxCanary = 30_000): string[] {
  const r = 1.1;
  const q = 0.95;
  const results: number[][] = [[], [], []];
  const random = rng(seed);
  for (let run = 0; run < RUNS; run++) {
    const stable = new Float64Array(ENVOY_LATENCY_BOUNDS.length + 1);
    const canary = new Float64Array(ENVOY_LATENCY_BOUNDS.length + 1);
    // An exceedance test only shows harm: it has no pass side.
    const done = [Infinity, Infinity, wantFail ? Infinity : 0];
    let n = 0;
    let exceed = 0;
    let threshold = Infinity;
    while (n < maxCanary && done.some((d) => !Number.isFinite(d))) {
      const before = canary.slice();
      draw(random, stable, 1, 19 * BATCH);
      draw(random, canary, ratio, BATCH);
      n += BATCH;
      const s = histogram(stable);
      const c = histogram(canary);
      // before: each variant at alpha/2; Fail on the strict interval, Pass at the histogram's resolution.
      if (!Number.isFinite(done[0])) {
        const ci = old.quantileConfidenceSequence(c, q, alpha / 2);
        const si = old.quantileConfidenceSequence(s, q, alpha / 2);
        const decided = wantFail ? si.upper < Infinity && ci.lower / si.upper > r : ci.upper / si.bucketLower <= r;
        if (decided) done[0] = n;
      }
      // now: the stable side gets the canary's traffic share of alpha (at least a tenth); both ways at bucket resolution.
      if (!Number.isFinite(done[1])) {
        const ci = quantileConfidenceSequence(c, q, alpha * 0.9);
        const si = quantileConfidenceSequence(s, q, alpha * 0.1);
        const decided = wantFail ? si.upper < Infinity && ci.bucketLower / si.upper > r : ci.upper / si.bucketLower <= r;
        if (decided) done[1] = n;
      }
      // rank (exceedance) test: this batch's canary observations above the threshold set at the previous look.
      if (!Number.isFinite(done[2])) {
        if (Number.isFinite(threshold)) {
          for (let i = 0; i < ENVOY_LATENCY_BOUNDS.length + 1; i++) {
            const bound = i < ENVOY_LATENCY_BOUNDS.length ? (ENVOY_LATENCY_BOUNDS[i - 1] ?? 0) : ENVOY_LATENCY_BOUNDS[ENVOY_LATENCY_BOUNDS.length - 1];
            if (bound >= threshold) exceed += canary[i] - before[i];
          }
          const scored = n - BATCH; // observations scored so far (the first batch sets the first threshold)
          if (wantFail && logTiltMixture(exceed, scored, 1 - q, "above") >= Math.log(2 / alpha)) done[2] = n;
        }
        const si = quantileConfidenceSequence(s, q, alpha / 2);
        threshold = r * si.upper;
      }
    }
    done.forEach((d, i) => {
      results[i].push(d);
    });
  }
  return results.map((xs, i) => (i === 2 && !wantFail ? "n/a (tests harm only)" : `${summary(xs)} [${rejectRate(xs)}]`));
}

await main();
