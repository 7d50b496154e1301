// Engine scenarios, one per row: simulated traffic, an injected clock (10 s ticks), fake metric readings.
import { describe, expect, it } from "vitest";
import { emptyRolloutCounts, type MetricReading, type RolloutCounts } from "../../controller/src/metrics/provider.ts";
import { MeasurementStatus } from "../../controller/src/engine/measurement.ts";
import { Phase } from "../../controller/src/engine/phase.ts";
import { step } from "../../controller/src/engine/step.ts";
import type { DecisionKind } from "../../controller/src/engine/state.ts";
import { drive, SEED_GATES, specFrom, start, T0, type DriveOptions, type DriveResult } from "./drive.ts";
import { GOOD, PoissonTrafficSim, TrafficSim, type Behavior, type SimConfig } from "./sim.ts";

const TIERS = [{ dimension: "tenant_tier", values: ["free", "pro", "enterprise"] }];
const SHARES = { free: 0.5, pro: 0.3, enterprise: 0.2 };
const TIMING = { minDurationSeconds: 60, minRequests: 300, deadlineSeconds: 3600 };
const OOM_ZERO = { gpu_oom_events: { status: "measured", value: 0, sources: [] } as MetricReading<number | null> };

/** The new model misbehaving in one way, only where `where` says (default: as canary, everywhere). */
function newModel(change: Partial<Behavior>, where: { variants?: Array<"canary" | "shadow">; segment?: string } = {}): SimConfig["behavior"] {
  const variants = where.variants ?? ["canary"];
  return (variant, value) =>
    variant !== "stable" && variants.includes(variant) && (where.segment === undefined || where.segment === value) ? { ...GOOD, ...change } : GOOD;
}

interface Scenario {
  name: string;
  spec?: Record<string, unknown>;
  behavior?: SimConfig["behavior"];
  canaryShares?: Record<string, number>;
  /** Per-request simulation with every bucket bound listed, like Envoy (slower); default Poisson per tick. */
  perRequest?: boolean;
  drive?: Partial<DriveOptions>;
  expectPhase: Phase;
  expectKinds?: DecisionKind[];
  expectEndStage?: string;
  expectReason?: RegExp;
  check?: (r: DriveResult) => void;
}

const scenarios: Scenario[] = [
  {
    name: "a good canary goes shadow -> 1 -> 5 -> 25 -> 50 -> 100% and succeeds",
    perRequest: true,
    expectPhase: Phase.Succeeded,
    expectKinds: ["started", "advanced", "advanced", "advanced", "advanced", "advanced", "succeeded"],
    check: (r) => {
      expect(r.actions.map((a) => (a.type === "setWeights" ? `${a.canaryPercent}/${a.shadowPercent}` : a.type))).toEqual([
        "0/10",
        "1/0",
        "5/0",
        "25/0",
        "50/0",
        "100/0",
        "finalize",
      ]);
      // Each advance is on record with its measurements and the stage's telemetry. On all traffic every gate
      // Passed, or (before the stage where it must pass) had its estimate within the limit and its interval
      // within the stage bound (stage-bound.ts), which tightens as the next stage's share grows.
      const advanced = r.decisions.filter((d) => d.kind === "advanced");
      for (const d of advanced) {
        for (const m of d.measurements.filter((x) => x.segment === null)) {
          if (m.status === MeasurementStatus.Passed) continue;
          // Review scores do not come from traffic: they only have to pass at the last stage below 100%.
          if (m.gate === "human_review_score") {
            expect(m.requirement).toBe("none");
            continue;
          }
          expect(m.requirement, `${d.stage?.name} ${m.gate}`).toBe("detect");
          expect(m.beyondLimit ?? null, `${d.stage?.name} ${m.gate}`).toBeNull();
          expect(m.bound?.reached, `${d.stage?.name} ${m.gate}`).toBe(true);
          expect(m.bound!.multiple).toBeGreaterThan(1);
        }
        expect(d.window?.slices[0].candidate.requests).toBeGreaterThanOrEqual(300);
      }
      // The stage before 100% is where every gate must pass: the 50% advance shows them all Passed.
      const proof = advanced.find((d) => d.stage?.name === "50%")!;
      expect(proof.measurements.filter((m) => m.segment === null).every((m) => m.status === MeasurementStatus.Passed)).toBe(true);
      expect(proof.reason).toMatch(
        /^stage 50% passed: gates passed: latency_p95_ms, error_rate, schema_validation_pass_rate, human_review_score, gpu_oom_events; after \d+ s; on to 100%$/,
      );
    },
  },
  {
    name: "5% errors at the first canary stage roll back at once",
    behavior: newModel({ errorRate: 0.05 }),
    expectPhase: Phase.RolledBack,
    expectEndStage: "1%",
    expectReason: /^canary worse overall: error rate \d(\.\d\d?)?% vs 0\.[23]\d{0,2}% \(maximum 1%; 99\.\d+% interval for the canary \[\d+\.\d\d?%, /,
    check: (r) => {
      const entered = r.decisions.find((d) => d.kind === "advanced" && d.to === Phase.Canary)!;
      const rolledBack = r.decisions.find((d) => d.kind === "rolledBack")!;
      const seconds = (rolledBack.at - entered.at) / 1000;
      const canaryRequests = rolledBack.window!.slices[0].candidate.requests;
      console.log(`time to rollback at 1% of 20000 requests per 10 s: ${seconds} s, after ${canaryRequests} canary requests`);
      expect(seconds).toBeLessThanOrEqual(60);
      expect(r.actions.at(-1)).toEqual({ type: "rollback", canaryPercent: 0, shadowPercent: 0, reason: rolledBack.reason });
    },
  },
  {
    name: "a defect in one segment only rolls back naming that segment",
    behavior: newModel({ errorRate: 0.08 }, { segment: "enterprise" }),
    expectPhase: Phase.RolledBack,
    expectReason: /^canary worse for tenant_tier=enterprise: error rate \d+(\.\d\d?)?% vs 0\.\d+%/,
  },
  {
    name: "a 30% p95 regression rolls back",
    behavior: newModel({ latencyMedianMs: GOOD.latencyMedianMs * 1.3 }),
    expectPhase: Phase.RolledBack,
    expectEndStage: "1%",
    expectReason:
      /^canary worse (overall|for tenant_tier=\w+): p95 latency \d+(\.\d+)? ms vs \d+(\.\d+)? ms \(at most 10% or 2 ms above stable; 99\.\d+% interval for canary\/stable \[1\.\d+/,
  },
  {
    name: "a 30% p95 regression of the shadow is caught before any real traffic",
    behavior: newModel({ latencyMedianMs: GOOD.latencyMedianMs * 1.3 }, { variants: ["canary", "shadow"] }),
    expectPhase: Phase.RolledBack,
    expectEndStage: "shadow",
    expectReason: /^shadow worse .*p95 latency/,
    check: (r) => expect(r.actions.map((a) => a.type)).toEqual(["setWeights", "rollback"]),
  },
  {
    name: "worse review scores roll back on the human_review_score gate",
    drive: { reviews: { perTick: 100, stableMean: 0.8, canaryMean: 0.7 } },
    expectPhase: Phase.RolledBack,
    expectEndStage: "1%",
    expectReason: /^canary worse overall: human review score 0\.[67]\d* vs 0\.8\d* \(at least -0\.02 vs stable/,
  },
  {
    // Review scores do not come from traffic: the relative limit still holds at 100%, when stable has no traffic.
    name: "worse review scores posted during the 100% bake roll back to the old stable",
    spec: { stages: [1, 100] },
    // Promoted by hand out of the 1% stage, which waits for review scores that only start at 100%.
    drive: { reviews: { perTick: 100, stableMean: 0.8, canaryMean: 0.7, fromCanaryPercent: 100 }, commands: { 3: [{ type: "promote", actor: "op" }] } },
    expectPhase: Phase.RolledBack,
    expectEndStage: "100%",
    expectReason: /^canary worse overall: human review score 0\.[67]\d* vs 0\.8\d* \(at least -0\.02 vs stable/,
  },
  {
    name: "unreadable stats hold the stage (Error), then fail it at the deadline",
    spec: { stages: [1, 100], stageDefaults: { ...TIMING, deadlineSeconds: 600 } },
    drive: { reading: (tick) => (tick >= 2 ? { status: "unmeasurable", error: "connect ECONNREFUSED 127.0.0.1:9901", sources: [] } : null) },
    expectPhase: Phase.Failed,
    expectEndStage: "1%",
    expectReason:
      /^stage 1% passed its deadline \(600 s\) still waiting on: .*error_rate Error: error rate: could not read the data-path counts: connect ECONNREFUSED/,
    check: (r) => {
      const failed = r.decisions.find((d) => d.kind === "failed")!;
      const started = r.decisions.find((d) => d.kind === "started")!;
      expect(failed.at - started.at).toBe(600_000);
      expect(r.decisions.some((d) => d.kind === "held" && /error_rate Error/.test(d.reason))).toBe(true);
      expect(r.actions.at(-1)).toMatchObject({ type: "rollback", canaryPercent: 0 });
    },
  },
  {
    name: "with onDeadline: hold, an Error stage waits for an operator instead",
    spec: { stages: [1, 100], stageDefaults: { ...TIMING, deadlineSeconds: 600, onDeadline: "hold" } },
    drive: { maxTicks: 120, reading: (tick) => (tick >= 2 ? { status: "unmeasurable", error: "timeout", sources: [] } : null) },
    expectPhase: Phase.Canary,
    check: (r) => {
      expect(r.decisions.filter((d) => d.kind === "deadlinePassed")).toHaveLength(1);
      expect(r.actions.map((a) => a.type)).toEqual(["setWeights"]);
    },
  },
  {
    name: "a partial reading (one Envoy down) is an Error, not a drop in traffic",
    spec: { stages: [1, 100], stageDefaults: { ...TIMING, deadlineSeconds: 300 } },
    drive: {
      reading: (tick, sim) => {
        const full = sim.reading() as Extract<MetricReading<RolloutCounts>, { status: "measured" }>;
        return tick >= 2
          ? {
              ...full,
              sources: [
                { url: "http://a:9901", ok: true },
                { url: "http://b:9901", ok: false, error: "timeout" },
              ],
            }
          : null;
      },
    },
    expectPhase: Phase.Failed,
    expectReason: /1 of 2 stat sources did not answer \(http:\/\/b:9901: timeout\)/,
  },
  {
    name: "GPU OOM events from Prometheus roll back",
    drive: { promql: (tick) => ({ gpu_oom_events: { status: "measured", value: tick >= 12 ? 3 : 0, sources: [] } }) },
    expectPhase: Phase.RolledBack,
    expectReason: /^(canary|shadow) worse overall: GPU OOM events 3 \(past maximum 0; PromQL sum\(increase\(gpu_oom_total/,
  },
  {
    name: "a PromQL query that matched nothing is Inconclusive and holds",
    spec: { stages: [1, 100], stageDefaults: { ...TIMING, deadlineSeconds: 300 } },
    drive: { promql: () => ({ gpu_oom_events: { status: "measured", value: null, sources: [] } }) },
    expectPhase: Phase.Failed,
    expectReason: /gpu_oom_events Inconclusive: GPU OOM events: the query matched no series/,
  },
  {
    name: "a canary whose traffic mix differs is warned about, and still advances by default",
    canaryShares: { free: 0.9, pro: 0.05, enterprise: 0.05 },
    spec: { stages: [5, 100] },
    expectPhase: Phase.Succeeded,
    check: (r) => {
      const warning = r.decisions.find((d) => d.kind === "trafficMixWarning")!;
      expect(warning.reason).toMatch(
        /tenant_tier: canary mix \(free 90%, pro 5%, enterprise 5%, other 0%\) differs from stable's \(free 50%, pro 30%, enterprise 20%, other 0%\); 40% of traffic would have to move/,
      );
    },
  },
  {
    name: "with holdOnMismatch a differing traffic mix holds the stage until its deadline",
    canaryShares: { free: 0.9, pro: 0.05, enterprise: 0.05 },
    spec: { stages: [5, 100], trafficMix: { holdOnMismatch: true }, stageDefaults: { ...TIMING, deadlineSeconds: 900 } },
    expectPhase: Phase.Failed,
    expectReason: /traffic mix: tenant_tier: canary mix .* differs/,
  },
  {
    name: "a high-impact rollout ends in AwaitingReview at 100%",
    spec: { impact: "high", stages: [5, 100] },
    drive: { maxTicks: 200 },
    expectPhase: Phase.AwaitingReview,
    check: (r) => {
      expect(r.decisions.at(-1)!.kind).toBe("awaitingReview");
      expect(r.state.weights).toEqual({ canaryPercent: 100, shadowPercent: 0 });
      expect(r.actions.some((a) => a.type === "finalize")).toBe(false);
    },
  },
  {
    name: "a data-path restart (counts going down) starts the stage's window again",
    spec: { stages: [5, 100] },
    drive: {
      reading: (() => {
        const restarted = new PoissonTrafficSim({ seed: 99, segment: { dimension: "tenant_tier", shares: SHARES }, behavior: () => GOOD });
        return (tick: number, sim: { reading(): MetricReading<RolloutCounts> }) => {
          if (tick < 4) return sim.reading();
          restarted.run(20000, { canaryPercent: 5, shadowPercent: 0 });
          return restarted.reading();
        };
      })(),
    },
    expectPhase: Phase.Succeeded,
    check: (r) => expect(r.decisions.filter((d) => d.kind === "baselineReset")).toHaveLength(1),
  },
];

describe("engine scenarios", () => {
  it.each(scenarios)("$name", (scenario) => {
    const spec = specFrom({ promotion_gates: SEED_GATES, stageDefaults: TIMING, ...scenario.spec });
    const config: SimConfig = {
      seed: 20260101,
      segment: { dimension: "tenant_tier", shares: SHARES, canaryShares: scenario.canaryShares },
      behavior: scenario.behavior ?? (() => GOOD),
      allBuckets: scenario.perRequest,
    };
    const sim = scenario.perRequest ? new TrafficSim(config) : new PoissonTrafficSim(config);
    const result = drive(start(spec, TIERS), {
      sim,
      requestsPerTick: 20000,
      tickSeconds: 10,
      maxTicks: 600,
      reviews: { perTick: 100, stableMean: 0.8, canaryMean: 0.8 },
      promql: () => OOM_ZERO,
      ...scenario.drive,
    });
    const last = result.decisions.at(-1)!;
    expect(result.state.phase, last.reason).toBe(scenario.expectPhase);
    if (scenario.expectKinds) expect(result.decisions.filter((d) => d.kind !== "held").map((d) => d.kind)).toEqual(scenario.expectKinds);
    if (scenario.expectEndStage) expect(last.stage?.name).toBe(scenario.expectEndStage);
    if (scenario.expectReason) expect(last.reason).toMatch(scenario.expectReason);
    // Every decision names its rollout and carries the numbers it was made on (manual ones aside).
    for (const d of result.decisions) {
      expect(d.rollout).toBe("fraud-model");
      if (["advanced", "rolledBack", "failed", "held"].includes(d.kind)) expect(d.measurements.length).toBeGreaterThan(0);
    }
    scenario.check?.(result);
  });
});

describe("step", () => {
  const spec = specFrom({ promotion_gates: SEED_GATES, stageDefaults: TIMING });
  const empty: MetricReading<RolloutCounts> = { status: "measured", value: emptyRolloutCounts(), sources: [] };

  it("starts the first stage on the first tick and does nothing once ended", () => {
    const first = step(start(spec, TIERS), { now: T0 + 1000, counts: empty });
    expect(first.state.phase).toBe(Phase.Shadowing);
    expect(first.actions).toEqual([{ type: "setWeights", canaryPercent: 0, shadowPercent: 10, reason: "stage shadow: rollout started with stage shadow" }]);
    const ended = { ...first.state, phase: Phase.RolledBack };
    expect(step(ended, { now: T0 + 2000, counts: empty })).toEqual({ state: ended, decisions: [], actions: [], evaluation: null });
  });

  it("keeps its state JSON-serializable (the store persists it as is)", () => {
    const sim = new PoissonTrafficSim({ seed: 3, segment: { dimension: "tenant_tier", shares: SHARES }, behavior: () => GOOD });
    const r = drive(start(spec, TIERS), {
      sim,
      requestsPerTick: 5000,
      tickSeconds: 10,
      maxTicks: 20,
      reviews: { perTick: 50, stableMean: 0.8, canaryMean: 0.8 },
    });
    const copy = JSON.parse(JSON.stringify(r.state));
    expect(copy).toEqual(r.state);
    // Decisions too (unbounded interval ends are null, not an Infinity JSON would lose).
    expect(JSON.parse(JSON.stringify(r.decisions))).toEqual(r.decisions);
    expect(JSON.stringify(r.decisions)).toContain('"upper":null');
    // A resumed copy decides exactly as the original would.
    sim.run(5000, r.state.weights);
    const input = { now: r.now + 10_000, counts: sim.reading(), promql: OOM_ZERO };
    expect(step(copy, input)).toEqual(step(r.state, input));
  });

  it("advances past a rare segment value that is still inconclusive, and says so in the decision", () => {
    // Enterprise is 1% of traffic, under segmentTrafficShare (5%): it cannot hold the stage, and with a few
    // hundred canary requests per stage its error-rate slice stays undecided.
    const sim = new PoissonTrafficSim({
      seed: 11,
      segment: { dimension: "tenant_tier", shares: { free: 0.69, pro: 0.3, enterprise: 0.01 } },
      behavior: () => GOOD,
    });
    const r = drive(start(spec, TIERS), {
      sim,
      requestsPerTick: 2000,
      tickSeconds: 10,
      maxTicks: 40,
      until: (s) => s.stageIndex >= 2,
      promql: () => OOM_ZERO,
      reviews: { perTick: 100, stableMean: 0.8, canaryMean: 0.8 },
    });
    const advanced = r.decisions.filter((d) => d.kind === "advanced");
    expect(advanced.length).toBeGreaterThan(0);
    const withOpen = advanced.filter((d) => d.measurements.some((m) => m.segment?.value === "enterprise" && m.status !== MeasurementStatus.Passed));
    expect(withOpen.length).toBeGreaterThan(0);
    for (const d of advanced) {
      const open = d.measurements.filter((m) => m.segment !== null && m.status !== MeasurementStatus.Passed);
      if (open.length === 0) expect(d.reason).not.toContain("not yet conclusive");
      else expect(d.reason).toMatch(new RegExp(`segment slices not yet conclusive: ${open[0].gate} tenant_tier=${open[0].segment!.value} ${open[0].status}`));
    }
  });

  it("evaluates gates per declared segment value and leaves out values without traffic", () => {
    const sim = new PoissonTrafficSim({ seed: 5, segment: { dimension: "tenant_tier", shares: SHARES }, behavior: () => GOOD });
    const r = drive(start(spec, TIERS), { sim, requestsPerTick: 5000, tickSeconds: 10, maxTicks: 3 });
    const segments = new Set(r.evaluations.at(-1)!.measurements.map((m) => (m.segment ? m.segment.value : "overall")));
    expect([...segments].sort()).toEqual(["enterprise", "free", "overall", "pro"]);
  });
});
