/**
 * The gates the engine evaluates, as gate-parse.ts makes them from promotion_gates: one kind per way of
 * measuring (a histogram quantile, a ratio of counters, a histogram mean, posted values, a PromQL number),
 * each with the limits it is judged by.
 */
import type { StageKind } from "./spec-schema.ts";

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
const ABSOLUTE_LIMITS: readonly LimitKind[] = ["maximum", "minimum"];
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
  /**
   * What relative limits compare against instead of stable's rate: other counters of the candidate's own slice
   * (shadow_disagreement_excess: stable's agreement with itself, gate-llm.ts).
   */
  baseline?: { numerator: string[]; denominator: string[] };
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

/**
 * The verdict of an external judge (a test suite, an evaluation job, an LLM judge) asked over HTTP with the
 * rollout's evidence: pass, fail or inconclusive. No limits: the judge decides. The driver asks it
 * (release/webhook-judge.ts) and step() judges its latest answer (gates-webhook.ts).
 */
export interface WebhookGate extends GateBase {
  kind: "webhook";
  url: string;
  timeoutMs: number;
  intervalSeconds: number;
}

export type GateSpec = QuantileGate | ProportionGate | MeanGate | ExternalGate | PromQLGate | WebhookGate;

export const WEBHOOK_GATE_DEFAULTS = Object.freeze({ timeoutMs: 10_000, intervalSeconds: 30 });

/** Gates whose answer depends on sampled traffic and therefore on the statistics' error budget. */
export function isStatistical(gate: GateSpec): boolean {
  return gate.kind !== "promql" && gate.kind !== "webhook";
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

/** Default `tolerance_ms` of a ttft gate: the latency gate's (the first token is a response-time figure). */
export const DEFAULT_TTFT_TOLERANCE_MS = DEFAULT_LATENCY_TOLERANCE_MS;
/**
 * Default `tolerance_ms` of a tpot gate. A token takes milliseconds, so the latency gate's 2 ms would hide a
 * doubling; 0.5 ms is about the scheduling jitter of one chunk on a loaded host (the demo's identical models).
 */
export const DEFAULT_TPOT_TOLERANCE_MS = 0.5;
