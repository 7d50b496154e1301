/**
 * promotion_gates as written (the seed's snake_case block) -> the gates the engine evaluates (gate-spec.ts).
 * The known gates are here, custom ones in gate-custom.ts. Every problem is reported with its JSON pointer;
 * nothing is dropped silently.
 */
import type { ErrorDetail } from "../errors.ts";
import { ALL_KINDS, checkRange, customGate, promqlGate, type RawGate } from "./gate-custom.ts";
import { DEFAULT_LATENCY_TOLERANCE_MS, DEFAULT_TPOT_TOLERANCE_MS, DEFAULT_TTFT_TOLERANCE_MS, type GateSpec, type Limits } from "./gate-spec.ts";
import { llmGate } from "./gate-llm.ts";
import { GATE_NAME_PATTERN, LATENCY_GATE_PATTERN, TOKEN_LATENCY_GATE_PATTERN, type StageKind } from "./spec-schema.ts";

// Counter keys as the metric provider names them (metrics/provider.ts).
const ERROR_NUMERATOR = ["responses{class=5xx}", "responses{class=local}"];
const ALL_RESPONSES = ["responses{class=*}"];

interface GateContext {
  /** Stage kinds the rollout has, to refuse a gate that could never run. */
  stageKinds: ReadonlySet<StageKind>;
}

/**
 * Structural validation (types, unknown keys) has already run; this turns each gate into a GateSpec and
 * reports what the schema cannot say: missing limits, impossible thresholds, wrong combinations.
 */
export function normalizeGates(raw: Record<string, unknown>, context: GateContext): { gates: GateSpec[]; errors: ErrorDetail[] } {
  const gates: GateSpec[] = [];
  const errors: ErrorDetail[] = [];
  for (const [name, value] of Object.entries(raw)) {
    const path = `/promotion_gates/${escapePointer(name)}`;
    if (!GATE_NAME_PATTERN.test(name)) {
      errors.push({ path, reason: "gate names are 1 to 64 of a-z, 0-9 and '_', starting with a letter (they become metric labels)" });
      continue;
    }
    const g = value as RawGate;
    const before = errors.length;
    const gate = normalizeOne(name, path, g, errors);
    if (!gate || errors.length > before) continue;
    gate.limits = Object.fromEntries(Object.entries(gate.limits).filter(([, v]) => v !== undefined)) as Limits;
    if (gate.during.every((k) => !context.stageKinds.has(k))) {
      const at = g.during === undefined ? path : `${path}/during`;
      errors.push({ path: at, reason: `is evaluated only in ${gate.during.join(", ")} stages, and this rollout has none` });
      continue;
    }
    gates.push(gate);
  }
  return { gates, errors };
}

function normalizeOne(name: string, path: string, g: RawGate, errors: ErrorDetail[]): GateSpec | null {
  const num = (key: string) => (typeof g[key] === "number" ? (g[key] as number) : undefined);
  const during = (fallback: StageKind[]) => (Array.isArray(g.during) ? (g.during as StageKind[]) : fallback);
  const needOne = (keys: string[]) => {
    if (keys.every((k) => g[k] === undefined)) errors.push({ path, reason: `needs at least one limit: ${keys.join(", ")}` });
  };
  const rateAbove0 = (key: string, why: string) => {
    const v = num(key);
    if (v !== undefined && v <= 0) errors.push({ path: `${path}/${key}`, reason: `must be above 0: ${why}` });
  };
  const rateBelow1 = (key: string, why: string) => {
    const v = num(key);
    if (v !== undefined && v >= 1) errors.push({ path: `${path}/${key}`, reason: `must be below 1: ${why}` });
  };
  // A limit no rate can cross: most often a percent written as a fraction's whole (maximum: 1 meant as 1%).
  const neverFails = (key: string, bound: 0 | 1) => {
    const v = num(key);
    if (v === undefined || (bound === 1 ? v < 1 : v > 0)) return;
    const limit = bound === 1 ? `${key} ${v} (100%)` : `${key} 0`;
    errors.push({
      path: `${path}/${key}`,
      reason: `must be ${bound === 1 ? "below 1" : "above 0"}: rates are fractions (0.01 is 1%), and ${limit} can never fail, so the gate would protect nothing`,
    });
  };
  const NEVER_PASS = "a rate of exactly 0 can never be shown from a finite sample, so the gate could never pass";
  const NEVER_PASS_1 = "a rate of exactly 1 can never be shown from a finite sample, so the gate could never pass";

  // Streamed LLM answers are read on the primary path only: a shadow's streams are not timed.
  const PRIMARY_KINDS = ALL_KINDS.filter((k) => k !== "shadow");
  const tokenLatency = TOKEN_LATENCY_GATE_PATTERN.exec(name);
  const latency = LATENCY_GATE_PATTERN.exec(name) ?? (tokenLatency ? [tokenLatency[0], tokenLatency[2]] : null);
  if (latency) {
    if (tokenLatency) shadowNotTimed(g, path, errors);
    const ttft = tokenLatency?.[1] === "ttft";
    const tpot = tokenLatency?.[1] === "tpot";
    const percentile = Number(latency[1]);
    if (percentile < 1) errors.push({ path, reason: "the percentile must be between p01 and p99" });
    needOne(["maximum_regression_percent", "maximum"]);
    const regression = num("maximum_regression_percent");
    const maximumMs = num("maximum");
    const toleranceMs = num("tolerance_ms");
    if (toleranceMs !== undefined && regression === undefined) {
      errors.push({
        path: `${path}/tolerance_ms`,
        reason: "only applies with maximum_regression_percent: it is how many milliseconds of regression vs stable never fail",
      });
    }
    return {
      kind: "quantile",
      name,
      path,
      label: ttft ? `p${latency[1]} time to first token` : tpot ? `p${latency[1]} time per output token` : `p${latency[1]} latency`,
      histogram: ttft ? "ttft_latency_us" : tpot ? "tpot_latency_us" : "latency_us",
      quantile: percentile / 100,
      tolerance: (toleranceMs ?? (ttft ? DEFAULT_TTFT_TOLERANCE_MS : tpot ? DEFAULT_TPOT_TOLERANCE_MS : DEFAULT_LATENCY_TOLERANCE_MS)) * 1000,
      displayScale: 1000,
      displayUnit: "ms",
      during: during(tokenLatency ? PRIMARY_KINDS : ALL_KINDS),
      limits: {
        ...(regression !== undefined ? { maxRatio: 1 + regression / 100 } : {}),
        ...(maximumMs !== undefined ? { maximum: maximumMs * 1000 } : {}),
      },
    };
  }

  // A rate of bad answers: a maximum and/or a maximum increase over stable, each a rate above 0 that can fail.
  const rateLimits = () => {
    needOne(["maximum", "maximum_increase"]);
    rateAbove0("maximum", NEVER_PASS);
    rateAbove0("maximum_increase", "an increase of exactly 0 can never be shown from a finite sample");
    neverFails("maximum", 1);
    neverFails("maximum_increase", 1);
    return { maximum: num("maximum"), maxDelta: num("maximum_increase") };
  };

  switch (name) {
    case "error_rate": {
      const limits = rateLimits();
      return {
        kind: "proportion",
        name,
        path,
        label: "error rate",
        numerator: ERROR_NUMERATOR,
        denominator: ALL_RESPONSES,
        variant: "candidate",
        during: during(ALL_KINDS),
        limits,
      };
    }
    case "stream_cut_off_rate": {
      shadowNotTimed(g, path, errors);
      const limits = rateLimits();
      return {
        kind: "proportion",
        name,
        path,
        label: "cut-off stream rate",
        numerator: ["stream_cut_off"],
        denominator: ["streams"],
        variant: "candidate",
        during: during(PRIMARY_KINDS),
        limits,
      };
    }
    case "output_tokens_per_answer": {
      needOne(["maximum", "maximum_increase"]);
      const maxTokens = num("max_tokens") ?? 1024;
      for (const key of ["maximum", "maximum_increase"]) {
        const v = num(key);
        if (v !== undefined && v >= maxTokens)
          errors.push({ path: `${path}/${key}`, reason: `must be below max_tokens (${maxTokens}): no answer is longer, so the gate would protect nothing` });
      }
      return {
        kind: "mean",
        name,
        path,
        label: "output tokens per answer",
        histogram: "completion_tokens",
        range: [0, maxTokens],
        displayScale: 1,
        displayUnit: "tokens",
        during: during(PRIMARY_KINDS),
        limits: { maximum: num("maximum"), maxDelta: num("maximum_increase") },
      };
    }
    case "schema_validation_pass_rate": {
      needOne(["minimum", "maximum_decrease"]);
      rateBelow1("minimum", NEVER_PASS_1);
      rateAbove0("maximum_decrease", "a decrease of exactly 0 can never be shown from a finite sample");
      neverFails("minimum", 0);
      neverFails("maximum_decrease", 1);
      const decrease = num("maximum_decrease");
      return {
        kind: "proportion",
        name,
        path,
        label: "schema pass rate",
        numerator: ["outputs{schema=valid}"],
        denominator: ["outputs{schema=*}"],
        variant: "candidate",
        during: during(ALL_KINDS),
        limits: { minimum: num("minimum"), minDelta: decrease === undefined ? undefined : -decrease },
      };
    }
    case "shadow_agreement_rate":
    case "shadow_status_match_rate": {
      needOne(["minimum"]);
      rateBelow1("minimum", NEVER_PASS_1);
      neverFails("minimum", 0);
      const agreement = name === "shadow_agreement_rate";
      return {
        kind: "proportion",
        name,
        path,
        label: agreement ? "shadow agreement rate" : "shadow status match rate",
        numerator: agreement ? ["prediction_agree"] : ["status_match"],
        denominator: agreement ? ["prediction_agree", "prediction_disagree"] : ["status_match", "status_mismatch"],
        variant: "shadow",
        during: during(["shadow"]),
        limits: { minimum: num("minimum") },
      };
    }
    case "confidence_drift": {
      neverFails("maximum", 1);
      const maximum = num("maximum") ?? 0;
      return {
        kind: "mean",
        name,
        path,
        label: "mean confidence",
        histogram: "confidence_milli",
        range: [0, 1000],
        displayScale: 1000,
        displayUnit: "",
        during: during(ALL_KINDS),
        limits: { maxDelta: maximum * 1000, minDelta: -maximum * 1000 },
      };
    }
    case "human_review_score": {
      const range = checkRange(g, path, errors, [0, 1]);
      const delta = num("minimum_delta") ?? 0;
      if (range && Math.abs(delta) >= range[1] - range[0]) {
        errors.push({ path: `${path}/minimum_delta`, reason: `must be smaller in size than the score range (${range[1] - range[0]})` });
      }
      return {
        kind: "external",
        name,
        path,
        label: "human review score",
        metric: name,
        range: range ?? [0, 1],
        during: during(["canary", "bake"]),
        limits: { minDelta: delta },
      };
    }
    case "gpu_oom_events":
      return promqlGate(name, path, g, errors, during(ALL_KINDS), "GPU OOM events");
  }
  const llm = llmGate(name, path, g, errors, during);
  if (llm !== undefined) return llm;
  return customGate(name, path, g, errors, during);
}

/** Streams are read on the primary path only: a gate on them in a shadow stage would never see data. */
function shadowNotTimed(g: RawGate, path: string, errors: ErrorDetail[]): void {
  if (Array.isArray(g.during) && g.during.includes("shadow"))
    errors.push({ path: `${path}/during`, reason: "streamed answers are read on the primary path only: a shadow stage has none to judge" });
}

export function escapePointer(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}
