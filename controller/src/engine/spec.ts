/**
 * Parsing the release-process part of a rollout spec: structure (TypeBox), then stages, gates and the
 * release policy. Pure; reports every problem at once, each with its JSON pointer, so a 400 lists them all.
 */
import { Type, type TSchema } from "@sinclair/typebox";
import type { ErrorDetail } from "../errors.ts";
import { escapePointer, normalizeGates } from "./gate-parse.ts";
import type { GateSpec } from "./gate-spec.ts";
import { parseFinalize, type FinalizeSpec, type ModelIdentity } from "./lifecycle-spec.ts";
import { parseNotifications, type NotificationSpec } from "./notify-spec.ts";
import { schemaErrors } from "./spec-errors.ts";
import {
  CustomGate,
  EngineSpecInput,
  LATENCY_GATE_PATTERN,
  LatencyGate,
  NAMED_GATES,
  StageObject,
  TOKEN_LATENCY_GATE_PATTERN,
  TokenLatencyGate,
  type StageKind,
} from "./spec-schema.ts";

export interface StageSpec {
  index: number;
  name: string;
  kind: StageKind;
  canaryPercent: number;
  shadowPercent: number;
  minDurationSeconds: number;
  minRequests: number;
  deadlineSeconds: number;
  onDeadline: "fail" | "hold";
}

export interface EngineSpec {
  owner: string | null;
  rollbackCondition: string | null;
  changeKind: "major" | "minor";
  impact: "high" | "normal";
  stages: StageSpec[];
  gates: GateSpec[];
  /** A segment value with at least this share of a stage's requests must reach minRequests and its detect floors. */
  segmentTrafficShare: number;
  /** Bound on wrongly failing a candidate as good as stable, over the whole rollout (README, Gate statistics). */
  falseAlarmRate: number;
  /** Stages before a gate's proof stage wait until a candidate this many times past its allowance would have failed (requirements.ts). */
  harmMultiple: number;
  /** The traffic the spec expects, for the forecast before any is seen (forecast.ts); null when not stated. */
  expectedTraffic: { requestsPerSecond: number; smallestSegmentShare: number | null } | null;
  trafficMix: { check: boolean; holdOnMismatch: boolean; alpha: number; minDifference: number };
  /** Policy: after its bake period the rollout waits in AwaitingReview for a posted review. */
  endsInReview: boolean;
  /** The two models and where answers state their version (the rollout's `models`); null: not declared. */
  models: ModelIdentity | null;
  /** After Succeeded: the webhook, and how stable serving the new model is verified. */
  finalize: FinalizeSpec;
  /** Who is told about the rollout's events (notify/); absent when the spec has no notifications section. */
  notifications?: NotificationSpec;
}

/** The seed's default release policy; every rule but requireGates is on unless the controller's configuration changes it. */
export interface Policy {
  /** changeKind major -> the stages start with a shadow stage. */
  requireShadowForMajor: boolean;
  /** The rollout has an output schema -> a schema_validation_pass_rate gate. */
  requireSchemaGate: boolean;
  /** The 100% stage comes after a canary stage below 100%. */
  requireCanaryBeforeFull: boolean;
  /** owner and rollbackCondition are given. */
  requireOwnerAndRollbackCondition: boolean;
  /** impact high -> the rollout ends in AwaitingReview until a review is posted. */
  requireReviewForHighImpact: boolean;
  /** No promotion_gates -> refused; off by default: accepted with a warning (spec-warnings.ts). */
  requireGates: boolean;
}

/** Why a release without gates protects nothing: the warning, or the refusal under Policy.requireGates. */
export const NO_GATES =
  "no gates: every stage promotes on its minimum duration and requests alone, and nothing rolls the rollout back on its own; add one, e.g. error_rate: { maximum: 0.01 } (1%)";

export const DEFAULT_POLICY: Readonly<Policy> = Object.freeze({
  requireShadowForMajor: true,
  requireSchemaGate: true,
  requireCanaryBeforeFull: true,
  requireOwnerAndRollbackCondition: true,
  requireReviewForHighImpact: true,
  requireGates: false,
});

export interface SpecContext {
  /** The rollout spec declares an output schema (the filter validates answers against it). */
  hasOutputSchema: boolean;
  /** The rollout spec has a shadow target; when false, shadow stages are refused and left out of the default. */
  hasShadow?: boolean;
  /** The shadow section's percent: what a shadow stage mirrors unless the stage says otherwise (default 10). */
  shadowPercent?: number;
  policy?: Partial<Policy>;
  /** The rollout's `models` section: the version labels and where answers state theirs. */
  models?: ModelIdentity | null;
}

export const DEFAULT_STAGES: ReadonlyArray<"shadow" | number> = ["shadow", 1, 5, 25, 50, 100];
/**
 * Per-stage defaults (the README documents them under Engine-managed rollouts). How many requests a stage needs
 * comes from the gates (power.ts), so minRequests is only an extra floor; a stage lasts at least 20 s (four
 * ticks of the default 5 s) so a time-dependent fault (warm-up, a leak) has a few looks to show even at high traffic.
 */
export const STAGE_DEFAULTS = Object.freeze({
  minDurationSeconds: 20,
  minRequests: 0,
  deadlineSeconds: 3600,
  onDeadline: "fail" as const,
  segmentTrafficShare: 0.05,
  shadowPercent: 10,
  harmMultiple: 4,
});

export type ParseResult = { ok: true; spec: EngineSpec } | { ok: false; errors: ErrorDetail[] };

// Stages and gates are checked item by item below, where the errors can point inside them; the
// top-level pass only sees their outline.
const Outline = Type.Object(
  {
    ...EngineSpecInput.properties,
    stages: Type.Optional(Type.Array(Type.Unknown(), { minItems: 1, maxItems: 20 })),
    promotion_gates: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

export function parseEngineSpec(raw: unknown, context: SpecContext): ParseResult {
  const policy: Policy = { ...DEFAULT_POLICY, ...context.policy };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, errors: [{ path: "", reason: "must be an object" }] };
  }
  const input = raw as Record<string, unknown>;
  const errors: ErrorDetail[] = schemaErrors(Outline, input, "");

  const stageResult = parseStages(input, context, errors);
  const stageKinds = new Set(stageResult.map((s) => s.kind));

  let gates: GateSpec[] = [];
  const rawGates = input.promotion_gates;
  if (rawGates !== undefined && typeof rawGates === "object" && rawGates !== null && !Array.isArray(rawGates)) {
    // Gates with a structural problem are reported as such; the others are checked further.
    const wellFormed: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(rawGates)) {
      const structural = schemaErrors(gateSchema(name), value, `/promotion_gates/${escapePointer(name)}`);
      errors.push(...structural);
      if (structural.length === 0) wellFormed[name] = value;
    }
    const normalized = normalizeGates(wellFormed, { stageKinds });
    errors.push(...normalized.errors);
    gates = normalized.gates;
  }

  checkPolicy(input, context, policy, stageResult, errors);
  const finalize = parseFinalize(input.finalize, errors);
  const notifications = parseNotifications(input.notifications, errors);
  if (errors.length > 0) return { ok: false, errors: dedupe(errors) };

  const statistics = (input.statistics ?? {}) as { falseAlarmRate?: number; harmMultiple?: number };
  const expected = input.expectedTraffic as { requestsPerSecond: number; smallestSegmentShare?: number } | undefined;
  const mix = (input.trafficMix ?? {}) as { check?: boolean; holdOnMismatch?: boolean; alpha?: number; minDifference?: number };
  const defaults = (input.stageDefaults ?? {}) as { segmentTrafficShare?: number };
  const impact = (input.impact as "high" | "normal" | undefined) ?? "normal";
  return {
    ok: true,
    spec: {
      owner: typeof input.owner === "string" ? input.owner.trim() : null,
      rollbackCondition: typeof input.rollbackCondition === "string" ? input.rollbackCondition.trim() : null,
      changeKind: (input.changeKind as "major" | "minor" | undefined) ?? "minor",
      impact,
      stages: stageResult,
      gates,
      segmentTrafficShare: defaults.segmentTrafficShare ?? STAGE_DEFAULTS.segmentTrafficShare,
      falseAlarmRate: statistics.falseAlarmRate ?? 0.05,
      harmMultiple: statistics.harmMultiple ?? STAGE_DEFAULTS.harmMultiple,
      expectedTraffic: expected ? { requestsPerSecond: expected.requestsPerSecond, smallestSegmentShare: expected.smallestSegmentShare ?? null } : null,
      trafficMix: {
        check: mix.check ?? true,
        holdOnMismatch: mix.holdOnMismatch ?? false,
        alpha: mix.alpha ?? 0.001,
        minDifference: mix.minDifference ?? 0.1,
      },
      endsInReview: policy.requireReviewForHighImpact && impact === "high",
      models: context.models ?? null,
      finalize,
      // Only when given, so a spec without it compares equal to one saved before notifications existed.
      ...(notifications ? { notifications } : {}),
    },
  };
}

/** "rollout fraud-model: invalid spec: /owner is required; ..." */
export function describeSpecErrors(rollout: string, errors: readonly ErrorDetail[]): string {
  return `rollout ${rollout}: invalid spec: ${errors.map((e) => `${e.path || "(root)"} ${e.reason}`).join("; ")}`;
}

function gateSchema(name: string): TSchema {
  if (NAMED_GATES[name]) return NAMED_GATES[name];
  if (LATENCY_GATE_PATTERN.test(name)) return LatencyGate;
  if (TOKEN_LATENCY_GATE_PATTERN.test(name)) return TokenLatencyGate;
  return CustomGate;
}

function parseStages(input: Record<string, unknown>, context: SpecContext, errors: ErrorDetail[]): StageSpec[] {
  const defaults = (typeof input.stageDefaults === "object" && input.stageDefaults !== null ? input.stageDefaults : {}) as Record<string, unknown>;
  const given = Array.isArray(input.stages);
  const rawStages: unknown[] = given ? (input.stages as unknown[]) : DEFAULT_STAGES.filter((s) => s !== "shadow" || context.hasShadow !== false);
  const stages: StageSpec[] = [];
  const names = new Map<string, number>();
  let sawCanary = false;

  rawStages.forEach((item, index) => {
    const at = `/stages/${index}`;
    let stage: Record<string, unknown>;
    if (item === "shadow") stage = { shadow: true };
    else if (typeof item === "number") stage = { canaryPercent: item };
    else if (typeof item === "object" && item !== null && !Array.isArray(item)) stage = item as Record<string, unknown>;
    else {
      errors.push({ path: at, reason: "must be 'shadow', a canary percent (0 < p <= 100), or a stage object" });
      return;
    }
    const structural = schemaErrors(StageObject, stage, at);
    if (typeof item === "number") for (const e of structural) e.path = at; // the shorthand is the percent itself
    errors.push(...structural);
    if (structural.length > 0) return;

    for (const key of ["canaryPercent", "shadowPercent"] as const) {
      const v = stage[key];
      if (typeof v === "number" && Math.abs(Math.round(v * 100) - v * 100) > 1e-6) {
        errors.push({
          path: typeof item === "number" ? at : `${at}/${key}`,
          reason: "must have at most two decimals (0.01% is one basis point, the smallest step)",
        });
      }
    }
    const isShadow = stage.shadow === true;
    const canaryPercent = (stage.canaryPercent as number | undefined) ?? (isShadow ? 0 : undefined);
    if (canaryPercent === undefined) {
      errors.push({ path: at, reason: "needs canaryPercent, or shadow: true for a shadow stage" });
      return;
    }
    if (isShadow && canaryPercent > 0) {
      errors.push({ path: `${at}/canaryPercent`, reason: "a shadow stage sends no real traffic to the new model (leave canaryPercent out)" });
    }
    if (!isShadow && canaryPercent <= 0) {
      errors.push({
        path: typeof item === "number" ? at : `${at}/canaryPercent`,
        reason: "must be above 0 (a stage without real traffic is a shadow stage: shadow: true)",
      });
    }
    if (isShadow && context.hasShadow === false) {
      errors.push({ path: at, reason: "is a shadow stage, but the rollout has no shadow target (spec.shadow)" });
    }
    if (isShadow && sawCanary) errors.push({ path: at, reason: "a shadow stage must come before the canary stages" });
    const previous = stages[stages.length - 1];
    if (!isShadow && previous && previous.kind !== "shadow" && canaryPercent <= previous.canaryPercent) {
      errors.push({
        path: typeof item === "number" ? at : `${at}/canaryPercent`,
        reason: `must be above the previous stage's ${previous.canaryPercent}% (weights only grow, so sticky users never switch back)`,
      });
    }
    if (!isShadow) sawCanary = true;

    const shadowPercent = (stage.shadowPercent as number | undefined) ?? (isShadow ? (context.shadowPercent ?? STAGE_DEFAULTS.shadowPercent) : 0);
    if (isShadow && shadowPercent <= 0) errors.push({ path: `${at}/shadowPercent`, reason: "must be above 0 in a shadow stage" });

    const pick = <K extends "minDurationSeconds" | "minRequests" | "deadlineSeconds" | "onDeadline">(key: K) =>
      (stage[key] ?? defaults[key] ?? STAGE_DEFAULTS[key]) as (typeof STAGE_DEFAULTS)[K];
    const minDurationSeconds = pick("minDurationSeconds");
    const deadlineSeconds = pick("deadlineSeconds");
    if (deadlineSeconds <= minDurationSeconds) {
      const where =
        stage.deadlineSeconds !== undefined
          ? `${at}/deadlineSeconds`
          : defaults.deadlineSeconds !== undefined
            ? "/stageDefaults/deadlineSeconds"
            : `${at}/minDurationSeconds`;
      errors.push({ path: where, reason: `the deadline (${deadlineSeconds}s) must be after the minimum duration (${minDurationSeconds}s)` });
    }

    const kind: StageKind = isShadow ? "shadow" : canaryPercent >= 100 ? "bake" : "canary";
    const name = (stage.name as string | undefined) ?? (isShadow ? "shadow" : `${canaryPercent}%`);
    if (names.has(name))
      errors.push({ path: stage.name !== undefined ? `${at}/name` : at, reason: `duplicate stage name '${name}' (also stage ${names.get(name)})` });
    names.set(name, index);
    stages.push({
      index,
      name,
      kind,
      canaryPercent,
      shadowPercent,
      minDurationSeconds,
      minRequests: pick("minRequests"),
      deadlineSeconds,
      onDeadline: pick("onDeadline"),
    });
  });

  const last = stages.at(-1);
  if (last !== undefined && stages.length === rawStages.length && last.canaryPercent !== 100) {
    errors.push({
      path: given ? `/stages/${rawStages.length - 1}` : "/stages",
      reason: "the last stage must be at 100% (a rollout ends with the new model answering all traffic)",
    });
  }
  return stages;
}

function checkPolicy(input: Record<string, unknown>, context: SpecContext, policy: Policy, stages: StageSpec[], errors: ErrorDetail[]): void {
  if (policy.requireOwnerAndRollbackCondition) {
    for (const [key, what] of [
      ["owner", "every rollout names who answers for it"],
      ["rollbackCondition", "every rollout says in words when it must be undone"],
    ] as const) {
      const value = input[key];
      if (value === undefined) errors.push({ path: `/${key}`, reason: `is required (policy: ${what})` });
      else if (typeof value === "string" && value.trim() === "") errors.push({ path: `/${key}`, reason: `must not be blank (policy: ${what})` });
    }
  }
  if (policy.requireShadowForMajor && input.changeKind === "major" && !stages.some((s) => s.kind === "shadow")) {
    errors.push({ path: "/stages", reason: "needs a shadow stage (policy: a major change is shadowed before it answers real traffic)" });
  }
  if (policy.requireCanaryBeforeFull) {
    const full = stages.findIndex((s) => s.canaryPercent >= 100);
    const fullStage = stages[full];
    if (fullStage !== undefined && !stages.slice(0, full).some((s) => s.kind === "canary")) {
      errors.push({
        path: Array.isArray(input.stages) ? `/stages/${fullStage.index}` : "/stages",
        reason: "100% must come after a canary stage below 100% (policy)",
      });
    }
  }
  const gates = input.promotion_gates as Record<string, unknown> | undefined;
  if (policy.requireGates && (gates === undefined || (typeof gates === "object" && gates !== null && Object.keys(gates).length === 0))) {
    errors.push({ path: "/promotion_gates", reason: `is required (policy): ${NO_GATES}` });
  }
  const hasSchemaGate = gates !== undefined && typeof gates === "object" && gates !== null && "schema_validation_pass_rate" in gates;
  if (policy.requireSchemaGate && context.hasOutputSchema && !hasSchemaGate) {
    errors.push({
      path: "/promotion_gates/schema_validation_pass_rate",
      reason: "is required: the rollout has an output schema (policy: answers are gated on it), e.g. { minimum: 0.995 }",
    });
  }
  if (hasSchemaGate && !context.hasOutputSchema) {
    errors.push({
      path: "/promotion_gates/schema_validation_pass_rate",
      reason: "needs an output schema in the rollout spec: without one the filter validates nothing",
    });
  }
}

/** Each (pointer, reason) once. */
function dedupe(errors: ErrorDetail[]): ErrorDetail[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.path}\u0000${e.reason}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
