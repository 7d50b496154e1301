// Benchmark (not a test): how do the filter's latency histograms see two identical models, one answering
// the primary requests and one the mirrored copies? One Envoy (2 workers) with the filter, the stable and
// the shadow demo models running the same code; an open loop sends requests at a fixed rate, every one
// mirrored. Printed per round: p50/p95 of
//   stable latency_us          the primary, request headers -> response headers (what canary gates compare)
//   shadow primary_latency_us  the same primary requests, timed like the mirrored call (request complete -> answer complete)
//   shadow latency_us          the mirrored calls, dispatch -> callback
// and the ratios shadow / stable (the unpaired comparison) and shadow / paired primary.
//   npm run bench:shadow-latency      (BENCH_RATE requests/s, BENCH_SECONDS per round, BENCH_REPEATS rounds)
import { histogramQuantile } from "../controller/src/metrics/histogram.ts";
import { parsePrometheusText } from "../controller/src/metrics/prometheus-text.ts";
import type { HistogramBucket } from "../controller/src/metrics/provider.ts";
import { api, sendMany, startStack, waitFor } from "../test/e2e/harness.ts";
import { median, present } from "./lib.ts";

const RATE = Number(process.env.BENCH_RATE ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const NAME = "paired";

type Histograms = Record<string, HistogramBucket[]>;

/** Cumulative buckets of the overall slice's histograms, keyed "<variant> <histogram>". */
async function histograms(adminUrl: string): Promise<Histograms> {
  const filter = encodeURIComponent(`^wasmcustom\\.modelroll\\.rollout\\.${NAME}\\.variant\\.[a-z]+\\.[a-z_]*latency_us$`);
  const text = await (await fetch(`${adminUrl}/stats/prometheus?usedonly&filter=${filter}`)).text();
  const out: Histograms = {};
  for (const s of parsePrometheusText(text).samples) {
    const m = /^modelroll_(.*latency_us)_bucket$/.exec(s.name);
    if (!m || s.labels.modelroll_segment !== undefined || s.labels.le === undefined) continue;
    const key = `${s.labels.modelroll_variant} ${m[1]}`;
    (out[key] ??= []).push({ upperBound: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), cumulativeCount: s.value });
  }
  return out;
}

function minus(after: HistogramBucket[] | undefined, before: HistogramBucket[] | undefined): HistogramBucket[] {
  const was = new Map((before ?? []).map((b) => [b.upperBound, b.cumulativeCount]));
  return (after ?? []).map((b) => ({ upperBound: b.upperBound, cumulativeCount: b.cumulativeCount - (was.get(b.upperBound) ?? 0) }));
}

const ms = (us: number | null) => (us === null ? NaN : us / 1000);

/** Requests leave on schedule (open loop), `RATE` per second, each with its own sticky key. */
async function openLoop(url: string, seconds: number, round: number): Promise<void> {
  const total = Math.round(RATE * seconds);
  const start = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / RATE - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(sendMany(url, 1, () => ({ "x-user-id": `r${round}-${i}` }), 1));
  }
  await Promise.all(pending);
}

const stack = await startStack();
try {
  const r = await api(present(stack.controller, "controller in the stack").url, "POST", "/v1/rollouts", {
    name: NAME,
    match: { pathPrefix: `/${NAME}` },
    stickyKey: { header: "x-user-id" },
    shadow: { percent: 100, timeoutMs: 5000 },
  });
  if (r.status !== 201) throw new Error(JSON.stringify(r.json));
  await waitFor(
    "rollout active",
    async () => (await sendMany(`${stack.dataUrl}/${NAME}/p`, 8, (i) => ({ "x-user-id": `w${i}` }), 2)).every((x) => x.variant !== null),
    15_000,
    50,
  );
  console.log(`identical demo models, ${RATE} requests/s, every request mirrored, ${SECONDS} s per round`);
  const rows: Array<Record<string, number>> = [];
  for (let round = 0; round < REPEATS; round++) {
    const before = await histograms(stack.adminUrl);
    await openLoop(`${stack.dataUrl}/${NAME}/p`, SECONDS, round);
    await new Promise((res) => setTimeout(res, 1500)); // histograms reach the admin endpoint at each 1 s flush
    const after = await histograms(stack.adminUrl);
    const q = (key: string, p: number) => ms(histogramQuantile(p, minus(after[key], before[key])));
    const row = {
      stableP50: q("stable latency_us", 0.5),
      stableP95: q("stable latency_us", 0.95),
      pairedP50: q("shadow primary_latency_us", 0.5),
      pairedP95: q("shadow primary_latency_us", 0.95),
      shadowP50: q("shadow latency_us", 0.5),
      shadowP95: q("shadow latency_us", 0.95),
    };
    rows.push(row);
    console.log(
      `round ${round + 1}: p95 stable ${row.stableP95.toFixed(3)} ms, paired primary ${row.pairedP95.toFixed(3)} ms, shadow ${row.shadowP95.toFixed(3)} ms` +
        ` (p50 ${row.stableP50.toFixed(3)} / ${row.pairedP50.toFixed(3)} / ${row.shadowP50.toFixed(3)} ms);` +
        ` shadow/stable ${(row.shadowP95 / row.stableP95).toFixed(3)}, shadow/paired ${(row.shadowP95 / row.pairedP95).toFixed(3)}`,
    );
  }
  const med = (k: string) => median(rows.map((x) => x[k]));
  console.log(
    `median of ${REPEATS}: p95 stable ${med("stableP95").toFixed(3)} ms, paired primary ${med("pairedP95").toFixed(3)} ms, shadow ${med("shadowP95").toFixed(3)} ms;` +
      ` shadow/stable ${(med("shadowP95") / med("stableP95")).toFixed(3)}, shadow/paired ${(med("shadowP95") / med("pairedP95")).toFixed(3)}`,
  );
} finally {
  await stack.stop();
}
