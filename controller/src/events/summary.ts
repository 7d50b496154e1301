/**
 * One rollout as the dashboard's stream sends it: what the list page shows (phase, stage, set and observed
 * weight, owner, age, what needs attention) and, for the stream of one rollout, the engine's plan and its
 * latest evaluation (gates per slice with intervals and sample sizes, what holds the stage, the traffic-mix
 * check). Built from the store's Rollout, so it can show what the rollout view does not carry. Pure.
 */
import { isTerminal, MeasurementStatus, Phase, type Evaluation } from "../engine/index.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { UpstreamLookup } from "../metrics/envoy-upstreams.ts";
import { variantsOf, type VariantsView } from "../http/variants-view.ts";

interface PlanStage {
  index: number;
  name: string;
  kind: string;
  canaryPercent: number;
  shadowPercent: number;
  minDurationSeconds: number;
  minRequests: number;
  deadlineSeconds: number;
  onDeadline: string;
}

export interface RolloutSummary {
  name: string;
  revision: number;
  managed: boolean;
  phase: string | null;
  stage: { index: number; name: string } | null;
  stageCount: number | null;
  canaryPercent: number;
  shadowPercent: number;
  /** The canary's share of requests: over the stage's window (managed), else over the latest snapshot. */
  observedCanaryPercent: number | null;
  owner: string | null;
  rollbackCondition: string | null;
  createdAt: string;
  updatedAt: string;
  stageStartedAt: string | null;
  /** Time paused in the current stage (not counted towards its minimum duration). */
  pausedSecondsInStage: number;
  pathPrefix: string;
  /** Which model is which (http/variants-view.ts). */
  variants: VariantsView;
  /** Verdicts of the latest evaluation, all slices. */
  gates: { passed: number; failed: number; inconclusive: number; error: number };
  /** Why a person should look: rolled back, failed, awaiting review, paused, gates in Error, traffic mix. */
  attention: string[];
  lastDecision: { at: string; kind: string; actor: string; reason: string } | null;
  /** The stream of one rollout only. */
  plan?: PlanStage[];
  evaluation?: Evaluation | null;
  endedAt?: string | null;
  /** Gates as declared: name -> kind (promql gates hold resource figures). */
  gateKinds?: Record<string, string>;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

function observedFromEvaluation(evaluation: Evaluation | null): number | null {
  if (!evaluation) return null;
  let best: { stable: number; candidate: number } | null = null;
  for (const m of evaluation.measurements) {
    if (m.segment !== null || m.candidate !== "canary") continue;
    const { stable, candidate } = m.sampleSizes;
    if (!best || stable + candidate > best.stable + best.candidate) best = { stable, candidate };
  }
  if (!best || best.stable + best.candidate === 0) return null;
  return (best.candidate / (best.stable + best.candidate)) * 100;
}

function attentionOf(rollout: Rollout): string[] {
  const engine = rollout.engine;
  const out: string[] = [];
  if (engine === null) {
    if (rollout.lastRollbackAt !== null && rollout.canaryPercent === 0) out.push("rolled back");
    return out;
  }
  const phase = engine.state.phase;
  if (phase === Phase.RolledBack) out.push("rolled back");
  if (phase === Phase.Failed) out.push("failed");
  if (phase === Phase.AwaitingReview) out.push("awaiting review");
  if (phase === Phase.Paused) out.push("paused");
  if (phase === Phase.Succeeded) out.push("finalize pending");
  const evaluation = engine.lastEvaluation;
  if (evaluation && !isTerminal(phase)) {
    if (evaluation.measurements.some((m) => m.status === MeasurementStatus.Error)) out.push("gates in Error");
    if (evaluation.trafficMix.some((t) => t.mismatch)) out.push("traffic mix differs");
  }
  return out;
}

export function summaryOf(rollout: Rollout, observedFromSnapshots: number | null, detail: boolean, upstreams?: UpstreamLookup): RolloutSummary {
  const engine = rollout.engine;
  const state = engine?.state ?? null;
  const evaluation = engine?.lastEvaluation ?? null;
  const gates = { passed: 0, failed: 0, inconclusive: 0, error: 0 };
  if (evaluation && state && !isTerminal(state.phase)) {
    for (const m of evaluation.measurements) {
      if (m.status === MeasurementStatus.Passed) gates.passed++;
      else if (m.status === MeasurementStatus.Failed) gates.failed++;
      else if (m.status === MeasurementStatus.Inconclusive) gates.inconclusive++;
      else gates.error++;
    }
  }
  const last = engine?.decisions.at(-1);
  const stage = state && state.stageIndex >= 0 ? state.spec.stages[state.stageIndex] : null;
  const inCanary =
    state !== null && (state.phase === Phase.Canary || state.phase === Phase.Baking || (state.phase === Phase.Paused && state.pausedFrom !== Phase.Shadowing));
  const summary: RolloutSummary = {
    name: rollout.spec.name,
    revision: rollout.revision,
    managed: engine !== null,
    phase: state?.phase ?? null,
    stage: stage ? { index: stage.index, name: stage.name } : null,
    stageCount: state ? state.spec.stages.length : null,
    canaryPercent: rollout.canaryPercent,
    shadowPercent: rollout.shadowPercent,
    observedCanaryPercent:
      (inCanary ? observedFromEvaluation(evaluation) : null) ?? (state && !inCanary && !isTerminal(state.phase) ? null : observedFromSnapshots),
    owner: state?.spec.owner ?? null,
    rollbackCondition: state?.spec.rollbackCondition ?? null,
    createdAt: rollout.createdAt.toISOString(),
    updatedAt: rollout.updatedAt.toISOString(),
    stageStartedAt: iso(state?.stageStartedAt),
    pausedSecondsInStage: Math.round((state?.pausedMsInStage ?? 0) / 1000),
    pathPrefix: rollout.spec.match.pathPrefix,
    variants: variantsOf(rollout, upstreams),
    gates,
    attention: attentionOf(rollout),
    lastDecision: last ? { at: new Date(last.at).toISOString(), kind: last.kind, actor: last.actor, reason: last.reason } : null,
  };
  if (detail) {
    summary.plan = state ? state.spec.stages.map((s) => ({ ...s })) : [];
    summary.evaluation = evaluation;
    summary.endedAt = iso(state?.endedAt);
    summary.gateKinds = state ? Object.fromEntries(state.spec.gates.map((g) => [g.name, g.kind])) : {};
  }
  return summary;
}
