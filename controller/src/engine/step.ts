/**
 * One tick of a rollout: read the window since the stage began, evaluate every gate, then roll back,
 * advance, fail at the deadline, or hold. Pure: the clock and all readings are inputs, the weight changes
 * are outputs (actions) for the caller to apply.
 */
import type { MetricReading, RolloutCounts } from "../metrics/provider.ts";
import { rollbackReason } from "./attribution.ts";
import { OVERALL, requestsOf, sliceKey, toSnapshot, windowBetween, type CountsSnapshot } from "./counts.ts";
import { accumulated, countersOf, foldStage } from "./evidence.ts";
import { carriesTraffic, stageEta, stageHolds } from "./eta.ts";
import { forecastFromEvaluation, type Forecast } from "./forecast.ts";
import { DEFAULT_HARM_MULTIPLE, evaluateGates } from "./gates.ts";
import { describeLimit } from "./judge.ts";
import { propagationStep, type PropagationInput } from "./propagation.ts";
import type { PropagationView } from "./propagation-view.ts";
import { checkSampleRatio, sampleRatioHold, type SampleRatioPolicy, type SampleRatioResult } from "./sample-ratio.ts";
import { MeasurementStatus, segmentLabel, type Measurement } from "./measurement.ts";
import { isTerminal, Phase } from "./phase.ts";
import { requirementAt } from "./requirements.ts";
import { boundMultiple, ruledOutText } from "./stage-bound.ts";
import { budgetOf, candidateOf, ENGINE_ACTOR, runningStage, stageAt, type Action, type Decision, type EngineState, type StageEta } from "./state.ts";
import { evaluateTrafficMix, type TrafficMixResult } from "./traffic-mix.ts";
import type { JudgeReading } from "./webhook-answer.ts";
import { checkCanaryIdentity, identityReason, markIdentity, stepAfterRelease } from "./lifecycle.ts";
import { completeBake, decision, endWithRollback, enterStage, summarizeWindow } from "./transitions.ts";

/** A hold that does not change is recorded again this often, so the history shows it is still current. */
export const HOLD_SNAPSHOT_SECONDS = 60;

interface TickInput {
  /** The injected clock, ms since the epoch. */
  now: number;
  /** Cumulative counts of the rollout (all Envoy endpoints summed). */
  counts: MetricReading<RolloutCounts>;
  /** This tick's value of each PromQL gate, by gate name (release/promql-gates.ts reads them). */
  promql?: Record<string, MetricReading<number | null>>;
  /** Each webhook gate's latest judge answer, by gate name (release/webhook-judge.ts asks the judges). */
  judges?: Record<string, JudgeReading>;
  /** What the proxies run, against the version that carried the weights (propagation.ts); absent: no wait. */
  propagation?: PropagationInput;
  /** The sample-ratio check's policy (sample-ratio.ts); absent: not checked. */
  sampleRatio?: SampleRatioPolicy;
}

export interface Evaluation {
  at: number;
  stage: { index: number; name: string } | null;
  windowStartedAt: number | null;
  measurements: Measurement[];
  trafficMix: TrafficMixResult[];
  /** Why the stage is not advancing (empty when it advanced or the rollout ended). */
  blocking: string[];
  /** What holds the stage, per gate and slice, and when it is expected to decide (absent in older records). */
  eta?: StageEta | null;
  /** The remaining stages' expected durations at the observed traffic. */
  forecast?: Forecast | null;
  /** Requests per second over the stage's window: all of the path's traffic, and the candidate's. */
  traffic?: { requestsPerSecond: number; candidatePerSecond: number } | null;
  /** Whether the data plane runs the stage's weights, and since when (absent without a version source). */
  propagation?: PropagationView | null;
  /** The observed split against the set weight (absent when not checked). */
  sampleRatio?: SampleRatioResult | null;
}

export interface StepResult {
  state: EngineState;
  decisions: Decision[];
  actions: Action[];
  evaluation: Evaluation | null;
}

export function step(state: EngineState, input: TickInput): StepResult {
  const now = input.now;
  const reading = readable(input.counts);
  if (isTerminal(state.phase)) return { ...stepAfterRelease(state, reading.snapshot, now), evaluation: null };

  if (state.phase === Phase.Pending) {
    const first = stageAt(state.spec, 0);
    const t = enterStage(markIdentity(state, reading.snapshot), 0, now, reading.snapshot, "started", {
      actor: ENGINE_ACTOR,
      reason: `rollout started with stage ${first.name}`,
    });
    return { ...t, evaluation: null };
  }

  const decisions: Decision[] = [];
  // Until the proxies run the stage's weights, the baseline follows the readings (propagation.ts).
  const waited = propagationStep(state, input.propagation, reading.snapshot, now);
  let current: EngineState = waited.state;
  let window: CountsSnapshot | null = null;
  if (reading.snapshot) {
    const baseline = current.baseline ?? reading.snapshot;
    if (!current.baseline) current = { ...current, baseline, baselineAt: now };
    const between = windowBetween(reading.snapshot, baseline);
    if (between.reset) {
      // The counts before the restart are lost to the window, not to the evidence: fold what the last tick saw.
      const reset: EngineState = { ...current, baseline: reading.snapshot, baselineAt: now, evidence: foldStage(current.evidence) };
      decisions.push(
        decision(current, reset, "baselineReset", now, {
          actor: ENGINE_ACTOR,
          reason:
            "a cumulative count went down (a data-path process restarted): the stage's window starts again from this reading; proportion gates keep the evidence gathered before it",
        }),
      );
      current = reset;
      window = windowBetween(reading.snapshot, reading.snapshot).window;
    } else {
      window = between.window;
    }
    current = { ...current, evidence: { carried: current.evidence?.carried ?? null, stage: countersOf(window) } };
  }

  const { stage } = runningStage(current);
  const stageKind = current.phase === Phase.AwaitingReview ? "bake" : stage.kind;
  const candidate = candidateOf(stageKind);
  const stageIndex = current.phase === Phase.AwaitingReview ? current.spec.stages.length - 1 : current.stageIndex;
  const budget = budgetOf(current);
  const soFar = window ? accumulated({ carried: current.evidence?.carried ?? null, stage: null }, window) : null;
  const measurements = evaluateGates({
    gates: current.spec.gates,
    stageKind,
    candidate,
    candidatePercent: candidate === "shadow" ? current.weights.shadowPercent : current.weights.canaryPercent,
    budget,
    window,
    windowError: reading.error,
    accumulated: soFar,
    slices: [OVERALL, ...current.segments.flatMap((s) => s.values.map((value) => sliceKey({ dimension: s.dimension, value })))],
    promql: input.promql,
    judges: input.judges,
    stage: { index: stageIndex, startedAt: current.stageStartedAt },
    external: current.external,
    harmMultiple: current.spec.harmMultiple ?? DEFAULT_HARM_MULTIPLE,
    requirement: (gate, segment) =>
      requirementAt(
        current.spec,
        stageIndex,
        gate,
        segment !== null,
        segment === null || carriesTraffic(current, window, segment.dimension, segment.value, candidate),
      ),
    boundMultiple: (_gate, segment) => boundMultiple(current.spec, stageIndex, segment !== null),
  });
  const trafficMix =
    current.spec.trafficMix.check && window && current.segments.length > 0
      ? evaluateTrafficMix(window, current.segments, candidate, current.spec.trafficMix)
      : [];
  const windowSeconds = current.baselineAt !== null ? (now - current.baselineAt) / 1000 : 0;
  const sampleRatio =
    input.sampleRatio && candidate === "canary" && waited.hold === null ? checkSampleRatio(window, current.weights.canaryPercent, input.sampleRatio) : null;
  const evaluation: Evaluation = {
    at: now,
    stage: { index: stage.index, name: stage.name },
    windowStartedAt: waited.hold === null ? current.baselineAt : null,
    propagation: waited.view,
    sampleRatio,
    measurements,
    trafficMix,
    blocking: [],
    eta: null,
    forecast: null,
    traffic: window && windowSeconds > 0 ? trafficRates(window, candidate, windowSeconds) : null,
  };
  const done = (t: { state: EngineState; decisions: Decision[]; actions: Action[] }): StepResult => ({
    state: t.state,
    decisions: [...decisions, ...t.decisions],
    actions: t.actions,
    evaluation,
  });

  // The canary answering another model than declared is a defect whatever the gates say.
  const identity = checkCanaryIdentity(current, reading.snapshot);
  current = identity.state;
  if (identity.models !== null && identity.mismatched > 0) {
    const reason = identityReason(identity.models, identity.mismatched, reading.snapshot);
    return done(
      endWithRollback(current, Phase.RolledBack, "rolledBack", now, {
        actor: ENGINE_ACTOR,
        reason,
        measurements,
        trafficMix,
        window: summarizeWindow(current, window, now),
      }),
    );
  }
  // Only Failed rolls back, and at once, whatever else is going on (paused, awaiting review).
  const failed = measurements.filter((m) => m.status === MeasurementStatus.Failed);
  if (failed.length > 0) {
    return done(
      endWithRollback(current, Phase.RolledBack, "rolledBack", now, {
        actor: ENGINE_ACTOR,
        reason: rollbackReason(failed, candidate, { gates: current.spec.gates, window, accumulated: soFar }),
        measurements,
        trafficMix,
        window: summarizeWindow(current, window, now),
      }),
    );
  }

  const mismatched = trafficMix.filter((m) => m.mismatch);
  const mixSignature = mismatched.map((m) => m.dimension).join(",");
  if (mixSignature !== (current.mixSignature ?? "")) {
    const next = { ...current, mixSignature };
    if (mismatched.length > 0) {
      decisions.push(
        decision(current, next, "trafficMixWarning", now, {
          actor: ENGINE_ACTOR,
          reason: `traffic mix differs: ${mismatched.map((m) => m.reason).join("; ")}${current.spec.trafficMix.holdOnMismatch ? " (holding the stage)" : ""}`,
          measurements,
          trafficMix,
        }),
      );
    }
    current = next;
  }

  if (current.phase === Phase.Paused || current.phase === Phase.AwaitingReview) {
    evaluation.blocking = [current.phase === Phase.Paused ? "paused by an operator" : "waiting for a review"];
    return done({ state: current, decisions: [], actions: [] });
  }

  const holds = [
    ...[waited.hold, sampleRatioHold(sampleRatio)].filter((h) => h !== null),
    ...stageHolds({ state: current, now, window, measurements, mismatched, candidate }),
  ];
  const eta = stageEta(holds, current, now);
  const forecast = forecastFromEvaluation(current, measurements, windowSeconds, eta.secondsToDecision, (segment) =>
    carriesTraffic(current, window, segment.dimension, segment.value, candidate),
  );
  eta.warnings.push(...forecast.warnings);
  evaluation.eta = eta;
  evaluation.forecast = forecast;
  evaluation.blocking = holds.map((b) => b.text);
  const elapsedMs = now - runningStage(current).startedAt - current.pausedMsInStage;

  if (holds.length === 0) {
    const following = current.spec.stages[current.stageIndex + 1];
    const details = {
      actor: ENGINE_ACTOR,
      reason: `stage ${stage.name} passed: ${passedSummary(measurements)}; after ${Math.round(elapsedMs / 1000)} s${following ? `; on to ${following.name}` : ""}`,
      measurements,
      trafficMix,
      window: summarizeWindow(current, window, now),
    };
    if (following) {
      return done(enterStage(current, current.stageIndex + 1, now, reading.snapshot, "advanced", details));
    }
    return done(completeBake(current, now, "advanced", details));
  }

  if (elapsedMs >= stage.deadlineSeconds * 1000) {
    const waiting = holds.map((b) => b.text).join("; ");
    if (stage.onDeadline === "fail") {
      return done(
        endWithRollback(current, Phase.Failed, "failed", now, {
          actor: ENGINE_ACTOR,
          reason: `stage ${stage.name} passed its deadline (${stage.deadlineSeconds} s) still waiting on: ${waiting}`,
          measurements,
          trafficMix,
          window: summarizeWindow(current, window, now),
        }),
      );
    }
    if (!current.deadlineNoted) {
      const next = { ...current, deadlineNoted: true };
      decisions.push(
        decision(current, next, "deadlinePassed", now, {
          actor: ENGINE_ACTOR,
          reason: `stage ${stage.name} passed its deadline (${stage.deadlineSeconds} s); holding for an operator as configured, waiting on: ${waiting}`,
          measurements,
          trafficMix,
        }),
      );
      current = next;
    }
    return done({ state: current, decisions: [], actions: [] });
  }

  // Record a hold when what it waits on changes, and again every HOLD_SNAPSHOT_SECONDS while it lasts.
  const signature = holds.map((b) => b.key).join("|");
  const stale = current.holdRecordedAt === null || current.holdRecordedAt === undefined || now - current.holdRecordedAt >= HOLD_SNAPSHOT_SECONDS * 1000;
  if (signature !== current.holdSignature || stale) {
    const next = { ...current, holdSignature: signature, holdRecordedAt: now };
    const expected =
      eta.secondsToDecision === null ? "no decision time can be given yet" : `a decision expected in about ${eta.secondsToDecision} s at the current traffic`;
    decisions.push({
      ...decision(current, next, "held", now, {
        actor: ENGINE_ACTOR,
        reason: `stage ${stage.name} holding (${expected}): ${holds.map((b) => b.text).join("; ")}`,
        measurements,
        trafficMix,
      }),
      eta,
    });
    current = next;
  }
  return done({ state: current, decisions: [], actions: [] });
}

/**
 * What an advance showed, in words: the gates that passed, and for the others what the stage asked instead
 * (the harm its bound ruled out, with the estimate and the declared limit; or a segment value that can only
 * fail). Keeps the record honest about what was and was not shown: "no harm" is never said of harm smaller
 * than the bound that was ruled out.
 */
function passedSummary(measurements: Measurement[]): string {
  const passed = measurements.filter((m) => m.status === MeasurementStatus.Passed && m.segment === null).map((m) => m.gate);
  const bounded = measurements
    .filter((m) => m.status !== MeasurementStatus.Passed && m.requirement === "detect")
    .map((m) => {
      const ruled = m.bound && m.threshold ? ` (${ruledOutText(m, describeLimit(m.threshold.kind, m.threshold.value, m.unit, m.threshold.tolerance))})` : "";
      return `${m.gate} ${segmentLabel(m.segment)}${ruled}`;
    });
  const open = measurements
    .filter((m) => m.status !== MeasurementStatus.Passed && m.requirement === "none")
    .map((m) => `${m.gate} ${segmentLabel(m.segment)} ${m.status}`);
  const parts: string[] = [];
  parts.push(passed.length > 0 ? `gates passed: ${unique(passed).join(", ")}` : "no gate passed yet");
  if (bounded.length > 0) parts.push(`within the limits at the estimate, and larger harm ruled out: ${list(bounded)}`);
  if (open.length > 0) parts.push(`segment slices not yet conclusive: ${list(open)} (a slice not required here can still fail the rollout later)`);
  return parts.join("; ");
}

const unique = (xs: string[]) => [...new Set(xs)];
const list = (xs: string[]) => `${xs.slice(0, 6).join(", ")}${xs.length > 6 ? `, +${xs.length - 6} more` : ""}`;

function trafficRates(window: CountsSnapshot, candidate: "canary" | "shadow", seconds: number): { requestsPerSecond: number; candidatePerSecond: number } {
  const overall = window.slices[OVERALL];
  // Mirrored shadow requests are copies of primary ones: the path's traffic is stable + canary.
  const total = requestsOf(overall?.stable) + requestsOf(overall?.canary);
  return { requestsPerSecond: total / seconds, candidatePerSecond: requestsOf(overall?.[candidate]) / seconds };
}

function readable(reading: MetricReading<RolloutCounts>): { snapshot: CountsSnapshot | null; error: string | null } {
  if (reading.status === "unmeasurable") return { snapshot: null, error: reading.error };
  // A partial reading (some endpoints down) would look like counts going down: treat it as unreadable.
  const down = reading.sources.filter((s) => !s.ok);
  if (down.length > 0) {
    return {
      snapshot: null,
      error: `${down.length} of ${reading.sources.length} stat sources did not answer (${down.map((s) => `${s.url}: ${s.error ?? "error"}`).join("; ")})`,
    };
  }
  return { snapshot: toSnapshot(reading.value), error: null };
}
