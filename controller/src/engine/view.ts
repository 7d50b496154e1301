/**
 * The engine's live state as the API shows it (GET /v1/rollouts/{name}): the latest evaluation, refreshed
 * every tick (each gate and slice with its value, interval, samples against what it needs, status), what
 * holds the stage and when it is expected to decide, and the forecast of the stages left, with warnings for
 * stages that cannot conclude before their deadline. Pure: built from the state and the last evaluation.
 */
import { forecastFromExpectedTraffic, type Forecast } from "./forecast.ts";
import { segmentLabel, type Measurement, type RecordedInterval } from "./measurement.ts";
import { isTerminal } from "./phase.ts";
import type { PropagationView } from "./propagation-view.ts";
import type { Requirement } from "./requirements.ts";
import type { SampleRatioResult } from "./sample-ratio.ts";
import type { EngineState } from "./state.ts";
import type { Evaluation } from "./step.ts";

interface GateView {
  gate: string;
  slice: string;
  status: string;
  requirement: Requirement | null;
  /** "rollout": evidence since the rollout began; "stage": this stage's window. */
  scope: "rollout" | "stage" | null;
  unit: string;
  value: number | null;
  stableValue: number | null;
  interval: RecordedInterval | null;
  comparison: RecordedInterval | null;
  confidence: number | null;
  samples: number;
  stableSamples: number;
  /** Candidate samples needed to reach a verdict (pass) and to be within the stage bound at the expected value (detect). */
  needed: { pass: number | null; detect: number | null } | null;
  /** The stage bound (display units; a ratio for a maxRatio limit): the harm ruled out before the next stage. */
  harm: number | null;
  /** The limit that decides (or the first not yet shown), as the measurement states it. */
  threshold: Measurement["threshold"];
  reason: string;
}

interface HoldView {
  text: string;
  gate: string | null;
  slice: string | null;
  samples: number | null;
  needed: number | null;
  seconds: number | null;
}

interface LiveEvaluation {
  at: string;
  stage: { index: number; name: string } | null;
  windowStartedAt: string | null;
  traffic: { requestsPerSecond: number; candidatePerSecond: number } | null;
  /** In a canary stage, the canary's real share of the path's requests over the window (set vs observed weight). */
  observedCanaryPercent: number | null;
  /** Seconds until the stage is expected to decide at the current traffic (null: cannot tell). */
  secondsToDecision: number | null;
  limitedBy: string | null;
  holds: HoldView[];
  warnings: string[];
  gates: GateView[];
  /** Whether the proxies run the stage's weights (the window waits for them); null without a version source. */
  propagation: PropagationView | null;
  /** The observed split against the set weight; also a "sample_ratio" row in `gates`. */
  sampleRatio: SampleRatioResult | null;
}

export function liveEvaluation(evaluation: Evaluation | null): LiveEvaluation | null {
  if (!evaluation) return null;
  const eta = evaluation.eta ?? null;
  return {
    at: new Date(evaluation.at).toISOString(),
    stage: evaluation.stage,
    windowStartedAt: evaluation.windowStartedAt === null ? null : new Date(evaluation.windowStartedAt).toISOString(),
    traffic: evaluation.traffic ?? null,
    observedCanaryPercent: observedCanaryPercent(evaluation),
    secondsToDecision: eta ? eta.secondsToDecision : null,
    limitedBy: eta?.limitedBy ?? evaluation.blocking[0] ?? null,
    holds: eta
      ? eta.holds.map((h) => ({
          text: h.text,
          gate: h.gate,
          slice: h.gate === null ? null : segmentLabel(h.segment),
          samples: h.samples,
          needed: h.needed,
          seconds: h.seconds,
        }))
      : evaluation.blocking.map((text) => ({ text, gate: null, slice: null, samples: null, needed: null, seconds: null })),
    warnings: eta?.warnings ?? [],
    gates: [...evaluation.measurements.map(gateView), ...sampleRatioRow(evaluation.sampleRatio ?? null)],
    propagation: evaluation.propagation ?? null,
    sampleRatio: evaluation.sampleRatio ?? null,
  };
}

function observedCanaryPercent(evaluation: Evaluation): number | null {
  const traffic = evaluation.traffic;
  const canary = evaluation.measurements.some((m) => m.candidate === "canary");
  if (!traffic || !canary || !(traffic.requestsPerSecond > 0)) return null;
  return Math.round((10_000 * traffic.candidatePerSecond) / traffic.requestsPerSecond) / 100;
}

function gateView(m: Measurement): GateView {
  return {
    gate: m.gate,
    slice: segmentLabel(m.segment),
    status: m.status,
    requirement: m.requirement ?? null,
    scope: m.scope ?? null,
    unit: m.unit,
    value: finiteOrNull(m.candidateValue),
    stableValue: finiteOrNull(m.stableValue),
    interval: m.intervals.candidate ?? null,
    comparison: m.intervals.comparison ?? null,
    confidence: m.confidence,
    samples: m.sampleSizes.candidate,
    stableSamples: m.sampleSizes.stable,
    needed: m.needed ?? null,
    harm: finiteOrNull(m.harm),
    threshold: m.threshold,
    reason: m.reason,
  };
}

/** The sample-ratio check as a gate-like row, so every client shows it with the gates: a mismatch reads Error (cannot compare). */
function sampleRatioRow(r: SampleRatioResult | null): GateView[] {
  if (!r) return [];
  const status = r.status === "passed" ? "Passed" : r.status === "mismatch" ? "Error" : "Inconclusive";
  return [
    {
      gate: "sample_ratio",
      slice: "overall",
      status,
      requirement: "pass",
      scope: "stage",
      unit: "%",
      value: r.observedCanaryPercent,
      stableValue: null,
      interval: null,
      comparison: null,
      confidence: null,
      samples: r.observed.canary,
      stableSamples: r.observed.stable,
      needed: r.status === "notEnoughData" ? { pass: r.policy.minRequests, detect: null } : null,
      harm: null,
      threshold: null,
      reason: r.text,
    },
  ];
}

/** The stages left: from the latest evaluation once traffic flows, before that from the spec's expectedTraffic. */
export function rolloutForecast(state: EngineState, evaluation: Evaluation | null): Forecast | null {
  if (isTerminal(state.phase)) return null;
  if (evaluation?.forecast) return evaluation.forecast;
  if (state.stageIndex < 0 || !evaluation) return forecastFromExpectedTraffic(state);
  return null;
}

function finiteOrNull(x: number | null | undefined): number | null {
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}
