/**
 * Custom gates (promotion_gates entries that are not a known name): a PromQL query, a ratio of filter counters,
 * a mean of a filter histogram or of posted values; also the PromQL part of gpu_oom_events. Each limit key is
 * checked against the kind of gate it is on.
 */
import type { ErrorDetail } from "../errors.ts";
import { WEBHOOK_GATE_DEFAULTS, type GateSpec, type Limits, type PromQLGate, type WebhookGate } from "./gate-spec.ts";
import { checkUrl } from "./notify-spec.ts";
import { STAGE_KINDS, type StageKind } from "./spec-schema.ts";

export const ALL_KINDS: StageKind[] = [...STAGE_KINDS];

export type RawGate = Record<string, unknown>;

export function customGate(name: string, path: string, g: RawGate, errors: ErrorDetail[], during: (fallback: StageKind[]) => StageKind[]): GateSpec | null {
  const sources = ["query", "ratio", "mean", "external", "webhook"].filter((k) => g[k] !== undefined);
  if (sources.length !== 1) {
    errors.push({
      path,
      reason:
        sources.length === 0
          ? "is not a known gate (known: error_rate, latency_p<NN>_ms, schema_validation_pass_rate, human_review_score, gpu_oom_events, shadow_agreement_rate, shadow_status_match_rate, confidence_drift, ttft_p<NN>_ms, tpot_p<NN>_ms, stream_cut_off_rate, output_tokens_per_answer); a custom gate needs one of query (PromQL), ratio (filter counters), mean (filter histogram), external (posted KPI), webhook (an external judge)"
          : `needs exactly one of query, ratio, mean, external, webhook (has ${sources.join(", ")})`,
    });
    return null;
  }
  const source = sources[0];
  const onlyFor = (key: string, owner: string) => {
    if (g[key] !== undefined && source !== owner) errors.push({ path: `${path}/${key}`, reason: `only applies to a ${owner} gate` });
  };
  onlyFor("empty_result", "query");
  onlyFor("variant", "ratio");
  if (source === "webhook") return webhookGate(name, path, g, errors, during(ALL_KINDS));
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
    if (g.range === undefined)
      errors.push({ path: `${path}/range`, reason: `is required: the statistics need the lowest and highest value one observation can take` });
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

export function promqlGate(name: string, path: string, g: RawGate, errors: ErrorDetail[], during: StageKind[], label: string): PromQLGate {
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

function webhookGate(name: string, path: string, g: RawGate, errors: ErrorDetail[], during: StageKind[]): WebhookGate | null {
  for (const key of ["maximum", "minimum", "maximum_increase", "maximum_decrease", "minimum_delta", "range"]) {
    if (g[key] !== undefined) errors.push({ path: `${path}/${key}`, reason: "a webhook gate has no limits: its judge answers pass, fail or inconclusive" });
  }
  const hook = g.webhook as { url: string; timeoutMs?: number; intervalSeconds?: number };
  if (!checkUrl(hook.url, `${path}/webhook/url`, errors)) return null;
  return {
    kind: "webhook",
    name,
    path,
    label: name.replace(/_/g, " "),
    url: hook.url,
    timeoutMs: hook.timeoutMs ?? WEBHOOK_GATE_DEFAULTS.timeoutMs,
    intervalSeconds: hook.intervalSeconds ?? WEBHOOK_GATE_DEFAULTS.intervalSeconds,
    during,
    limits: {},
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

export function checkRange(g: RawGate, path: string, errors: ErrorDetail[], fallback: [number, number] | null): [number, number] | null {
  if (g.range === undefined) return fallback;
  const [low, high] = g.range as [number, number];
  if (!(Number.isFinite(low) && Number.isFinite(high) && low < high)) {
    errors.push({ path: `${path}/range`, reason: "must be [lowest, highest] with lowest below highest" });
    return null;
  }
  return [low, high];
}
