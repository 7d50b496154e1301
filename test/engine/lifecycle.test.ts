// The engine's lifecycle logic, pure: the canary identity check across counter resets, the finalize
// verification's streak, and which commands a Succeeded rollout takes.
import { describe, expect, it } from "vitest";
import { applyCommand } from "../../controller/src/engine/commands.ts";
import { OVERALL, type CountsSnapshot } from "../../controller/src/engine/counts.ts";
import { checkCanaryIdentity, stepAfterRelease } from "../../controller/src/engine/lifecycle.ts";
import { Phase } from "../../controller/src/engine/phase.ts";
import type { EngineState } from "../../controller/src/engine/state.ts";
import { specFrom, start, T0 } from "./drive.ts";

const MODELS = { stable: "v1", canary: "v2", source: "header x-model-version" };

/** A reading with these cumulative answer counts per variant (stable, canary, other, missing). */
function reading(stable: number[], canary: number[]): CountsSnapshot {
  const counters = (n: number[]) => ({
    counters: { "answers{model=stable}": n[0], "answers{model=canary}": n[1], "answers{model=other}": n[2], "answers{model=missing}": n[3] ?? 0 },
    histograms: {},
  });
  return { slices: { [OVERALL]: { stable: counters(stable), canary: counters(canary) } } };
}

function succeeded(finalize: Record<string, unknown> = {}): EngineState {
  const spec = { ...specFrom({ stages: [5, 100], finalize }, { models: MODELS, hasOutputSchema: false }) };
  return { ...start(spec), phase: Phase.Succeeded, stageIndex: 1, weights: { canaryPercent: 100, shadowPercent: 0 } };
}

describe("canary identity", () => {
  it("counts only what is new since the last reading; the first reading only sets the mark; a reset counts from zero", () => {
    let state = succeeded();
    let check = checkCanaryIdentity(state, reading([0, 0, 0], [5, 0, 7]));
    expect(check.mismatched).toBe(0); // an earlier rollout's counts under the same name
    state = check.state;
    check = checkCanaryIdentity(state, reading([0, 0, 0], [5, 10, 7]));
    expect(check.mismatched).toBe(0);
    check = checkCanaryIdentity(check.state, reading([0, 0, 0], [5, 10, 9]));
    expect(check.mismatched).toBe(2);
    // Envoy restarted: the counts start again below the mark, and all of them are new.
    check = checkCanaryIdentity(check.state, reading([0, 0, 0], [0, 0, 3]));
    expect(check.mismatched).toBe(3);
  });

  it("is not checked without a version source", () => {
    const spec = specFrom({ stages: [5, 100] }, { models: { ...MODELS, source: null }, hasOutputSchema: false });
    const state: EngineState = { ...start(spec), lifecycle: { canaryMismatchMark: 0, canaryWithdrawn: null, finalize: null, finalizeNote: null } };
    expect(checkCanaryIdentity(state, reading([0, 0, 0], [0, 0, 50])).mismatched).toBe(0);
  });
});

describe("finalize verification", () => {
  it("needs the answers in a row: an answer of the old version restarts the count", () => {
    const asked = applyCommand(succeeded({ verifyAnswers: 10, verifyPercent: 10 }), { type: "finalize", actor: "alice" }, T0);
    if (!asked.ok) throw new Error(asked.error);
    expect(asked.state).toMatchObject({ phase: Phase.Finalizing, weights: { canaryPercent: 90, shadowPercent: 0 } });
    const tick = (state: EngineState, stable: number[], at: number) => stepAfterRelease(state, reading(stable, [0, 100, 0]), T0 + at * 1000);
    let t = tick(asked.state, [50, 0, 0], 1); // the first reading: the mark
    t = tick(t.state, [50, 8, 0], 2);
    expect(t.state.lifecycle?.finalize?.streak).toBe(8);
    t = tick(t.state, [51, 12, 0], 3); // a v1 answer among them: the streak starts again
    expect(t.state.lifecycle?.finalize?.streak).toBe(0);
    expect(t.decisions.map((d) => d.kind)).toEqual(["finalizeWaiting"]);
    t = tick(t.state, [51, 21, 0], 4);
    expect(t.state.phase).toBe(Phase.Finalizing);
    t = tick(t.state, [51, 22, 0], 5);
    expect(t.state).toMatchObject({ phase: Phase.Finalized, weights: { canaryPercent: 0, shadowPercent: 0 } });
    expect(t.decisions.at(-1)?.reason).toBe(
      "finalized: stable answered v2 10 times in a row (22 with v2, 1 with another version since alice asked); all traffic to stable, the rollout is archived",
    );
    expect(t.actions).toEqual([{ type: "setWeights", canaryPercent: 0, shadowPercent: 0, reason: t.decisions.at(-1)!.reason }]);
  });
});

describe("commands after Succeeded", () => {
  it.each([
    ["promote", /cannot promote: it has Succeeded: finalize it/],
    ["pause", /cannot pause: it has Succeeded/],
    ["fail", /cannot fail: it has Succeeded/],
  ] as const)("%s is refused with what to do instead", (type, expected) => {
    const result = applyCommand(succeeded(), { type, actor: "alice" }, T0);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(expected);
  });

  it("nothing moves a closed rollout", () => {
    const closed: EngineState = { ...succeeded(), phase: Phase.Finalized };
    for (const type of ["rollback", "undo", "finalize"] as const) {
      const result = applyCommand(closed, { type, actor: "alice" }, T0);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error).toBe(`rollout fraud-model: cannot ${type}: it has already ended (Finalized)`);
    }
    expect(stepAfterRelease(closed, reading([0, 0, 0], [0, 0, 9]), T0).decisions).toEqual([]);
  });
});
