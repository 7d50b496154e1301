/**
 * One tick of a rollout: read the window since the stage began, evaluate every gate, then roll back,
 * advance, fail at the deadline, or hold. Pure: the clock and all readings are inputs, the weight changes
 * are outputs (actions) for the caller to apply.
 */
import type { MetricReading, RolloutCounts } from "../metrics/provider.ts";
import { OVERALL, requestsOf, sliceKey, toSnapshot, windowBetween, type CountsSnapshot } from "./counts.ts";
import { evaluateGates } from "./gates.ts";
import { MeasurementStatus, segmentLabel, type Measurement } from "./measurement.ts";
import { isTerminal, Phase } from "./phase.ts";
import { candidateOf, currentStage, ENGINE_ACTOR, type Action, type Decision, type EngineState } from "./state.ts";
import { evaluateTrafficMix, type TrafficMixResult } from "./traffic-mix.ts";
import { checkCanaryIdentity, identityReason, markIdentity, stepAfterRelease } from "./lifecycle.ts";
import { modelsOf } from "./lifecycle-spec.ts";
import { completeBake, decision, endWithRollback, enterStage, summarizeWindow } from "./transitions.ts";

export interface TickInput {
  /** The injected clock, ms since the epoch. */
  now: number;
  /** Cumulative counts of the rollout (all Envoy endpoints summed). */
  counts: MetricReading<RolloutCounts>;
  /** This tick's value of each PromQL gate, by gate name (engine/promql.ts reads them). */
  promql?: Record<string, MetricReading<number | null>>;
}

export interface Evaluation {
  at: number;
  stage: { index: number; name: string } | null;
  windowStartedAt: number | null;
  measurements: Measurement[];
  trafficMix: TrafficMixResult[];
  /** Why the stage is not advancing (empty when it advanced or the rollout ended). */
  blocking: string[];
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
    const first = state.spec.stages[0];
    const t = enterStage(markIdentity(state, reading.snapshot), 0, now, reading.snapshot, "started", { actor: ENGINE_ACTOR, reason: `rollout started with stage ${first.name}` });
    return { ...t, evaluation: null };
  }

  const decisions: Decision[] = [];
  let current: EngineState = state;
  let window: CountsSnapshot | null = null;
  if (reading.snapshot) {
    if (!current.baseline) current = { ...current, baseline: reading.snapshot, baselineAt: now };
    const between = windowBetween(reading.snapshot, current.baseline!);
    if (between.reset) {
      const reset: EngineState = { ...current, baseline: reading.snapshot, baselineAt: now };
      decisions.push(
        decision(current, reset, "baselineReset", now, {
          actor: ENGINE_ACTOR,
          reason: "a cumulative count went down (a data-path process restarted): the stage's window starts again from this reading",
        }),
      );
      current = reset;
      window = windowBetween(reading.snapshot, reading.snapshot).window;
    } else {
      window = between.window;
    }
  }

  const stage = currentStage(current)!;
  const stageKind = current.phase === Phase.AwaitingReview ? "bake" : stage.kind;
  const candidate = candidateOf(stageKind);
  const measurements = evaluateGates({
    gates: current.spec.gates,
    stageKind,
    candidate,
    alphaPerTest: current.alphaPerTest,
    window,
    windowError: reading.error,
    slices: [OVERALL, ...current.segments.flatMap((s) => s.values.map((value) => sliceKey({ dimension: s.dimension, value })))],
    promql: input.promql,
    external: current.external,
  });
  const trafficMix =
    current.spec.trafficMix.check && window && current.segments.length > 0
      ? evaluateTrafficMix(window, current.segments, candidate, current.spec.trafficMix)
      : [];
  const evaluation: Evaluation = {
    at: now,
    stage: { index: stage.index, name: stage.name },
    windowStartedAt: current.baselineAt,
    measurements,
    trafficMix,
    blocking: [],
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
  if (identity.mismatched > 0) {
    const reason = identityReason(modelsOf(current.spec)!, identity.mismatched, reading.snapshot);
    return done(endWithRollback(current, Phase.RolledBack, "rolledBack", now, { actor: ENGINE_ACTOR, reason, measurements, trafficMix, window: summarizeWindow(current, window, now) }));
  }
  // Only Failed rolls back, and at once, whatever else is going on (paused, awaiting review).
  const failed = measurements.filter((m) => m.status === MeasurementStatus.Failed);
  if (failed.length > 0) {
    return done(
      endWithRollback(current, Phase.RolledBack, "rolledBack", now, {
        actor: ENGINE_ACTOR,
        reason: rollbackReason(failed, candidate),
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

  const blocking = blockingReasons(current, now, window, measurements, mismatched, candidate);
  evaluation.blocking = blocking.map((b) => b.text);
  const elapsedMs = now - current.stageStartedAt! - current.pausedMsInStage;

  if (blocking.length === 0) {
    const details = {
      actor: ENGINE_ACTOR,
      reason: `stage ${stage.name} passed: every gate Passed after ${Math.round(elapsedMs / 1000)} s${openSlices(measurements)}${
        current.stageIndex < current.spec.stages.length - 1 ? `; on to ${current.spec.stages[current.stageIndex + 1].name}` : ""
      }`,
      measurements,
      trafficMix,
      window: summarizeWindow(current, window, now),
    };
    if (current.stageIndex < current.spec.stages.length - 1) {
      return done(enterStage(current, current.stageIndex + 1, now, reading.snapshot, "advanced", details));
    }
    return done(completeBake(current, now, "advanced", details));
  }

  if (elapsedMs >= stage.deadlineSeconds * 1000) {
    const waiting = blocking.map((b) => b.text).join("; ");
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

  // Record a hold when what it waits on changes, not every tick.
  const signature = blocking.map((b) => b.key).join("|");
  if (signature !== current.holdSignature) {
    const next = { ...current, holdSignature: signature };
    decisions.push(
      decision(current, next, "held", now, {
        actor: ENGINE_ACTOR,
        reason: `stage ${stage.name} holding: ${blocking.map((b) => b.text).join("; ")}`,
        measurements,
        trafficMix,
      }),
    );
    current = next;
  }
  return done({ state: current, decisions: [], actions: [] });
}

interface Blocking {
  /** Stable across ticks while the same thing blocks (no numbers), for the hold signature. */
  key: string;
  text: string;
}

function blockingReasons(
  state: EngineState,
  now: number,
  window: CountsSnapshot | null,
  measurements: Measurement[],
  mismatched: TrafficMixResult[],
  candidate: "canary" | "shadow",
): Blocking[] {
  const stage = currentStage(state)!;
  const out: Blocking[] = [];
  const elapsed = (now - state.stageStartedAt! - state.pausedMsInStage) / 1000;
  if (elapsed < stage.minDurationSeconds) {
    out.push({ key: "minDuration", text: `minimum duration: ${Math.floor(elapsed)} of ${stage.minDurationSeconds} s` });
  }
  if (!window) {
    out.push({ key: "traffic", text: "traffic: the counts could not be read" });
  } else if (stage.minRequests > 0) {
    const overall = requestsOf(window.slices[OVERALL]?.[candidate]);
    if (overall < stage.minRequests) out.push({ key: "traffic", text: `traffic: the ${candidate} answered ${overall} of ${stage.minRequests} requests` });
    const short: string[] = [];
    let windowTotal = 0;
    for (const variant of ["stable", candidate] as const) windowTotal += requestsOf(window.slices[OVERALL]?.[variant]);
    for (const { dimension, values } of state.segments) {
      for (const value of values) {
        const slice = window.slices[sliceKey({ dimension, value })];
        const total = requestsOf(slice?.stable) + requestsOf(slice?.[candidate]);
        const n = requestsOf(slice?.[candidate]);
        if (windowTotal > 0 && total / windowTotal >= state.spec.segmentTrafficShare && n < stage.minRequests) short.push(`${dimension}=${value} ${n}`);
      }
    }
    if (short.length > 0) out.push({ key: "segmentTraffic", text: `traffic: segment values short of ${stage.minRequests} requests: ${short.join(", ")}` });
  }
  for (const m of measurements) {
    if (m.segment !== null || m.status === MeasurementStatus.Passed) continue;
    out.push({ key: `gate:${m.gate}:${m.status}`, text: `${m.gate} ${m.status}: ${m.reason}` });
  }
  if (state.spec.trafficMix.holdOnMismatch && mismatched.length > 0) {
    out.push({ key: "trafficMix", text: `traffic mix: ${mismatched.map((m) => m.reason).join("; ")}` });
  }
  return out;
}

/**
 * Segment slices may still be undecided when a stage advances: a value below segmentTrafficShare of the
 * traffic does not hold the stage (a rare value would hold it for ever), and a slice only rolls back once it
 * has Failed. Saying so in the decision keeps the record honest about what was and was not shown.
 */
function openSlices(measurements: Measurement[]): string {
  const open = measurements.filter((m) => m.segment !== null && m.status !== MeasurementStatus.Passed).map((m) => `${m.gate} ${segmentLabel(m.segment)} ${m.status}`);
  if (open.length === 0) return "";
  return ` (segment slices not yet conclusive: ${open.slice(0, 6).join(", ")}${open.length > 6 ? `, +${open.length - 6} more` : ""})`;
}

/**
 * "canary worse for tenant_tier=enterprise: error rate 4.1% vs 0.3% (...)". Names the worst Failed slice;
 * when the whole traffic fails about as badly (at least 3/4 of the worst segment's severity) the defect is
 * not segment-specific and "overall" is named instead, with the worst segment mentioned.
 */
export function rollbackReason(failed: Measurement[], candidate: "canary" | "shadow"): string {
  const sorted = [...failed].sort((a, b) => b.severity - a.severity);
  const worst = sorted[0];
  const overall = sorted.find((m) => m.segment === null && m.gate === worst.gate);
  const named = worst.segment !== null && overall && overall.severity >= 0.75 * worst.severity ? overall : worst;
  const where = named.segment === null ? "overall" : `for ${segmentLabel(named.segment)}`;
  const others = sorted.filter((m) => m !== named).map((m) => `${m.gate} ${segmentLabel(m.segment)}`);
  const also = others.length > 0 ? `; also failing: ${others.slice(0, 8).join(", ")}${others.length > 8 ? `, +${others.length - 8} more` : ""}` : "";
  return `${candidate} worse ${where}: ${named.reason}${also}`;
}

function readable(reading: MetricReading<RolloutCounts>): { snapshot: CountsSnapshot | null; error: string | null } {
  if (reading.status === "unmeasurable") return { snapshot: null, error: reading.error };
  // A partial reading (some endpoints down) would look like counts going down: treat it as unreadable.
  const down = reading.sources.filter((s) => !s.ok);
  if (down.length > 0) {
    return { snapshot: null, error: `${down.length} of ${reading.sources.length} stat sources did not answer (${down.map((s) => `${s.url}: ${s.error ?? "error"}`).join("; ")})` };
  }
  return { snapshot: toSnapshot(reading.value), error: null };
}
