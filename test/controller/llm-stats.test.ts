// Streamed LLM answers as people see them: the /stats summary (metrics/summary.ts), the CLI's stats table
// (modelroll stats) and the dashboard's reading of the same view, stable vs canary.
import { describe, expect, it } from "vitest";
import { renderStats } from "../../controller/src/cli/modelroll/render-misc.ts";
import { paint } from "../../controller/src/cli/modelroll/format.ts";
import { emptyVariantCounts, type VariantCounts } from "../../controller/src/metrics/provider.ts";
import { summarizeVariant } from "../../controller/src/metrics/summary.ts";
import { readStats } from "../../dashboard/src/read-stats.ts";

/** A variant's counts with `n` streams whose first token took `ttftUs` and each later token `tpotUs`. */
function streamed(n: number, ttftUs: number, tpotUs: number, cutOff: number, tokens: number): VariantCounts {
  const c = emptyVariantCounts();
  c.requests = n;
  c.responses["2xx"] = n;
  c.counters = {
    streams: n,
    stream_chunks: n * (tokens + 3),
    stream_cut_off: cutOff,
    finish_stop: n - cutOff,
    llm_outputs: n,
    "predictions{label=missing}": n,
  };
  // Every observation in the bucket just below `value`: quantiles within a microsecond (a token) of it.
  const h = (value: number) => ({
    buckets: [
      { upperBound: value - 1, cumulativeCount: 0 },
      { upperBound: value, cumulativeCount: n },
      { upperBound: Infinity, cumulativeCount: n },
    ],
    sum: n * value,
    count: n,
  });
  c.histograms = { ttft_latency_us: h(ttftUs), tpot_latency_us: h(tpotUs), completion_tokens: h(tokens), prompt_tokens: h(9) };
  return c;
}

describe("streamed answers in /stats, the CLI and the dashboard", () => {
  const stable = summarizeVariant(streamed(400, 100_000, 5_000, 0, 16));
  const canary = summarizeVariant(streamed(200, 130_000, 5_000, 10, 32));

  it("summarizes streams per variant: TTFT and TPOT in ms, cut-off rate, finish reasons, mean output tokens", () => {
    const s = stable.output?.streams;
    expect([s?.ttftMs.p50, s?.ttftMs.p95, s?.tpotMs.p50, s?.tpotMs.p95].map((x) => Math.round(x ?? 0))).toEqual([100, 100, 5, 5]);
    expect(s).toMatchObject({
      count: 400,
      chunks: 400 * 19,
      ttftMs: { count: 400 },
      tpotMs: { count: 400 },
      cutOffRate: 0,
      malformedRate: 0,
      finish: { stop: 400 },
      outputTokensMean: 16,
    });
    expect(Math.round(canary.output?.streams?.ttftMs.p95 ?? 0)).toBe(130);
    expect(canary.output?.streams).toMatchObject({ cutOffRate: 0.05, finish: { stop: 190 }, outputTokensMean: 32 });
    // A classifier's answers have no streams section.
    const plain = emptyVariantCounts();
    plain.counters = { "predictions{label=approve}": 3 };
    expect(summarizeVariant(plain).output?.streams).toBeNull();
  });

  it("prints a streams table stable vs canary under the traffic table", () => {
    const text = renderStats({ variants: { stable, canary } }, paint(false));
    const lines = text.split("\n");
    const header = lines.findIndex((l) => l.startsWith("SLICE") && l.includes("TTFT P95"));
    expect(header).toBeGreaterThan(0);
    expect(lines[header]).toMatch(/STREAMS\s+TTFT P50\s+TTFT P95\s+TPOT P50\s+TPOT P95\s+CUT OFF\s+TOKENS\/ANSWER/);
    expect(lines[header + 1]).toMatch(/^overall\s+stable\s+400\s+100 ms\s+100 ms\s+5 ms\s+5 ms\s+0%?\S*\s+16$/);
    expect(lines[header + 2]).toMatch(/^overall\s+canary\s+200\s+130 ms\s+130 ms\s+5 ms\s+5 ms\s+5(\.0+)?%\s+32$/);
    // Without streams, no second table.
    expect(renderStats({ variants: { stable: summarizeVariant(emptyVariantCounts()) } }, paint(false))).not.toContain("TTFT");
  });

  it("reads the same figures for the dashboard's streams panel", () => {
    const picture = readStats({ variants: { stable, canary } });
    const s = picture.variants.stable?.streams;
    expect([s?.ttftP50, s?.ttftP95, s?.tpotP50, s?.tpotP95].map((x) => Math.round(x ?? 0))).toEqual([100, 100, 5, 5]);
    expect(s).toMatchObject({ count: 400, cutOffRate: 0, outputTokensMean: 16 });
    expect(Math.round(picture.variants.canary?.streams?.ttftP95 ?? 0)).toBe(130);
    expect(picture.variants.canary?.streams).toMatchObject({ cutOffRate: 0.05, outputTokensMean: 32 });
    expect(readStats({ variants: { stable: { output: { streams: "garbage" } } } }).variants.stable?.streams).toBeNull();
  });
});
