/**
 * One simulated rollout per call: the setup (stages 5, 25, 50, 100 at the engine's default settings,
 * the seed's traffic gates and an output schema gate, a 5 s engine tick), a traffic level, a segment mix, a
 * defect of the new model, and a traffic pattern. Works with either engine (engines.ts).
 */
import type { MetricReading } from "../../controller/src/metrics/provider.ts";
import { GOOD, PoissonTrafficSim, type Behavior, type SimConfig } from "../../test/engine/sim.ts";
import { HEAVY_TAILED } from "../../test/engine/false-alarm-runs.ts";
import { trafficPattern, type TrafficPattern } from "../../test/engine/traffic-patterns.ts";
import type { Engine } from "./engines.ts";

export const TICK_SECONDS = 5;
export const STAGES = [5, 25, 50, 100];
/** The seed's gate block without human_review_score (nobody posts review scores in a simulation). */
export const GATES = {
  latency_p95_ms: { maximum_regression_percent: 10 },
  error_rate: { maximum: 0.01 },
  schema_validation_pass_rate: { minimum: 0.995 },
  gpu_oom_events: { maximum: 0, query: 'sum(increase(gpu_oom_total{model="m"}[5m]))' },
};

export const MIXES: Record<string, Record<string, number> | null> = {
  "60/30/10": { free: 0.6, pro: 0.3, enterprise: 0.1 },
  "80/15/5": { free: 0.8, pro: 0.15, enterprise: 0.05 },
  none: null,
};

export type Defect = "good" | "errors5" | "p95+25%" | "p95+15%" | "segment40" | "segmentSlow" | "schema2";
export const DEFECTS: readonly Defect[] = ["good", "errors5", "p95+25%", "p95+15%", "segment40", "segmentSlow", "schema2"];
export const DEFECT_LABELS: Record<Defect, string> = {
  good: "good canary: time to Succeeded",
  errors5: "5% errors: time to rollback",
  "p95+25%": "every answer 25% slower (issue 19): time to rollback",
  "p95+15%": "every answer 15% slower: time to rollback",
  segment40: "40% errors in the smallest segment value: time to rollback",
  segmentSlow: "every answer 25% slower in the middle segment value only: time to rollback",
  schema2: "2% of answers fail the schema: time to rollback",
};

export interface Scenario {
  rps: number;
  mix: string;
  defect: Defect;
  pattern: TrafficPattern;
  seed: number;
  /** Every variant with heavy-tailed latency (the false-alarm runs). */
  heavyTail?: boolean;
}

export interface Outcome {
  phase: string;
  /** From the first stage's start to the rollout's end (null: still running at maxSeconds). */
  seconds: number | null;
  stage: string | null;
  reason: string;
  /** Exposure: the largest canary share the rollout reached (percent), and the requests the canary served. */
  maxShare: number;
  canaryRequests: number;
}

function behaviorOf(defect: Defect, smallest: string | null, middle: string | null, heavyTail: boolean): SimConfig["behavior"] {
  const base = heavyTail ? HEAVY_TAILED : GOOD;
  return (variant, value) => {
    if (variant === "stable") return base;
    const worse = (change: Partial<Behavior>): Behavior => ({ ...base, ...change });
    switch (defect) {
      case "good":
        return base;
      case "errors5":
        return worse({ errorRate: 0.05 });
      case "p95+25%":
        return worse({ latencyMedianMs: GOOD.latencyMedianMs * 1.25 });
      case "p95+15%":
        return worse({ latencyMedianMs: GOOD.latencyMedianMs * 1.15 });
      case "segment40":
        return value !== null && value === smallest ? worse({ errorRate: 0.4 }) : base;
      case "segmentSlow":
        return value !== null && value === middle ? worse({ latencyMedianMs: GOOD.latencyMedianMs * 1.25 }) : base;
      case "schema2":
        return worse({ schemaPassRate: GOOD.schemaPassRate - 0.02 });
    }
  };
}

const OOM_ZERO: Record<string, MetricReading<number | null>> = { gpu_oom_events: { status: "measured", value: 0, sources: [] } };

export function specInput(): Record<string, unknown> {
  return { owner: "team", rollbackCondition: "a gate fails on any slice", stages: STAGES, promotion_gates: GATES };
}

export function runRollout(engine: Engine, scenario: Scenario, maxSeconds: number): Outcome {
  const shares = MIXES[scenario.mix];
  const values = shares ? Object.keys(shares) : [];
  const smallest = shares ? values.reduce((a, b) => (shares[a] <= shares[b] ? a : b)) : null;
  const middle = shares ? ([...values].sort((a, b) => shares[b] - shares[a])[1] ?? null) : null;
  const parsed = engine.parseEngineSpec(specInput(), { hasOutputSchema: true, hasShadow: false });
  if (!parsed.ok) throw new Error(`bench spec invalid: ${JSON.stringify(parsed.errors)}`);
  const sim = new PoissonTrafficSim({
    seed: scenario.seed,
    segment: shares ? { dimension: "tenant_tier", shares } : undefined,
    behavior: behaviorOf(scenario.defect, smallest, middle, scenario.heavyTail ?? false),
  });
  const traffic = trafficPattern(scenario.pattern, scenario.rps * TICK_SECONDS, TICK_SECONDS, scenario.seed);
  let now = Date.UTC(2026, 0, 1);
  let state = engine.initialState({ rollout: "m", spec: parsed.spec, segments: shares ? [{ dimension: "tenant_tier", values }] : [], now });
  let started: number | null = null;
  let last = { reason: "", stage: null as string | null };
  let maxShare = 0;
  for (let tick = 0; now - (started ?? now) <= maxSeconds * 1000; tick++) {
    if (tick > 0) {
      const t = traffic(tick);
      sim.run(t.requests, state.weights, t.errorFactor);
      // The share the canary served this tick at: the weights in force while the tick's requests arrived.
      maxShare = Math.max(maxShare, state.weights.canaryPercent);
    }
    now += tick > 0 ? TICK_SECONDS * 1000 : 0;
    const counts = sim.reading();
    const result = engine.step(state, { now, counts, promql: OOM_ZERO });
    state = result.state;
    for (const d of result.decisions) {
      if (d.kind === "started") started = d.at;
      last = { reason: d.reason, stage: d.stage?.name ?? null };
    }
    const exposure = { maxShare, canaryRequests: counts.status === "measured" ? counts.value.canary.requests : 0 };
    if (["Succeeded", "RolledBack", "Failed"].includes(state.phase)) {
      return { phase: state.phase, seconds: (now - (started ?? now)) / 1000, stage: last.stage, reason: last.reason, ...exposure };
    }
    if (tick > 0 && now - (started ?? now) > maxSeconds * 1000)
      return { phase: state.phase, seconds: null, stage: last.stage, reason: last.reason, ...exposure };
  }
  return { phase: state.phase, seconds: null, stage: last.stage, reason: last.reason, maxShare, canaryRequests: 0 };
}
