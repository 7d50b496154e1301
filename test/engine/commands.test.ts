// Manual actions, one scenario per row: traffic runs, commands arrive before given ticks.
import { describe, expect, it } from "vitest";
import { applyCommand, type Command } from "../../controller/src/engine/commands.ts";
import { Phase } from "../../controller/src/engine/phase.ts";
import type { DecisionKind } from "../../controller/src/engine/state.ts";
import { drive, SEED_GATES, specFrom, start, T0, type DriveResult } from "./drive.ts";
import { GOOD, PoissonTrafficSim, type Behavior } from "./sim.ts";

const TIERS = [{ dimension: "tenant_tier", values: ["free", "pro", "enterprise"] }];
const SHARES = { free: 0.5, pro: 0.3, enterprise: 0.2 };
const op = "alice";

interface Row {
  name: string;
  spec?: Record<string, unknown>;
  canary?: Partial<Behavior>;
  commands: Record<number, Command[]>;
  maxTicks?: number;
  until?: (phase: Phase, tick: number) => boolean;
  expectPhase: Phase;
  expectKinds?: DecisionKind[];
  expectRefused?: RegExp[];
  check?: (r: DriveResult) => void;
}

const weightsOf = (r: DriveResult) => r.actions.map((a) => (a.type === "setWeights" ? `${a.canaryPercent}` : a.type));

const rows: Row[] = [
  {
    name: "promote moves to the next stage at once, whatever the gates say",
    commands: { 2: [{ type: "promote", actor: op, reason: "shadow looked fine in the dashboard" }] },
    maxTicks: 3,
    expectPhase: Phase.Canary,
    check: (r) => {
      const promoted = r.decisions.find((d) => d.kind === "promoted")!;
      // Filed under the stage it judged (the shadow stage, whose numbers it carries); the reason names both.
      expect(promoted).toMatchObject({ actor: op, from: Phase.Shadowing, to: Phase.Canary, stage: { name: "shadow" } });
      expect(promoted.reason).toBe("promoted by alice from shadow to 1%: shadow looked fine in the dashboard");
      // The decision carries the numbers the operator saw at the last tick.
      expect(promoted.measurements.length).toBeGreaterThan(0);
      expect(weightsOf(r)).toEqual(["0", "1"]);
    },
  },
  {
    name: "pause holds the weights even when every gate passes; resume continues",
    spec: { stages: [5, 100] },
    commands: { 1: [{ type: "pause", actor: op }], 40: [{ type: "resume", actor: op }] },
    expectPhase: Phase.Succeeded,
    expectKinds: ["started", "paused", "resumed", "advanced", "succeeded"],
    check: (r) => {
      const resumed = r.decisions.find((d) => d.kind === "resumed")!;
      const advanced = r.decisions.find((d) => d.kind === "advanced")!;
      expect(advanced.at).toBeGreaterThan(resumed.at);
      expect(resumed.reason).toBe("resumed by alice after 390 s");
    },
  },
  {
    name: "paused time does not count towards the deadline",
    spec: { stages: [5, 100], stageDefaults: { minDurationSeconds: 60, minRequests: 300, deadlineSeconds: 200 } },
    commands: { 1: [{ type: "pause", actor: op }], 60: [{ type: "resume", actor: op }] },
    expectPhase: Phase.Succeeded,
  },
  {
    name: "a paused rollout still rolls back on a Failed gate",
    spec: { stages: [5, 100] },
    canary: { errorRate: 0.06 },
    commands: { 1: [{ type: "pause", actor: op }] },
    expectPhase: Phase.RolledBack,
    check: (r) => expect(r.decisions.at(-1)).toMatchObject({ kind: "rolledBack", from: Phase.Paused, actor: "engine" }),
  },
  {
    name: "rollback is immediate",
    commands: { 3: [{ type: "rollback", actor: op, reason: "support tickets" }] },
    expectPhase: Phase.RolledBack,
    check: (r) => {
      expect(r.decisions.at(-1)).toMatchObject({ kind: "rolledBack", actor: op, reason: "rolled back by alice: support tickets" });
      expect(r.actions.at(-1)).toEqual({ type: "rollback", canaryPercent: 0, shadowPercent: 0, reason: "rolled back by alice: support tickets" });
      expect(r.state).toMatchObject({ weights: { canaryPercent: 0, shadowPercent: 0 }, endReason: "rolled back by alice: support tickets" });
    },
  },
  {
    name: "fail ends the rollout with stable on all traffic",
    commands: { 3: [{ type: "fail", actor: op }] },
    expectPhase: Phase.Failed,
    check: (r) => expect(r.actions.at(-1)).toMatchObject({ type: "rollback", canaryPercent: 0 }),
  },
  {
    name: "undo during the bake period goes back to the old stable",
    spec: { stages: [5, { canaryPercent: 100, minDurationSeconds: 3000, deadlineSeconds: 3600 }] },
    commands: {},
    until: (phase) => phase === Phase.Baking,
    expectPhase: Phase.Baking,
    check: (r) => {
      const undone = applyCommand(r.state, { type: "undo", actor: op, reason: "KPI drop" }, r.now);
      if (!undone.ok) throw new Error(undone.error);
      expect(undone.state.phase).toBe(Phase.RolledBack);
      expect(undone.decisions[0]).toMatchObject({ kind: "undone", from: Phase.Baking, reason: "undone by alice: back to the old stable: KPI drop" });
      expect(undone.actions).toEqual([{ type: "rollback", canaryPercent: 0, shadowPercent: 0, reason: "undone by alice: back to the old stable: KPI drop" }]);
    },
  },
  {
    name: "undo is refused before 100%; rollback is the action there",
    commands: { 2: [{ type: "undo", actor: op }] },
    maxTicks: 4,
    expectPhase: Phase.Shadowing,
    expectRefused: [/^rollout fraud-model: cannot undo: undo is for a rollout at 100% .* it is Shadowing \(use rollback\)$/],
  },
  {
    name: "a high-impact rollout waits for a review, and an approving one finalizes it",
    spec: { impact: "high", stages: [5, 100] },
    commands: {},
    until: (phase) => phase === Phase.AwaitingReview,
    expectPhase: Phase.AwaitingReview,
    check: (r) => {
      const refused = applyCommand(r.state, { type: "promote", actor: op }, r.now);
      expect(refused).toEqual({ ok: false, error: "rollout fraud-model: cannot promote: it is waiting for a review (post one)" });
      const approved = applyCommand(r.state, { type: "review", actor: "bob", approved: true, reason: "spot checks fine" }, r.now);
      if (!approved.ok) throw new Error(approved.error);
      expect(approved.state).toMatchObject({ phase: Phase.Succeeded, review: { reviewer: "bob", approved: true } });
      expect(approved.actions).toEqual([{ type: "finalize", reason: "approved by bob: spot checks fine" }]);
      const rejected = applyCommand(r.state, { type: "review", actor: "bob", approved: false }, r.now);
      if (!rejected.ok) throw new Error(rejected.error);
      expect(rejected.state.phase).toBe(Phase.RolledBack);
      expect(rejected.actions[0]).toMatchObject({ type: "rollback" });
    },
  },
  {
    name: "commands that do not fit the phase are refused and change nothing",
    commands: {
      0: [{ type: "pause", actor: op }],
      1: [
        { type: "resume", actor: op },
        { type: "review", actor: op, approved: true },
        { type: "pause", actor: op },
        { type: "promote", actor: op },
        { type: "pause", actor: op },
      ],
      3: [{ type: "rollback", actor: op }],
      4: [{ type: "resume", actor: op }],
    },
    maxTicks: 6,
    expectPhase: Phase.RolledBack,
    expectRefused: [
      /^rollout fraud-model: cannot pause: it has not started yet \(nothing to hold\)$/,
      /cannot resume: it is not paused \(Shadowing\)/,
      /cannot review: it is not waiting for a review \(Shadowing\)/,
      /cannot promote: it is paused \(resume it first\)/,
      /cannot pause: it is Paused/,
    ],
  },
  {
    name: "promote past the last stage completes the rollout",
    spec: { stages: [5, 100] },
    commands: { 1: [{ type: "promote", actor: op }], 2: [{ type: "promote", actor: op }] },
    expectPhase: Phase.Succeeded,
    check: (r) => expect(weightsOf(r)).toEqual(["5", "100", "finalize"]),
  },
];

describe("manual actions", () => {
  it.each(rows)("$name", (row) => {
    const spec = specFrom({ promotion_gates: SEED_GATES, stageDefaults: { minDurationSeconds: 60, minRequests: 300, deadlineSeconds: 3600 }, ...row.spec });
    const sim = new PoissonTrafficSim({
      seed: 77,
      segment: { dimension: "tenant_tier", shares: SHARES },
      behavior: (variant) => (variant === "canary" ? { ...GOOD, ...row.canary } : GOOD),
    });
    const result = drive(start(spec, TIERS), {
      sim,
      requestsPerTick: 20000,
      tickSeconds: 10,
      maxTicks: row.maxTicks ?? 400,
      commands: row.commands,
      reviews: { perTick: 100, stableMean: 0.8, canaryMean: 0.8 },
      until: row.until ? (state, tick) => row.until!(state.phase, tick) : undefined,
    });
    expect(result.state.phase, result.decisions.at(-1)?.reason).toBe(row.expectPhase);
    if (row.expectKinds) expect(result.decisions.filter((d) => d.kind !== "held").map((d) => d.kind)).toEqual(row.expectKinds);
    expect(result.refused.length).toBe(row.expectRefused?.length ?? 0);
    for (const [i, re] of (row.expectRefused ?? []).entries()) expect(result.refused[i]).toMatch(re);
    row.check?.(result);
  });
});

describe("external measurements", () => {
  const spec = specFrom({ promotion_gates: { ...SEED_GATES, conversion: { external: "conversion_rate", range: [0, 1], minimum_delta: -0.01 } } });
  const state = start(spec, TIERS);

  it("feed the gates that use the metric", () => {
    const r = applyCommand(state, { type: "recordExternal", metric: "human_review_score", variant: "canary", values: [0.9, 0.8, 1] }, T0);
    if (!r.ok) throw new Error(r.error);
    expect(r.state.external.human_review_score.canary).toMatchObject({ count: 3, sum: expect.closeTo(2.7, 10) });
    expect(r.decisions).toEqual([]);
  });

  it("are refused for a metric no gate uses, or outside the gate's range", () => {
    expect(applyCommand(state, { type: "recordExternal", metric: "nps", variant: "canary", values: [1] }, T0)).toEqual({
      ok: false,
      error: "rollout fraud-model: cannot recordExternal: no gate uses the external metric 'nps' (gated: human_review_score, conversion_rate)",
    });
    expect(applyCommand(state, { type: "recordExternal", metric: "human_review_score", variant: "stable", values: [0.5, 1.5] }, T0)).toEqual({
      ok: false,
      error: "rollout fraud-model: cannot recordExternal: value 1 (1.5) is outside the range of gate human_review_score, [0, 1]",
    });
  });
});
