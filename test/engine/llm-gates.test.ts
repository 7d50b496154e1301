// The gates on streamed LLM answers: ttft_p<NN>_ms and tpot_p<NN>_ms (quantiles, like latency_p95_ms),
// stream_cut_off_rate (a proportion) and output_tokens_per_answer (a mean): their parsing and their verdicts.
import { describe, expect, it } from "vitest";
import { errorBudget } from "../../controller/src/engine/budget.ts";
import type { HistogramSnapshot, SliceSnapshot } from "../../controller/src/engine/counts.ts";
import type { MeanGate, ProportionGate, QuantileGate } from "../../controller/src/engine/gate-spec.ts";
import { evaluateGates, type GateEvaluationInput } from "../../controller/src/engine/gates.ts";
import { MeasurementStatus } from "../../controller/src/engine/measurement.ts";
import { parseEngineSpec } from "../../controller/src/engine/spec.ts";
import { ENVOY_LATENCY_BOUNDS } from "./sim.ts";
import { specFrom } from "./drive.ts";

const { Passed, Failed } = MeasurementStatus;
const base = { owner: "team-chat", rollbackCondition: "first token 10% slower", stages: ["shadow", 5, 100] };
const parse = (gates: Record<string, unknown>) => parseEngineSpec({ ...base, promotion_gates: gates }, { hasOutputSchema: false, hasShadow: true });
const gatesOf = (gates: Record<string, unknown>) => {
  const parsed = parse(gates);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec.gates;
};

describe("LLM gate specs", () => {
  it("reads ttft and tpot quantile gates like latency gates, on their own histograms and tolerances, outside shadow stages", () => {
    const [ttft, tpot, p99, tpot50] = gatesOf({
      ttft_p95_ms: { maximum_regression_percent: 10 },
      tpot_p95_ms: { maximum_regression_percent: 20, maximum: 50 },
      ttft_p99_ms: { maximum: 2000, during: ["canary"] },
      tpot_p50_ms: { maximum_regression_percent: 15, tolerance_ms: 0 },
    }) as QuantileGate[];
    expect(ttft).toMatchObject({
      kind: "quantile",
      histogram: "ttft_latency_us",
      quantile: 0.95,
      tolerance: 2000,
      limits: { maxRatio: 1.1 },
      during: ["canary", "bake"],
    });
    expect(ttft?.label).toBe("p95 time to first token");
    expect(tpot).toMatchObject({
      histogram: "tpot_latency_us",
      tolerance: 500,
      limits: { maxRatio: 1.2, maximum: 50_000 },
      label: "p95 time per output token",
    });
    expect(p99).toMatchObject({ histogram: "ttft_latency_us", quantile: 0.99, limits: { maximum: 2_000_000 }, during: ["canary"] });
    expect(tpot50).toMatchObject({ histogram: "tpot_latency_us", quantile: 0.5, tolerance: 0, limits: { maxRatio: 1.15 } });
  });

  it("reads the cut-off rate as a proportion of streams and output tokens as a mean over [0, max_tokens]", () => {
    const [cut, tokens] = gatesOf({
      stream_cut_off_rate: { maximum: 0.01, maximum_increase: 0.005 },
      output_tokens_per_answer: { maximum_increase: 8, max_tokens: 64 },
    }) as [ProportionGate, MeanGate];
    expect(cut).toMatchObject({ kind: "proportion", numerator: ["stream_cut_off"], denominator: ["streams"], limits: { maximum: 0.01, maxDelta: 0.005 } });
    expect(tokens).toMatchObject({ kind: "mean", histogram: "completion_tokens", range: [0, 64], limits: { maxDelta: 8 } });
  });

  it.each([
    ["no limit", { ttft_p95_ms: {} }, "/promotion_gates/ttft_p95_ms", /needs at least one limit/],
    ["a cut-off rate of 100%", { stream_cut_off_rate: { maximum: 1 } }, "/promotion_gates/stream_cut_off_rate/maximum", /must be below 1/],
    [
      "a mean at max_tokens",
      { output_tokens_per_answer: { maximum: 64, max_tokens: 64 } },
      "/promotion_gates/output_tokens_per_answer/maximum",
      /below max_tokens/,
    ],
    ["an unknown key", { tpot_p95_ms: { maximum_regression: 10 } }, "/promotion_gates/tpot_p95_ms/maximum_regression", /./],
    ["only shadow stages", { ttft_p95_ms: { maximum: 100, during: ["shadow"] } }, "/promotion_gates/ttft_p95_ms/during", /./],
  ])("refuses %s, with its pointer", (_what, gates, path, reason) => {
    const parsed = parse(gates);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors).toContainEqual({ path, reason: expect.stringMatching(reason) });
  });
});

describe("LLM gate verdicts", () => {
  /** n observations spread evenly over the Envoy buckets between `fromUs` and `toUs`. */
  function spread(n: number, fromUs: number, toUs: number): HistogramSnapshot {
    const bounds = ENVOY_LATENCY_BOUNDS.filter((b) => b >= fromUs && b <= toUs);
    const cumulative = bounds.map((_, i) => Math.round((n * (i + 1)) / bounds.length));
    return { bounds, cumulative, total: n, sum: n * ((fromUs + toUs) / 2) };
  }
  /** n answers of exactly `each` tokens, in the bootstrap's _tokens buckets (every count to 20, then 5% apart). */
  function tokens(n: number, each: number): HistogramSnapshot {
    const bounds = Array.from({ length: 40 }, (_, i) => i + 1);
    return { bounds, cumulative: bounds.map((b) => (b >= each ? n : 0)), total: n, sum: n * each };
  }
  const slice = (histograms: Record<string, HistogramSnapshot>, counters: Record<string, number> = {}): SliceSnapshot => ({ counters, histograms });

  function evaluate(gates: Record<string, unknown>, stable: SliceSnapshot, canary: SliceSnapshot) {
    const spec = specFrom({ stages: [5, 100], promotion_gates: gates }, { hasOutputSchema: false });
    const input: GateEvaluationInput = {
      gates: spec.gates,
      stageKind: "canary",
      candidate: "canary",
      budget: errorBudget(spec, []),
      window: { slices: { overall: { stable, canary } } },
      windowError: null,
      accumulated: null,
      slices: ["overall"],
      promql: undefined,
      external: {},
    };
    return evaluateGates(input);
  }

  it("fails a canary whose first token is 30% slower, naming time to first token, and passes an equal one", () => {
    const stable = slice({ ttft_latency_us: spread(5000, 95_000, 105_000) });
    const [slow] = evaluate({ ttft_p95_ms: { maximum_regression_percent: 10 } }, stable, slice({ ttft_latency_us: spread(5000, 123_000, 137_000) }));
    expect(slow?.status).toBe(Failed);
    expect(slow?.gate).toBe("ttft_p95_ms");
    expect(slow?.reason).toMatch(/^p95 time to first token [\d.]+ ms vs [\d.]+ ms/);
    const [same] = evaluate({ ttft_p95_ms: { maximum_regression_percent: 10 } }, stable, slice({ ttft_latency_us: spread(5000, 95_000, 105_000) }));
    expect(same?.status).toBe(Passed);
  });

  it("judges tpot on its own histogram: a slower ttft does not touch it", () => {
    const stable = slice({ tpot_latency_us: spread(5000, 4_800, 5_200), ttft_latency_us: spread(5000, 95_000, 105_000) });
    const canary = slice({ tpot_latency_us: spread(5000, 4_800, 5_200), ttft_latency_us: spread(5000, 150_000, 160_000) });
    const [tpot] = evaluate({ tpot_p95_ms: { maximum_regression_percent: 10 } }, stable, canary);
    expect(tpot?.status).toBe(Passed);
    const [doubled] = evaluate({ tpot_p95_ms: { maximum_regression_percent: 10 } }, stable, slice({ tpot_latency_us: spread(5000, 9_600, 10_400) }));
    expect(doubled?.status).toBe(Failed);
  });

  it("fails a canary cutting off 5% of its streams against a 1% maximum, and passes one cutting none", () => {
    const stable = slice({}, { streams: 4000, stream_cut_off: 0 });
    const [cut] = evaluate({ stream_cut_off_rate: { maximum: 0.01 } }, stable, slice({}, { streams: 4000, stream_cut_off: 200 }));
    expect(cut?.status).toBe(Failed);
    expect(cut?.reason).toMatch(/cut-off stream rate/);
    const [clean] = evaluate({ stream_cut_off_rate: { maximum: 0.01 } }, stable, slice({}, { streams: 4000, stream_cut_off: 0 }));
    expect(clean?.status).toBe(Passed);
  });

  it("fails a canary answering twice as long (16 -> 32 tokens) against an increase of at most 8 tokens", () => {
    const stable = slice({ completion_tokens: tokens(4000, 16) });
    const [longer] = evaluate({ output_tokens_per_answer: { maximum_increase: 8, max_tokens: 64 } }, stable, slice({ completion_tokens: tokens(4000, 32) }));
    expect(longer?.status).toBe(Failed);
    expect(longer?.reason).toMatch(/output tokens per answer/);
    const [same] = evaluate({ output_tokens_per_answer: { maximum_increase: 8, max_tokens: 64 } }, stable, slice({ completion_tokens: tokens(4000, 16) }));
    expect(same?.status).toBe(Passed);
  });
});
