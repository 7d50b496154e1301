/**
 * The false-alarm experiment: rollouts of a new model identical to stable (same error rate, latency
 * distribution in the same Envoy buckets, schema pass rate, review scores), the engine looking every tick,
 * counting how often it wrongly rolls back. Runs cycle through steady, bursty and diurnal traffic
 * (traffic-patterns.ts), and every other run has heavy-tailed latency (3% of requests from a lognormal five
 * times slower and wider). Three setups:
 *   seed      the seed's gate block; complete rollouts, each stage advancing when its gates pass.
 *   issue     issue 10's service: about 100 requests/s, stages 5, 25, 50, 100 at the default settings, a
 *             tenant_tier of 60/30/10%, the seed's traffic gates and an output schema.
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
import { GOOD, PoissonTrafficSim, type Behavior } from "./sim.ts";
import { TRAFFIC_PATTERNS, trafficPattern } from "./traffic-patterns.ts";

export const FALSE_ALARM_SETUP = {
  stages: [{ shadow: true, shadowPercent: 50 }, 10, 50, 100],
  stageDefaults: { minDurationSeconds: 30, minRequests: 300, deadlineSeconds: 86400 },
  segment: { dimension: "tenant_tier", shares: { free: 0.5, pro: 0.3, enterprise: 0.2 } },
  requestsPerTick: 3000,
  tickSeconds: 10,
  reviewsPerTick: 100,
  maxTicks: 300,
};

/** Issue 10's setup: the defaults, a small service. */
export const ISSUE_SETUP = {
  stages: [5, 25, 50, 100],
  segment: { dimension: "tenant_tier", shares: { free: 0.6, pro: 0.3, enterprise: 0.1 } },
  gates: {
    latency_p95_ms: SEED_GATES.latency_p95_ms,
    error_rate: SEED_GATES.error_rate,
    schema_validation_pass_rate: SEED_GATES.schema_validation_pass_rate,
    gpu_oom_events: SEED_GATES.gpu_oom_events,
  },
  requestsPerSecond: 100,
  tickSeconds: 5,
  maxTicks: 1440,
};

/** Heavy-tailed latency: 3% of requests from a lognormal five times slower and much wider. */
export const HEAVY_TAILED: Behavior = { ...GOOD, latencyTail: { share: 0.03, medianMs: 5 * GOOD.latencyMedianMs, sigma: 0.8 } };

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
  /** Runs and rollbacks per traffic pattern and latency shape ("bursty/heavy"...). */
  byCondition: Record<string, { runs: number; rolledBack: number }>;
  /** Simulated seconds per rollout, summed (for the mean duration). */
  seconds: number;
}

export type FalseAlarmSetup = "seed" | "boundary" | "issue";

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
  const issue = setup === "issue";
  const spec = issue
    ? specFrom({ promotion_gates: ISSUE_SETUP.gates, stages: ISSUE_SETUP.stages }, { hasShadow: false })
    : specFrom({
        promotion_gates: boundary ? BOUNDARY_GATES : SEED_GATES,
        stages: FALSE_ALARM_SETUP.stages,
        stageDefaults: FALSE_ALARM_SETUP.stageDefaults,
      });
  const promotions = boundary ? Object.fromEntries([1, 2, 3].map((k) => [k * BOUNDARY_PROMOTE_EVERY, [{ type: "promote" as const, actor: "operator" }]])) : {};
  const segment = issue ? ISSUE_SETUP.segment : FALSE_ALARM_SETUP.segment;
  const segments = [{ dimension: segment.dimension, values: Object.keys(segment.shares) }];
  const tickSeconds = issue ? ISSUE_SETUP.tickSeconds : FALSE_ALARM_SETUP.tickSeconds;
  const perTick = issue ? ISSUE_SETUP.requestsPerSecond * ISSUE_SETUP.tickSeconds : FALSE_ALARM_SETUP.requestsPerTick;
  const tally = emptyTally();
  for (let run = first; run < first + count; run++) {
    const pattern = TRAFFIC_PATTERNS[run % TRAFFIC_PATTERNS.length];
    const heavy = run % 2 === 1;
    const model = heavy ? HEAVY_TAILED : GOOD;
    const sim = new PoissonTrafficSim({ seed: 0x5eed0000 + run, segment, behavior: () => model });
    const initial = start(spec, segments);
    tally.alphaPerTest = smallestAlpha(budgetOf(initial));
    const result = drive(initial, {
      sim,
      requestsPerTick: perTick,
      traffic: trafficPattern(pattern, perTick, tickSeconds, run),
      tickSeconds,
      maxTicks: boundary ? 4 * BOUNDARY_PROMOTE_EVERY : issue ? ISSUE_SETUP.maxTicks : FALSE_ALARM_SETUP.maxTicks,
      commands: promotions,
      reviews: issue ? undefined : { perTick: FALSE_ALARM_SETUP.reviewsPerTick, stableMean: 0.8, canaryMean: 0.8, seed: run },
    });
    tally.runs++;
    tally.looks += result.ticks;
    tally.seconds += result.ticks * tickSeconds;
    const condition = `${pattern}/${heavy ? "heavy-tailed" : "lognormal"}`;
    const c = (tally.byCondition[condition] ??= { runs: 0, rolledBack: 0 });
    c.runs++;
    const phase = result.state.phase;
    if (phase === Phase.RolledBack) {
      tally.rolledBack++;
      c.rolledBack++;
      const last = result.decisions.at(-1)!;
      tally.reasons.push(`${condition}: ${last.reason}`);
      for (const m of last.measurements) if (m.status === "Failed") tally.rollbackGates[m.gate] = (tally.rollbackGates[m.gate] ?? 0) + 1;
    } else if (phase === Phase.Failed) {
      tally.failed++;
      tally.reasons.push(`${condition}: failed: ${result.decisions.at(-1)!.reason}`);
    } else if (phase === Phase.Succeeded) tally.succeeded++;
    else if (!isTerminal(phase)) tally.unfinished++;
  }
  return tally;
}

function emptyTally(): FalseAlarmTally {
  return {
    runs: 0,
    looks: 0,
    rolledBack: 0,
    failed: 0,
    succeeded: 0,
    unfinished: 0,
    rollbackGates: {},
    reasons: [],
    alphaPerTest: 0,
    byCondition: {},
    seconds: 0,
  };
}

export function mergeTallies(tallies: FalseAlarmTally[]): FalseAlarmTally {
  const out = emptyTally();
  for (const t of tallies) {
    for (const key of ["runs", "looks", "rolledBack", "failed", "succeeded", "unfinished", "seconds"] as const) out[key] += t[key];
    for (const [k, v] of Object.entries(t.byCondition)) {
      const c = (out.byCondition[k] ??= { runs: 0, rolledBack: 0 });
      c.runs += v.runs;
      c.rolledBack += v.rolledBack;
    }
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
