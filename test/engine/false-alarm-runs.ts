/**
 * The false-alarm experiment: rollouts of a new model identical to stable (same error rate, latency
 * distribution in the same Envoy buckets, schema pass rate, review scores), the engine looking every tick,
 * counting how often it wrongly rolls back. Two setups:
 *   seed      the seed's gate block; complete rollouts, each stage advancing when its gates pass.
 *   boundary  the same model against limits it sits right at (relative limits of almost zero): it never
 *             passes, so an operator promotes it every 10 ticks; the worst case for repeated looks, where
 *             an interval that is not valid at every look would roll back often.
 * Imported by false-alarm.test.ts, and run as a script
 * (node --import tsx test/engine/false-alarm-runs.ts '{"setup":"seed","first":0,"count":500}') so the test
 * can spread the runs over the machine's cores; prints its tally as JSON.
 */
import { smallestAlpha } from "../../controller/src/engine/budget.ts";
import { isTerminal, Phase } from "../../controller/src/engine/phase.ts";
import { budgetOf } from "../../controller/src/engine/state.ts";
import { drive, SEED_GATES, specFrom, start } from "./drive.ts";
import { GOOD, PoissonTrafficSim } from "./sim.ts";

export const FALSE_ALARM_SETUP = {
  stages: [{ shadow: true, shadowPercent: 50 }, 10, 50, 100],
  stageDefaults: { minDurationSeconds: 30, minRequests: 300, deadlineSeconds: 86400 },
  segment: { dimension: "tenant_tier", shares: { free: 0.5, pro: 0.3, enterprise: 0.2 } },
  requestsPerTick: 3000,
  tickSeconds: 10,
  reviewsPerTick: 100,
  maxTicks: 300,
};

export interface FalseAlarmTally {
  runs: number;
  looks: number;
  rolledBack: number;
  failed: number;
  succeeded: number;
  unfinished: number;
  /** gate -> wrongly Failed measurements that caused a rollback */
  rollbackGates: Record<string, number>;
  reasons: string[];
  alphaPerTest: number;
}

export type FalseAlarmSetup = "seed" | "boundary";

/** Limits an identical model sits right at: any real increase fails, none can be shown absent. */
export const BOUNDARY_GATES = {
  latency_p95_ms: { maximum_regression_percent: 1 },
  error_rate: { maximum_increase: 0.0005 },
  schema_validation_pass_rate: { maximum_decrease: 0.0005 },
  human_review_score: { minimum_delta: -0.002 },
  gpu_oom_events: SEED_GATES.gpu_oom_events,
};
export const BOUNDARY_PROMOTE_EVERY = 10;

export function runFalseAlarm(first: number, count: number, setup: FalseAlarmSetup = "seed"): FalseAlarmTally {
  const boundary = setup === "boundary";
  const spec = specFrom({
    promotion_gates: boundary ? BOUNDARY_GATES : SEED_GATES,
    stages: FALSE_ALARM_SETUP.stages,
    stageDefaults: FALSE_ALARM_SETUP.stageDefaults,
  });
  const promotions = boundary
    ? Object.fromEntries([1, 2, 3].map((k) => [k * BOUNDARY_PROMOTE_EVERY, [{ type: "promote" as const, actor: "operator" }]]))
    : {};
  const segments = [{ dimension: FALSE_ALARM_SETUP.segment.dimension, values: Object.keys(FALSE_ALARM_SETUP.segment.shares) }];
  const tally: FalseAlarmTally = { runs: 0, looks: 0, rolledBack: 0, failed: 0, succeeded: 0, unfinished: 0, rollbackGates: {}, reasons: [], alphaPerTest: 0 };
  for (let run = first; run < first + count; run++) {
    const sim = new PoissonTrafficSim({ seed: 0x5eed0000 + run, segment: FALSE_ALARM_SETUP.segment, behavior: () => GOOD });
    const initial = start(spec, segments);
    tally.alphaPerTest = smallestAlpha(budgetOf(initial));
    const result = drive(initial, {
      sim,
      requestsPerTick: FALSE_ALARM_SETUP.requestsPerTick,
      tickSeconds: FALSE_ALARM_SETUP.tickSeconds,
      maxTicks: boundary ? 4 * BOUNDARY_PROMOTE_EVERY : FALSE_ALARM_SETUP.maxTicks,
      commands: promotions,
      reviews: { perTick: FALSE_ALARM_SETUP.reviewsPerTick, stableMean: 0.8, canaryMean: 0.8, seed: run },
    });
    tally.runs++;
    tally.looks += result.ticks;
    const phase = result.state.phase;
    if (phase === Phase.RolledBack) {
      tally.rolledBack++;
      const last = result.decisions.at(-1)!;
      tally.reasons.push(last.reason);
      for (const m of last.measurements) if (m.status === "Failed") tally.rollbackGates[m.gate] = (tally.rollbackGates[m.gate] ?? 0) + 1;
    } else if (phase === Phase.Failed) tally.failed++;
    else if (phase === Phase.Succeeded) tally.succeeded++;
    else if (!isTerminal(phase)) tally.unfinished++;
  }
  return tally;
}

export function mergeTallies(tallies: FalseAlarmTally[]): FalseAlarmTally {
  const out: FalseAlarmTally = { runs: 0, looks: 0, rolledBack: 0, failed: 0, succeeded: 0, unfinished: 0, rollbackGates: {}, reasons: [], alphaPerTest: 0 };
  for (const t of tallies) {
    for (const key of ["runs", "looks", "rolledBack", "failed", "succeeded", "unfinished"] as const) out[key] += t[key];
    for (const [gate, n] of Object.entries(t.rollbackGates)) out.rollbackGates[gate] = (out.rollbackGates[gate] ?? 0) + n;
    out.reasons.push(...t.reasons);
    out.alphaPerTest = t.alphaPerTest;
  }
  return out;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const { setup, first, count } = JSON.parse(process.argv[2] ?? '{"first":0,"count":100}') as { setup?: FalseAlarmSetup; first: number; count: number };
  process.stdout.write(JSON.stringify(runFalseAlarm(first, count, setup)));
}
