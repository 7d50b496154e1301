/**
 * What holds the current stage, and when it is expected to decide: per gate and slice, the samples its
 * requirement needs (power.ts), how many more that is, and the time at the traffic seen in the stage's window
 * so far. A stage decides when its slowest hold clears (or, for a gate expected past its limit, when it fails).
 */
import { OVERALL, requestsOf, sliceKey, type CountsSnapshot } from "./counts.ts";
import { describeLimit } from "./judge.ts";
import { MeasurementStatus, segmentLabel, type Measurement } from "./measurement.ts";
import { describeBoundHarm, describeEstimate } from "./stage-bound.ts";
import { currentStage, runningStage, type EngineState, type Hold, type StageEta } from "./state.ts";
import type { TrafficMixResult } from "./traffic-mix.ts";

interface HoldContext {
  state: EngineState;
  now: number;
  window: CountsSnapshot | null;
  measurements: readonly Measurement[];
  mismatched: readonly TrafficMixResult[];
  candidate: "canary" | "shadow";
}

/**
 * Candidate samples after which a segment value's estimate past its limit holds a stage that does not ask the
 * value to detect harm (before the gate's proof stage): fewer, and the noise of a small tier's first requests
 * holds good canaries. Chosen by measurement (issue 19, 20 seeded rollouts at 100 requests/s, bench/decisions'
 * scenarios): with 100, a canary 25% slower on the 30% tier only of 60/30/10% never left 5% (18 of 20 did
 * without the rule), a good canary took 220 s (p90 350 s) and 225 s (p90 430 s) with 80/15/5%; with 50 the
 * good canary's p90 was 515 and 615 s, with 200 the slow tier left 5% in 10 of 20.
 */
const SEGMENT_ESTIMATE_SAMPLES = 100;

export function stageHolds(ctx: HoldContext): Hold[] {
  const { state, now, window, candidate } = ctx;
  const { stage, startedAt } = runningStage(state);
  const out: Hold[] = [];
  const elapsed = (now - startedAt - state.pausedMsInStage) / 1000;
  const windowSeconds = state.baselineAt !== null ? Math.max(0, (now - state.baselineAt) / 1000) : 0;
  const perSecond = (n: number) => (windowSeconds > 0 && n > 0 ? n / windowSeconds : 0);
  const timeFor = (more: number, rate: number) => (more <= 0 ? 0 : rate > 0 ? Math.ceil(more / rate) : null);
  const base = { gate: null, segment: null, samples: null, needed: null };
  if (elapsed < stage.minDurationSeconds) {
    out.push({
      ...base,
      key: "minDuration",
      text: `minimum duration: ${Math.floor(elapsed)} of ${stage.minDurationSeconds} s`,
      seconds: Math.ceil(stage.minDurationSeconds - elapsed),
    });
  }
  if (!window) {
    out.push({ ...base, key: "traffic", text: "traffic: the counts could not be read", seconds: null });
  } else if (stage.minRequests > 0) {
    const overall = requestsOf(window.slices[OVERALL]?.[candidate]);
    if (overall < stage.minRequests) {
      out.push({
        ...base,
        key: "traffic",
        text: `traffic: the ${candidate} answered ${overall} of ${stage.minRequests} requests`,
        samples: overall,
        needed: stage.minRequests,
        seconds: timeFor(stage.minRequests - overall, perSecond(overall)),
      });
    }
    const short: string[] = [];
    let slowest: number | null = 0;
    for (const { dimension, values } of state.segments) {
      for (const value of values) {
        const n = requestsOf(window.slices[sliceKey({ dimension, value })]?.[candidate]);
        if (carriesTraffic(state, window, dimension, value, candidate) && n < stage.minRequests) {
          short.push(`${dimension}=${value} ${n}`);
          const t = timeFor(stage.minRequests - n, perSecond(n));
          slowest = t === null || slowest === null ? null : Math.max(slowest, t);
        }
      }
    }
    if (short.length > 0)
      out.push({
        ...base,
        key: "segmentTraffic",
        text: `traffic: segment values short of ${stage.minRequests} requests: ${short.join(", ")}`,
        seconds: slowest,
      });
  }
  // Only where a bigger stage follows: at 100% a segment value's estimate is the rollout's to fail, not to hold.
  const growing = stage.kind !== "bake";
  const carries = (m: Measurement) => growing && m.segment !== null && carriesTraffic(state, window, m.segment.dimension, m.segment.value, candidate);
  for (const m of ctx.measurements) {
    const hold = measurementHold(m, perSecond(m.stageSamples ?? 0), timeFor, carries(m));
    if (hold) out.push(hold);
  }
  if (state.spec.trafficMix.holdOnMismatch && ctx.mismatched.length > 0) {
    out.push({ ...base, key: "trafficMix", text: `traffic mix: ${ctx.mismatched.map((m) => m.reason).join("; ")}`, seconds: null });
  }
  return out;
}

/** A segment value "has traffic" when it carries at least segmentTrafficShare of the stage's requests. */
export function carriesTraffic(state: EngineState, window: CountsSnapshot | null, dimension: string, value: string, candidate: "canary" | "shadow"): boolean {
  if (!window) return false;
  let total = 0;
  for (const variant of ["stable", candidate] as const) total += requestsOf(window.slices[OVERALL]?.[variant]);
  const slice = window.slices[sliceKey({ dimension, value })];
  const here = requestsOf(slice?.stable) + requestsOf(slice?.[candidate]);
  return total > 0 && here / total >= state.spec.segmentTrafficShare;
}

function measurementHold(m: Measurement, rate: number, timeFor: (more: number, rate: number) => number | null, carries: boolean): Hold | null {
  const requirement = m.requirement ?? (m.segment === null ? "pass" : "none");
  if (m.status === MeasurementStatus.Passed) return null;
  // A slice that can only fail still holds the exposure where it is when its estimate is past the limit:
  // values posted from outside (reviews) before their proof stage, and a segment value carrying
  // segmentTrafficShare once it has SEGMENT_ESTIMATE_SAMPLES (an estimate from a handful of requests, one
  // error in three, says nothing).
  const settled = m.sampleSizes.candidate >= SEGMENT_ESTIMATE_SAMPLES;
  const held = requirement !== "none" || (m.beyondLimit && (m.segment === null || (carries && settled)));
  if (!held) return null;
  const where = m.segment === null ? "" : ` ${segmentLabel(m.segment)}`;
  const samples = m.sampleSizes.candidate;
  const keyOf = (what: string) => `gate:${m.gate}:${segmentLabel(m.segment)}:${requirement}:${what}`;
  const base = { key: keyOf(m.status), gate: m.gate, segment: m.segment, samples: null, needed: null, seconds: null };
  if (m.status === MeasurementStatus.Error) return { ...base, text: `${m.gate}${where} ${m.status}: ${m.reason}` };
  const limit = m.threshold ? describeLimit(m.threshold.kind, m.threshold.value, m.unit, m.threshold.tolerance) : "its limit";
  if (m.beyondLimit && m.threshold) {
    // The estimate is past the declared limit: no stage bound lets it through. It decides when the interval
    // shows the violation (expected after `needed.pass` samples at the estimate) or the estimate moves back.
    const declared = describeLimit(m.beyondLimit.kind, m.beyondLimit.value, m.unit, m.threshold.tolerance);
    const measured = describeEstimate(m.beyondLimit.kind, m.candidateValue, m.stableValue, m.unit);
    const ruled = m.bound?.reached ? `no ${describeBoundHarm(m.bound.kind, m.bound.value, m.unit, m.bound.tolerance)}; ` : "";
    const needed = m.needed?.pass ?? null;
    const seconds = needed === null ? null : timeFor(needed - samples, rate);
    const verdict = needed === null ? "" : ` [about ${needed} samples to a verdict, has ${samples}${eta(seconds)}]`;
    return {
      ...base,
      key: keyOf("beyondLimit"),
      text: `${m.gate}${where}: ${ruled}${measured} measured, limit ${declared}: holding until the interval shows it past the limit (rollback) or the estimate comes back within it (${m.reason})${verdict}`,
      samples,
      needed,
      seconds,
    };
  }
  if (requirement === "none") return null;
  if (requirement === "detect") {
    if (!m.bound || m.bound.reached) return null;
    const needed = m.needed?.detect ?? null;
    const harm = describeBoundHarm(m.bound.kind, m.bound.value, m.unit, m.bound.tolerance);
    const measured = describeEstimate(m.bound.kind, m.candidateValue, m.stableValue, m.unit);
    const count = needed === null ? "not enough data yet to size" : `${samples} of about ${needed} ${m.candidate} samples`;
    const seconds = needed === null ? null : timeFor(needed - samples, rate);
    return {
      ...base,
      key: keyOf("bound"),
      text: `${m.gate}${where}: ${harm} not yet ruled out before the next stage (${measured} measured, limit ${limit}; ${count}${eta(seconds)})`,
      samples,
      needed,
      seconds,
    };
  }
  // Must pass: the time to a verdict at the expected value (a failure when the candidate is expected past its limit).
  const needed = m.needed?.pass ?? null;
  const seconds = needed === null ? null : timeFor(needed - samples, rate);
  const need = needed === null ? "" : ` [about ${needed} samples to a verdict, has ${samples}${eta(seconds)}]`;
  return { ...base, text: `${m.gate}${where} ${m.status}: ${m.reason}${need}`, samples, needed, seconds };
}

function eta(seconds: number | null): string {
  return seconds === null ? "" : `, ~${seconds} s at the current traffic`;
}

export function stageEta(holds: readonly Hold[], state: EngineState, now: number): StageEta {
  let seconds: number | null = 0;
  let limitedBy: string | null = null;
  let slowest = -1;
  for (const h of holds) {
    if (h.seconds === null) {
      if (seconds !== null) limitedBy = h.text;
      seconds = null;
      continue;
    }
    if (seconds !== null && h.seconds > slowest) {
      slowest = h.seconds;
      seconds = h.seconds;
      limitedBy = h.text;
    }
  }
  const warnings: string[] = [];
  const stage = currentStage(state);
  if (stage && seconds !== null && state.stageStartedAt !== null) {
    const elapsed = (now - state.stageStartedAt - state.pausedMsInStage) / 1000;
    const left = stage.deadlineSeconds - elapsed;
    if (seconds > left) {
      warnings.push(
        `stage ${stage.name} is not expected to conclude before its deadline at the observed traffic: about ${seconds} s more needed (${limitedBy}), ` +
          `the deadline is in ${Math.max(0, Math.round(left))} s (onDeadline: ${stage.onDeadline})`,
      );
    }
  }
  return { secondsToDecision: holds.length === 0 ? 0 : seconds, limitedBy, holds: [...holds], warnings };
}
