// evaluateGates on hand-made windows: the gate kinds the traffic simulator does not produce.
import { describe, expect, it } from "vitest";
import type { CountsSnapshot, HistogramSnapshot, SliceSnapshot } from "../../controller/src/engine/counts.ts";
import { evaluateGates, type GateEvaluationInput } from "../../controller/src/engine/gates.ts";
import { MeasurementStatus } from "../../controller/src/engine/measurement.ts";
import { specFrom } from "./drive.ts";

/** n confidence values all in the bucket (at-20, at] (thousandths), as Envoy's 0.02-wide buckets count them. */
function confidence(n: number, at: number): HistogramSnapshot {
  return { bounds: [at - 20, at], cumulative: [0, n], total: n, sum: n * (at - 10) };
}

function slice(counters: Record<string, number>, histograms: Record<string, HistogramSnapshot> = {}): SliceSnapshot {
  return { counters, histograms };
}

function input(gates: Record<string, unknown>, window: CountsSnapshot, extra: Partial<GateEvaluationInput> = {}): GateEvaluationInput {
  const spec = specFrom({ stages: ["shadow", 5, 100], promotion_gates: gates }, { hasOutputSchema: false });
  return {
    gates: spec.gates,
    stageKind: "canary",
    candidate: "canary",
    // One test of alpha 0.001 per gate: every gate its own share, no segments.
    budget: { falseAlarmRate: 0.001, perGate: 0.001, groups: {}, overallShare: 1, segmentValues: 0 },
    accumulated: null,
    window,
    windowError: null,
    slices: ["overall"],
    promql: undefined,
    external: {},
    ...extra,
  };
}

describe("evaluateGates", () => {
  it("confidence_drift: passes when the mean confidence is shown within the limit, fails when shown beyond", () => {
    const gates = { confidence_drift: { maximum: 0.05 } };
    const same = {
      slices: {
        overall: { stable: slice({}, { confidence_milli: confidence(200000, 900) }), canary: slice({}, { confidence_milli: confidence(20000, 900) }) },
      },
    };
    const [passed] = evaluateGates(input(gates, same));
    expect(passed).toMatchObject({ gate: "confidence_drift", status: MeasurementStatus.Passed, stableValue: 0.89, candidateValue: 0.89 });
    const drifted = { slices: { overall: { stable: same.slices.overall.stable, canary: slice({}, { confidence_milli: confidence(20000, 700) }) } } };
    const [failed] = evaluateGates(input(gates, drifted));
    expect(failed.status).toBe(MeasurementStatus.Failed);
    expect(failed.reason).toMatch(/^mean confidence 0\.69 vs 0\.89 \(at least -0\.05 vs stable/);
    const few = { slices: { overall: { stable: same.slices.overall.stable, canary: slice({}, { confidence_milli: confidence(50, 900) }) } } };
    expect(evaluateGates(input(gates, few))[0].status).toBe(MeasurementStatus.Inconclusive);
  });

  it("shadow_agreement_rate reads the shadow's comparison counters in a shadow stage", () => {
    const gates = { shadow_agreement_rate: { minimum: 0.9 } };
    const window = { slices: { overall: { stable: slice({ requests: 10000 }), shadow: slice({ prediction_agree: 700, prediction_disagree: 300 }) } } };
    const [m] = evaluateGates(input(gates, window, { stageKind: "shadow", candidate: "shadow" }));
    expect(m).toMatchObject({ status: MeasurementStatus.Failed, candidate: "shadow", candidateValue: 0.7, sampleSizes: { candidate: 1000 } });
    expect(m.reason).toMatch(/^shadow agreement rate 70% vs n\/a \(minimum 90%/);
    // Not evaluated in a canary stage (default `during: [shadow]`).
    expect(evaluateGates(input(gates, window))).toEqual([]);
  });

  it("a custom ratio gate sums the listed counters, '*' matching any label value", () => {
    const gates = { abstain_rate: { ratio: { numerator: ["abstained"], denominator: ["outputs{unanalyzed=*}", "llm_outputs"] }, maximum_increase: 0.05 } };
    const window = {
      slices: {
        overall: {
          stable: slice({ abstained: 100, llm_outputs: 9000, "outputs{unanalyzed=too_large}": 1000 }),
          canary: slice({ abstained: 400, llm_outputs: 900, "outputs{unanalyzed=no_body}": 100 }),
        },
      },
    };
    const [m] = evaluateGates(input(gates, window));
    expect(m).toMatchObject({ status: MeasurementStatus.Failed, candidateValue: 0.4, stableValue: 0.01, sampleSizes: { candidate: 1000, stable: 10000 } });
  });

  it("at 100% only absolute limits are judged; relative-only gates are left out", () => {
    const gates = { error_rate: { maximum: 0.01, maximum_increase: 0.001 }, latency_p95_ms: { maximum_regression_percent: 10 } };
    const window = { slices: { overall: { stable: slice({}), canary: slice({ "responses{class=2xx}": 50000, "responses{class=5xx}": 10 }) } } };
    const measurements = evaluateGates(input(gates, window, { stageKind: "bake" }));
    expect(measurements.map((m) => [m.gate, m.status, m.threshold?.kind])).toEqual([["error_rate", MeasurementStatus.Passed, "maximum"]]);
  });

  it("PromQL: empty_result zero passes an empty answer; no reading at all is an Error", () => {
    const gates = { pod_restarts: { query: "sum(increase(kube_pod_container_status_restarts_total[5m]))", maximum: 0, empty_result: "zero" } };
    const window = { slices: {} };
    const empty = { pod_restarts: { status: "measured" as const, value: null, sources: [] } };
    expect(evaluateGates(input(gates, window, { promql: empty }))[0]).toMatchObject({ status: MeasurementStatus.Passed, candidateValue: 0 });
    expect(evaluateGates(input(gates, window))[0]).toMatchObject({
      status: MeasurementStatus.Error,
      reason: expect.stringMatching(/no reading of the PromQL query was taken this tick/),
    });
    // A 0/0 ratio has nothing to judge yet: Inconclusive (holds, then the deadline policy), not Error.
    const nan = { pod_restarts: { status: "measured" as const, value: NaN, sources: [] } };
    expect(evaluateGates(input(gates, window, { promql: nan }))[0]).toMatchObject({
      status: MeasurementStatus.Inconclusive,
      reason: expect.stringMatching(/returned NaN \(a 0\/0 ratio/),
    });
  });
});
