/**
 * Gates whose values do not come from the data path's counts: values posted from outside (review scores,
 * KPIs: a confidence sequence over the posted values) and PromQL queries (one number per tick, no sampling
 * model). Pure like the traffic gates in gates.ts.
 */
import { testAlpha } from "./budget.ts";
import { RELATIVE_LIMITS, type ExternalGate, type Limits, type PromQLGate } from "./gate-spec.ts";
import { errorMeasurement, finish, firstLimit, unmeasured, type GateEvaluationInput } from "./gate-measure.ts";
import { judgeLimits, severityOf } from "./judge.ts";
import { MeasurementStatus, type Measurement } from "./measurement.ts";
import type { EmpiricalBernsteinState } from "./means.ts";

export function evaluateExternal(gate: ExternalGate, limits: Limits, input: GateEvaluationInput): Measurement {
  const states = input.external[gate.name] ?? {};
  const width = gate.range[1] - gate.range[0];
  const toRange = (x: number) => gate.range[0] + x * width;
  const view = (state: EmpiricalBernsteinState | undefined) =>
    state && state.count > 0
      ? {
          interval: { lower: toRange(state.lower), upper: toRange(state.upper) },
          estimate: toRange(state.sum / state.count),
          count: state.count,
          alpha: state.alpha,
        }
      : null;
  const c = view(states[input.candidate]);
  const s = view(states.stable);
  const relative = RELATIVE_LIMITS.some((k) => limits[k] !== undefined);
  return finish(gate, limits, {
    segment: null,
    candidate: input.candidate,
    candidateValue: c?.estimate ?? null,
    stableValue: s?.estimate ?? null,
    candidateInterval: c?.interval ?? null,
    stableInterval: s?.interval ?? null,
    sampleSizes: { candidate: c?.count ?? 0, stable: s?.count ?? 0 },
    unit: "",
    // Each variant's sequence was built at half the test's budget (commands.ts).
    alpha: testAlpha(input.budget, gate.name, false),
    relative,
    emptyReason: !c
      ? `no ${gate.metric} values posted for the ${input.candidate} yet`
      : relative && !s
        ? `no ${gate.metric} values posted for stable yet`
        : null,
    scope: "rollout",
    stageSamples: 0,
    needs: null,
    input,
  });
}

/** A PromQL gate with nothing to judge yet: no series, or NaN. */
function inconclusivePromQL(gate: PromQLGate, limits: Limits, input: GateEvaluationInput, reason: string): Measurement {
  return {
    ...unmeasured(gate, MeasurementStatus.Inconclusive, { segment: null, candidate: input.candidate }, firstLimit(limits), reason),
    requirement: "pass",
  };
}

export function evaluatePromQL(gate: PromQLGate, limits: Limits, input: GateEvaluationInput): Measurement {
  const reading = input.promql?.[gate.name];
  const base = { segment: null, candidate: input.candidate } as const;
  if (!reading) return errorMeasurement(gate, null, input.candidate, `no reading of the PromQL query was taken this tick (${gate.query})`);
  if (reading.status === "unmeasurable") return errorMeasurement(gate, null, input.candidate, `PromQL query failed: ${reading.error}`);
  let value = reading.value;
  if (value !== null && Number.isNaN(value)) {
    return inconclusivePromQL(gate, limits, input, `${gate.label}: the query returned NaN (a 0/0 ratio: nothing counted in its window yet?)`);
  }
  if (value === null) {
    if (gate.emptyResult === "inconclusive") {
      return inconclusivePromQL(
        gate,
        limits,
        input,
        `${gate.label}: the query matched no series (set empty_result: zero if that means 0, or add "or vector(0)")`,
      );
    }
    value = 0;
  }
  const point = { lower: value, upper: value };
  const verdict = judgeLimits(limits, point, null);
  const limitText = verdict.decisive ? `${verdict.decisive.kind} ${verdict.decisive.value}` : "";
  return {
    gate: gate.name,
    status: verdict.status,
    ...base,
    stableValue: null,
    candidateValue: value,
    threshold: verdict.decisive,
    unit: "",
    sampleSizes: { stable: 0, candidate: 1 },
    intervals: { candidate: point },
    confidence: null,
    severity: verdict.status === MeasurementStatus.Failed && verdict.decisive ? severityOf(verdict.decisive.kind, verdict.decisive.value, value, null, "") : 0,
    reason: `${gate.label} ${value} (${verdict.status === MeasurementStatus.Failed ? "past" : "within"} ${limitText}; PromQL ${gate.query})`,
    requirement: "pass",
  };
}
