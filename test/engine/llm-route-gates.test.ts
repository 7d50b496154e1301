// The gates of the llmroute work (engine/gate-llm.ts): tool_call_valid_rate, a proportion of the filter's tool-call
// counters, and shadow_disagreement_excess, the shadow's agreement with the primary against stable's agreement with
// itself (the noise counters of the same shadow slice), with their parsing and verdicts.
import { describe, expect, it } from "vitest";
import { errorBudget } from "../../controller/src/engine/budget.ts";
import type { SliceSnapshot } from "../../controller/src/engine/counts.ts";
import type { ProportionGate } from "../../controller/src/engine/gate-spec.ts";
import { evaluateGates, type GateEvaluationInput } from "../../controller/src/engine/gates.ts";
import { MeasurementStatus } from "../../controller/src/engine/measurement.ts";
import { parseEngineSpec } from "../../controller/src/engine/spec.ts";
import { specFrom } from "./drive.ts";

const { Passed, Failed } = MeasurementStatus;
const base = { owner: "team-chat", rollbackCondition: "tool calls break", stages: ["shadow", 5, 100] };
const parse = (gates: Record<string, unknown>) => parseEngineSpec({ ...base, promotion_gates: gates }, { hasOutputSchema: false, hasShadow: true });

describe("LLM routing gate specs", () => {
  it("reads the valid tool-call rate as a proportion of tool calls, and the excess as the shadow's agreement against the noise's", () => {
    const parsed = parse({ tool_call_valid_rate: { minimum: 0.99, maximum_decrease: 0.01 }, shadow_disagreement_excess: { maximum: 0.05 } });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const [tools, excess] = parsed.spec.gates as ProportionGate[];
    expect(tools).toMatchObject({
      kind: "proportion",
      numerator: ["tool_calls_valid"],
      denominator: ["tool_calls"],
      variant: "candidate",
      limits: { minimum: 0.99, minDelta: -0.01 },
    });
    expect(excess).toMatchObject({
      kind: "proportion",
      numerator: ["prediction_agree"],
      denominator: ["prediction_agree", "prediction_disagree"],
      baseline: { numerator: ["noise_agree"], denominator: ["noise_agree", "noise_disagree"] },
      variant: "shadow",
      during: ["shadow"],
      limits: { minDelta: -0.05 },
    });
  });

  it.each([
    ["no limit", { tool_call_valid_rate: {} }, "/promotion_gates/tool_call_valid_rate", /needs at least one limit/],
    ["a minimum of 1", { tool_call_valid_rate: { minimum: 1 } }, "/promotion_gates/tool_call_valid_rate/minimum", /./],
    ["no maximum", { shadow_disagreement_excess: {} }, "/promotion_gates/shadow_disagreement_excess/maximum", /./],
    ["an unknown key", { shadow_disagreement_excess: { maximum: 0.1, minimum: 0.2 } }, "/promotion_gates/shadow_disagreement_excess/minimum", /./],
  ])("refuses %s, with its pointer", (_what, gates, path, reason) => {
    const parsed = parse(gates);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors).toContainEqual({ path, reason: expect.stringMatching(reason) });
  });
});

describe("LLM routing gate verdicts", () => {
  const slice = (counters: Record<string, number>): SliceSnapshot => ({ counters, histograms: {} });
  function evaluate(gates: Record<string, unknown>, stageKind: "canary" | "shadow", variants: Record<string, SliceSnapshot>) {
    const spec = specFrom({ stages: ["shadow", 5, 100], promotion_gates: gates }, { hasOutputSchema: false, hasShadow: true });
    const input: GateEvaluationInput = {
      gates: spec.gates,
      stageKind,
      candidate: stageKind === "shadow" ? "shadow" : "canary",
      budget: errorBudget(spec, []),
      window: { slices: { overall: variants } },
      windowError: null,
      accumulated: null,
      slices: ["overall"],
      promql: undefined,
      external: {},
    };
    return evaluateGates(input);
  }

  it("fails a canary with 5% invalid tool calls against a 99% minimum, and passes a clean one", () => {
    const stable = slice({ tool_calls: 3000, tool_calls_valid: 3000 });
    const [broken] = evaluate({ tool_call_valid_rate: { minimum: 0.99 } }, "canary", {
      stable,
      canary: slice({ tool_calls: 1000, tool_calls_valid: 950, tool_calls_invalid_json: 50 }),
    });
    expect(broken?.status).toBe(Failed);
    expect(broken?.reason).toMatch(/valid tool-call rate 95%/);
    const [clean] = evaluate({ tool_call_valid_rate: { minimum: 0.99 } }, "canary", { stable, canary: slice({ tool_calls: 3000, tool_calls_valid: 3000 }) });
    expect(clean?.status).toBe(Passed);
  });

  it("passes a shadow that agrees as often as stable agrees with itself though far from always, and fails one beyond the noise", () => {
    const noise = { noise_agree: 1810, noise_disagree: 190 };
    const [same] = evaluate({ shadow_disagreement_excess: { maximum: 0.05 } }, "shadow", {
      shadow: slice({ prediction_agree: 1805, prediction_disagree: 195, ...noise }),
    });
    expect(same?.status).toBe(Passed);
    // The measurement shows both numbers: the shadow's agreement and stable's agreement with itself.
    expect(same?.candidateValue).toBeCloseTo(0.9025, 3);
    expect(same?.stableValue).toBeCloseTo(0.905, 3);
    const [other] = evaluate({ shadow_disagreement_excess: { maximum: 0.05 } }, "shadow", {
      shadow: slice({ prediction_agree: 1200, prediction_disagree: 800, ...noise }),
    });
    expect(other?.status).toBe(Failed);
    // Raw agreement of 90% would fail an absolute agreement gate for the same model.
    const [raw] = evaluate({ shadow_agreement_rate: { minimum: 0.95 } }, "shadow", {
      shadow: slice({ prediction_agree: 1805, prediction_disagree: 195, ...noise }),
    });
    expect(raw?.status).toBe(Failed);
  });
});
