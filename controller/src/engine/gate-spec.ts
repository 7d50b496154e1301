/**
 * promotion_gates as written (the seed's snake_case block) -> the gates the engine evaluates. Every
 * problem is reported with its JSON pointer; nothing is dropped silently.
 */
import type { ErrorDetail } from "../errors.ts";
import { STAGE_KINDS, LATENCY_GATE_PATTERN, GATE_NAME_PATTERN, type StageKind } from "./spec-schema.ts";

/**
 * Limits, all on the candidate (the shadow in a shadow stage, else the canary) and, for the relative ones,
 * stable over the same window and slice:
 *   maximum / minimum        candidate value                      (absolute)
 *   maxDelta / minDelta      candidate value - stable value       (relative)
 *   maxRatio                 candidate value / stable value       (relative)
 */
export interface Limits {
  maximum?: number;
  minimum?: number;
  maxDelta?: number;
  minDelta?: number;
  maxRatio?: number;
}
export type LimitKind = keyof Limits;
export const ABSOLUTE_LIMITS: readonly LimitKind[] = ["maximum", "minimum"];
export const RELATIVE_LIMITS: readonly LimitKind[] = ["maxDelta", "minDelta", "maxRatio"];

interface GateBase {
  /** The key in promotion_gates. */
  name: string;
  /** JSON pointer of the gate in the spec. */
  path: string;
  during: StageKind[];
  limits: Limits;
  /** For messages: "error rate", "p95 latency". */
  label: string;
}

/** A quantile of a filter histogram (latency). Values are in the stat's unit (microseconds). */
export interface QuantileGate extends GateBase {
  kind: "quantile";
  histogram: string;
  quantile: number;
  /** A regression (candidate - stable) up to this, in stat units, is within a relative limit whatever the ratio. */
  tolerance: number;
  /** Divide stat values by this to show them (us -> ms). */
  displayScale: number;
  displayUnit: string;
}

/** sum(numerator counters) / sum(denominator counters) of one variant's slice. */
export interface ProportionGate extends GateBase {
  kind: "proportion";
  numerator: string[];
  denominator: string[];
  /** candidate: the stage's candidate vs stable; shadow: the shadow's own comparison counters (absolute only). */
  variant: "candidate" | "shadow";
}

/** Mean of a filter histogram from its sum and count; observations lie in `range` (stat units). */
export interface MeanGate extends GateBase {
  kind: "mean";
  histogram: string;
  range: [number, number];
  displayScale: number;
  displayUnit: string;
}

/** Mean of values posted per variant from outside (review scores, KPIs), cumulative over the rollout. */
export interface ExternalGate extends GateBase {
  kind: "external";
  metric: string;
  range: [number, number];
}

/** One number from Prometheus per tick; compared as is (no sampling model). */
export interface PromQLGate extends GateBase {
  kind: "promql";
  query: string;
  emptyResult: "zero" | "inconclusive";
}

export type GateSpec = QuantileGate | ProportionGate | MeanGate | ExternalGate | PromQLGate;

/** Gates whose answer depends on sampled traffic and therefore on the statistics' error budget. */
export function isStatistical(gate: GateSpec): boolean {
  return gate.kind !== "promql";
}

export function hasAbsoluteLimit(gate: GateSpec): boolean {
  return ABSOLUTE_LIMITS.some((k) => gate.limits[k] !== undefined);
}

export function hasRelativeLimit(gate: GateSpec): boolean {
  return RELATIVE_LIMITS.some((k) => gate.limits[k] !== undefined);
}

/**
 * Default `tolerance_ms` of a latency gate. At millisecond latencies a percent limit is a few hundred
 * microseconds: the size of what differs between two identical models for reasons other than the models (a
 * mirrored call's p95 measured 0.2-0.9 ms above its paired primary's with both demo models on one loaded 2-core
 * host, README "Shadow traffic"). An absolute floor of twice the largest of those keeps identical models from
 * failing at any speed; a 10% limit is unaffected above 20 ms.
 */
export const DEFAULT_LATENCY_TOLERANCE_MS = 2;

// Counter keys as the metric provider names them (metrics/provider.ts).
const ERROR_NUMERATOR = ["responses{class=5xx}", "responses{class=local}"];
const ALL_RESPONSES = ["responses{class=*}"];
const ALL_KINDS: StageKind[] = [...STAGE_KINDS];

type RawGate = Record<string, unknown>;

export interface GateContext {
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
  const NEVER_PASS = "a rate of exactly 0 can never be shown from a finite sample, so the gate could never pass";
  const NEVER_PASS_1 = "a rate of exactly 1 can never be shown from a finite sample, so the gate could never pass";

  const latency = LATENCY_GATE_PATTERN.exec(name);
  if (latency) {
    const percentile = Number(latency[1]);
    if (percentile < 1) errors.push({ path, reason: "the percentile must be between p01 and p99" });
    needOne(["maximum_regression_percent", "maximum"]);
    const regression = num("maximum_regression_percent");
    const maximumMs = num("maximum");
    const toleranceMs = num("tolerance_ms");
    if (toleranceMs !== undefined && regression === undefined) {
      errors.push({ path: `${path}/tolerance_ms`, reason: "only applies with maximum_regression_percent: it is how many milliseconds of regression vs stable never fail" });
    }
    return {
      kind: "quantile",
      name,
      path,
      label: `p${latency[1]} latency`,
      histogram: "latency_us",
      quantile: percentile / 100,
      tolerance: (toleranceMs ?? DEFAULT_LATENCY_TOLERANCE_MS) * 1000,
      displayScale: 1000,
      displayUnit: "ms",
      during: during(ALL_KINDS),
      limits: {
        ...(regression !== undefined ? { maxRatio: 1 + regression / 100 } : {}),
        ...(maximumMs !== undefined ? { maximum: maximumMs * 1000 } : {}),
      },
    };
  }

  switch (name) {
    case "error_rate":
      needOne(["maximum", "maximum_increase"]);
      rateAbove0("maximum", NEVER_PASS);
      rateAbove0("maximum_increase", "an increase of exactly 0 can never be shown from a finite sample");
      return {
        kind: "proportion",
        name,
        path,
        label: "error rate",
        numerator: ERROR_NUMERATOR,
        denominator: ALL_RESPONSES,
        variant: "candidate",
        during: during(ALL_KINDS),
        limits: { maximum: num("maximum"), maxDelta: num("maximum_increase") },
      };
    case "schema_validation_pass_rate": {
      needOne(["minimum", "maximum_decrease"]);
      rateBelow1("minimum", NEVER_PASS_1);
      rateAbove0("maximum_decrease", "a decrease of exactly 0 can never be shown from a finite sample");
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
  return customGate(name, path, g, errors, during);
}

function customGate(
  name: string,
  path: string,
  g: RawGate,
  errors: ErrorDetail[],
  during: (fallback: StageKind[]) => StageKind[],
): GateSpec | null {
  const sources = ["query", "ratio", "mean", "external"].filter((k) => g[k] !== undefined);
  if (sources.length !== 1) {
    errors.push({
      path,
      reason:
        sources.length === 0
          ? "is not a known gate (known: error_rate, latency_p<NN>_ms, schema_validation_pass_rate, human_review_score, gpu_oom_events, shadow_agreement_rate, shadow_status_match_rate, confidence_drift); a custom gate needs one of query (PromQL), ratio (filter counters), mean (filter histogram), external (posted KPI)"
          : `needs exactly one of query, ratio, mean, external (has ${sources.join(", ")})`,
    });
    return null;
  }
  const source = sources[0];
  const onlyFor = (key: string, owner: string) => {
    if (g[key] !== undefined && source !== owner) errors.push({ path: `${path}/${key}`, reason: `only applies to a ${owner} gate` });
  };
  onlyFor("empty_result", "query");
  onlyFor("variant", "ratio");
  if (source === "query") {
    for (const key of ["maximum_increase", "maximum_decrease", "minimum_delta", "range"]) {
      if (g[key] !== undefined) errors.push({ path: `${path}/${key}`, reason: "a PromQL gate compares one number with maximum and/or minimum" });
    }
    return promqlGate(name, path, g, errors, during(ALL_KINDS), name);
  }
  if (source === "ratio") {
    if (g.range !== undefined) errors.push({ path: `${path}/range`, reason: "a ratio always lies in [0, 1]" });
    if (g.minimum_delta !== undefined) errors.push({ path: `${path}/minimum_delta`, reason: "use maximum_decrease for a ratio" });
    for (const key of ["maximum", "minimum", "maximum_increase", "maximum_decrease"]) {
      const v = g[key];
      if (typeof v === "number" && (v < 0 || v > 1)) errors.push({ path: `${path}/${key}`, reason: "must be between 0 and 1 (a ratio)" });
    }
    const limits = limitsOf(g, path, errors, ["maximum", "minimum", "maximum_increase", "maximum_decrease"]);
    const ratio = g.ratio as { numerator: string[]; denominator: string[] };
    const variant = (g.variant as "candidate" | "shadow" | undefined) ?? "candidate";
    if (variant === "shadow" && (limits.maxDelta !== undefined || limits.minDelta !== undefined)) {
      errors.push({ path: `${path}/variant`, reason: "a shadow-only ratio has no stable counterpart: use maximum or minimum" });
    }
    return {
      kind: "proportion",
      name,
      path,
      label: name.replace(/_/g, " "),
      numerator: ratio.numerator,
      denominator: ratio.denominator,
      variant,
      during: during(variant === "shadow" ? ["shadow"] : ALL_KINDS),
      limits,
    };
  }
  const range = checkRange(g, path, errors, null);
  if (!range) {
    if (g.range === undefined) errors.push({ path: `${path}/range`, reason: `is required: the statistics need the lowest and highest value one observation can take` });
    return null;
  }
  const limits = limitsOf(g, path, errors, ["maximum", "minimum", "maximum_increase", "maximum_decrease", "minimum_delta"]);
  if (source === "mean") {
    return {
      kind: "mean",
      name,
      path,
      label: `mean ${g.mean as string}`,
      histogram: g.mean as string,
      range,
      displayScale: 1,
      displayUnit: "",
      during: during(ALL_KINDS),
      limits,
    };
  }
  return { kind: "external", name, path, label: name.replace(/_/g, " "), metric: g.external as string, range, during: during(["canary", "bake"]), limits };
}

function promqlGate(name: string, path: string, g: RawGate, errors: ErrorDetail[], during: StageKind[], label: string): PromQLGate {
  if (typeof g.query !== "string" || g.query.trim() === "") {
    errors.push({
      path: `${path}/query`,
      reason:
        name === "gpu_oom_events"
          ? 'is required: GPU OOM events are not visible on the data path; name the Prometheus query that counts them, e.g. sum(increase(gpu_oom_total{model="fraud"}[5m]))'
          : "is required: the PromQL query whose value is gated",
    });
  }
  if (g.maximum === undefined && g.minimum === undefined) errors.push({ path, reason: "needs at least one limit: maximum, minimum" });
  const limits: Limits = {};
  if (typeof g.maximum === "number") limits.maximum = g.maximum;
  if (typeof g.minimum === "number") limits.minimum = g.minimum;
  if (limits.maximum !== undefined && limits.minimum !== undefined && limits.minimum > limits.maximum) {
    errors.push({ path: `${path}/minimum`, reason: `must not be above maximum (${limits.maximum})` });
  }
  return {
    kind: "promql",
    name,
    path,
    label,
    query: typeof g.query === "string" ? g.query : "",
    emptyResult: (g.empty_result as "zero" | "inconclusive" | undefined) ?? "inconclusive",
    during,
    limits,
  };
}

/** Custom-gate limit keys -> Limits; maximum_decrease d is minDelta -d. */
function limitsOf(g: RawGate, path: string, errors: ErrorDetail[], allowed: string[]): Limits {
  for (const key of ["maximum", "minimum", "maximum_increase", "maximum_decrease", "minimum_delta"]) {
    if (g[key] !== undefined && !allowed.includes(key)) errors.push({ path: `${path}/${key}`, reason: `does not apply here (limits: ${allowed.join(", ")})` });
  }
  if (allowed.every((k) => g[k] === undefined)) errors.push({ path, reason: `needs at least one limit: ${allowed.join(", ")}` });
  if (g.maximum_decrease !== undefined && g.minimum_delta !== undefined) {
    errors.push({ path: `${path}/minimum_delta`, reason: "give maximum_decrease or minimum_delta, not both (they say the same)" });
  }
  const n = (k: string) => (typeof g[k] === "number" ? (g[k] as number) : undefined);
  const decrease = n("maximum_decrease");
  const limits: Limits = {};
  if (n("maximum") !== undefined) limits.maximum = n("maximum");
  if (n("minimum") !== undefined) limits.minimum = n("minimum");
  if (n("maximum_increase") !== undefined) limits.maxDelta = n("maximum_increase");
  if (decrease !== undefined) limits.minDelta = -decrease;
  if (n("minimum_delta") !== undefined) limits.minDelta = n("minimum_delta");
  return limits;
}

function checkRange(g: RawGate, path: string, errors: ErrorDetail[], fallback: [number, number] | null): [number, number] | null {
  if (g.range === undefined) return fallback;
  const [low, high] = g.range as [number, number];
  if (!(Number.isFinite(low) && Number.isFinite(high) && low < high)) {
    errors.push({ path: `${path}/range`, reason: "must be [lowest, highest] with lowest below highest" });
    return null;
  }
  return [low, high];
}

export function escapePointer(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}
