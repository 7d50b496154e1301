/**
 * The LLM gates (README "LLM rollouts"): the valid tool-call rate, and the shadow's disagreement beyond the noise
 * of stable disagreeing with itself (Twitter Diffy's idea). Both are proportions of filter counters, judged like
 * the other rate gates (gates.ts); the excess compares the shadow's agreement with the primary against stable's
 * agreement with a second stable answer to the same request (filter/noise.ts), both from the shadow's slice.
 */
import type { ErrorDetail } from "../errors.ts";
import type { GateSpec, Limits, ProportionGate } from "./gate-spec.ts";
import type { StageKind } from "./spec-schema.ts";
import { ALL_KINDS, type RawGate } from "./gate-custom.ts";

/** Filter counters (filter/tool-calls.ts, filter/noise.ts, filter/stats.ts). */
export const TOOL_CALLS = "tool_calls";
export const TOOL_CALLS_VALID = "tool_calls_valid";
export const NOISE_COUNTERS = { agree: "noise_agree", disagree: "noise_disagree" } as const;

export const LLM_GATE_NAMES = ["tool_call_valid_rate", "shadow_disagreement_excess"] as const;

/** The gate for `name`, or undefined when the name is not an LLM gate (null: one, with errors reported). */
export function llmGate(
  name: string,
  path: string,
  g: RawGate,
  errors: ErrorDetail[],
  during: (fallback: StageKind[]) => StageKind[],
): GateSpec | null | undefined {
  const num = (key: string) => (typeof g[key] === "number" ? (g[key] as number) : undefined);
  const inOpenUnit = (key: string, why: string) => {
    const v = num(key);
    if (v !== undefined && (v <= 0 || v >= 1)) errors.push({ path: `${path}/${key}`, reason: `must be above 0 and below 1: ${why}` });
  };
  switch (name) {
    case "tool_call_valid_rate": {
      if (num("minimum") === undefined && num("maximum_decrease") === undefined)
        errors.push({ path, reason: "needs at least one limit: minimum, maximum_decrease" });
      inOpenUnit("minimum", "rates are fractions (0.99 is 99%); 0 never fails and 1 can never be shown from a finite sample");
      inOpenUnit("maximum_decrease", "a decrease of 0 can never be shown and one of 1 never fails");
      const decrease = num("maximum_decrease");
      const limits: Limits = {};
      if (num("minimum") !== undefined) limits.minimum = num("minimum");
      if (decrease !== undefined) limits.minDelta = -decrease;
      return proportion(name, path, "valid tool-call rate", [TOOL_CALLS_VALID], [TOOL_CALLS], "candidate", during(ALL_KINDS), limits);
    }
    case "shadow_disagreement_excess": {
      if (num("maximum") === undefined) errors.push({ path, reason: "needs a limit: maximum" });
      inOpenUnit("maximum", "a difference of rates; 0 can never be shown from a finite sample and 1 never fails");
      const gate = proportion(
        name,
        path,
        "shadow agreement vs stable's agreement with itself",
        ["prediction_agree"],
        ["prediction_agree", "prediction_disagree"],
        "shadow",
        during(["shadow"]),
        { minDelta: -(num("maximum") ?? 0) },
      );
      gate.baseline = { numerator: [NOISE_COUNTERS.agree], denominator: [NOISE_COUNTERS.agree, NOISE_COUNTERS.disagree] };
      return gate;
    }
  }
  return undefined;
}

function proportion(
  name: string,
  path: string,
  label: string,
  numerator: string[],
  denominator: string[],
  variant: "candidate" | "shadow",
  during: StageKind[],
  limits: Limits,
): ProportionGate {
  return { kind: "proportion", name, path, label, numerator, denominator, variant, during, limits };
}
