/**
 * The false-alarm budget: how statistics.falseAlarmRate (the bound on rolling back a candidate exactly as good
 * as stable) is split over the tests a rollout can run (weighted Bonferroni: the shares add up to at most
 * falseAlarmRate, so the chance that any test wrongly fails is at most that).
 *
 *   1. Every statistical gate gets an equal share (PromQL gates have no sampling model and take none).
 *   2. A gate's share is split evenly over its test groups:
 *        - proportion gates, absolute limits: one group per candidate (canary, shadow), the evidence
 *          accumulating over every stage that candidate serves (README, "Evidence across stages");
 *        - proportion gates, relative limits: one group per stage they are judged in (not at 100%);
 *        - latency and mean gates: one group per stage they are judged in (at 100% only with an absolute limit);
 *        - external gates: one group per candidate (values accumulate over the rollout).
 *   3. Within a group, all traffic gets `overallShare` (half) and every declared segment value, "other"
 *      included, an equal part of the rest; without segments (and for external gates, which have none)
 *      all traffic gets the whole group.
 * Each test is a confidence sequence, valid at every look, so its own chance of ever failing wrongly is at most
 * its alpha however long it runs; a relative limit splits its alpha between the candidate's and stable's.
 */
import { hasAbsoluteLimit, hasRelativeLimit, isStatistical, type GateSpec } from "./gate-spec.ts";
import type { StageKind } from "./spec-schema.ts";
import type { EngineSpec, StageSpec } from "./spec.ts";

export interface ErrorBudget {
  falseAlarmRate: number;
  /** falseAlarmRate / the number of statistical gates. */
  perGate: number;
  /** Test groups per gate name. */
  groups: Record<string, number>;
  /** Share of a group for all traffic; the rest is split over `segmentValues`. 1 without segments. */
  overallShare: number;
  segmentValues: number;
  /** Gates judged on all traffic only (external values have no segments): their groups are theirs entirely. */
  unsliced?: string[];
  /**
   * Per gate, the alpha of one of its test groups where a change mid-rollout set it (engine/respec.ts);
   * otherwise perGate / groups.
   */
  groupAlpha?: Record<string, number>;
  /**
   * After a change mid-rollout: per gate still in the spec, the alpha already given to its test groups that
   * have begun, and how many groups that covers; `retired`, the alpha given to tests of gates since removed
   * or changed. Both count against falseAlarmRate at every later change (engine/respec.ts).
   */
  spent?: Record<string, { alpha: number; groups: number }>;
  retired?: number;
}

const OVERALL_SHARE = 0.5;

export function errorBudget(spec: EngineSpec, segments: ReadonlyArray<{ values: readonly string[] }>): ErrorBudget {
  const segmentValues = segments.reduce((n, s) => n + s.values.length, 0);
  const statistical = spec.gates.filter(isStatistical);
  const groups: Record<string, number> = {};
  for (const gate of statistical) groups[gate.name] = Math.max(1, testGroups(gate, spec.stages));
  return {
    falseAlarmRate: spec.falseAlarmRate,
    perGate: spec.falseAlarmRate / Math.max(1, statistical.length),
    groups,
    overallShare: segmentValues > 0 ? OVERALL_SHARE : 1,
    segmentValues,
    unsliced: statistical.filter((g) => g.kind === "external").map((g) => g.name),
  };
}

/** The alpha of one test: one group of `gate`, on all traffic (segment false) or on one segment value. */
export function testAlpha(budget: ErrorBudget, gate: string, segment: boolean): number {
  const group = groupAlphaOf(budget, gate);
  if (budget.unsliced?.includes(gate)) return group;
  if (!segment) return group * budget.overallShare;
  return (group * (1 - budget.overallShare)) / Math.max(1, budget.segmentValues);
}

/** The alpha of one test group of `gate` (all traffic and its segment values together). */
export function groupAlphaOf(budget: ErrorBudget, gate: string): number {
  return budget.groupAlpha?.[gate] ?? budget.perGate / (budget.groups[gate] ?? 1);
}

/** The smallest alpha any test of the rollout gets (shown in reports and the false-alarm test). */
export function smallestAlpha(budget: ErrorBudget): number {
  const names = Object.keys(budget.groups);
  if (names.length === 0) return budget.falseAlarmRate;
  return Math.min(...names.map((g) => testAlpha(budget, g, budget.segmentValues > 0)));
}

export function testGroups(gate: GateSpec, stages: readonly StageSpec[]): number {
  const kinds = new Set(stages.map((s) => s.kind));
  const candidates = (applicable: StageKind[]) => new Set(applicable.filter((k) => kinds.has(k)).map((k) => (k === "shadow" ? "shadow" : "canary"))).size;
  switch (gate.kind) {
    case "external":
      return candidates(gate.during);
    case "proportion": {
      let n = 0;
      if (hasAbsoluteLimit(gate)) n += candidates(gate.during);
      if (hasRelativeLimit(gate)) n += stages.filter((s) => s.kind !== "bake" && gate.during.includes(s.kind)).length;
      return n;
    }
    default:
      return stages.filter((s) => gate.during.includes(s.kind) && (s.kind !== "bake" || hasAbsoluteLimit(gate))).length;
  }
}
