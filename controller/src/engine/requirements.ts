/**
 * What a stage must show, per gate and slice (README, "What a stage must show"). Harm detection is always on:
 * a Failed gate on any slice rolls back at any stage. What holds a stage differs:
 *   pass    the gate must be Passed. All traffic, at the gate's proof stage (the last stage before 100% in
 *           which the gate is judged) and at 100% (absolute limits); PromQL gates at every stage.
 *   detect  the gate must be Passed, or have its estimate within the declared limit and its always-valid
 *           interval within the stage bound: the limit widened to a multiple of its allowance that
 *           tightens toward the limit as the next stage's share grows (stage-bound.ts). All traffic before
 *           the proof stage; every segment value carrying at least segmentTrafficShare of the traffic at
 *           the proof stage (held to harmMultiple times the allowance), on the evidence accumulated so far.
 *   none    the slice can fail the rollout but never holds it: segment values before the proof stage, rare
 *           values, segment values at 100%.
 * Proof of "not worse" takes thousands of samples per slice (3 000-4 000 to show a 0.3% error rate under a 1%
 * limit); a canary at 5% of a small service cannot gather that in minutes, so early stages only rule out the
 * harm the next stage's exposure cannot afford, and never let an estimate past the limit through.
 */
import { isStatistical, type GateSpec } from "./gate-spec.ts";
import type { EngineSpec } from "./spec.ts";

export type Requirement = "pass" | "detect" | "none";

/** Index of the stage where `gate` must pass on all traffic: its last stage before the first 100% stage. */
export function proofStageOf(spec: EngineSpec, gate: GateSpec): number {
  const firstBake = spec.stages.findIndex((s) => s.kind === "bake");
  const end = firstBake < 0 ? spec.stages.length : firstBake;
  for (let i = end - 1; i >= 0; i--) {
    const stage = spec.stages[i];
    if (stage !== undefined && gate.during.includes(stage.kind)) return i;
  }
  return firstBake;
}

export function requirementAt(spec: EngineSpec, stageIndex: number, gate: GateSpec, segment: boolean, sliceCarriesTraffic: boolean): Requirement {
  if (!isStatistical(gate)) return "pass";
  const proof = proofStageOf(spec, gate);
  const bake = spec.stages[stageIndex]?.kind === "bake";
  if (stageIndex < proof && !bake) {
    if (segment) return "none";
    return gate.kind === "external" ? "none" : "detect";
  }
  if (stageIndex === proof) return segment ? (sliceCarriesTraffic && gate.kind !== "external" ? "detect" : "none") : "pass";
  return segment ? "none" : "pass";
}
