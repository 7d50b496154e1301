// The sample-ratio check (engine/sample-ratio.ts): the chi-square statistic and p-value against reference values
// computed apart from the engine's code, and the hold it puts on a canary stage.
//
// References (Python 3 math module, not scipy, which this machine lacks; for 1 degree of freedom the chi-square
// survival function is erfc(sqrt(x / 2)), for 2 it is exp(-x / 2)):
//   9420 stable / 580 canary at 5%: expected 9500 / 500, x = 80^2/9500 + 80^2/500 = 13.473684210526317,
//     p = math.erfc(math.sqrt(x / 2)) = 0.0002419327908606597
//   720 stable / 280 canary at 25%: expected 750 / 250, x = 30^2/750 + 30^2/250 = 4.8, p = 0.02845973691631057
//   [30, 50, 20] against thirds: x = (3.33^2 + 16.67^2 + 13.33^2) / 33.33 = 14.0, p = exp(-7) = 0.0009118819655545162
import { describe, expect, it } from "vitest";
import { applyCommand } from "../../controller/src/engine/commands.ts";
import { toSnapshot } from "../../controller/src/engine/counts.ts";
import { Phase } from "../../controller/src/engine/phase.ts";
import { checkSampleRatio, chiSquareGoodnessOfFit, DEFAULT_SAMPLE_RATIO } from "../../controller/src/engine/sample-ratio.ts";
import { step } from "../../controller/src/engine/step.ts";
import { liveEvaluation } from "../../controller/src/engine/view.ts";
import { emptyRolloutCounts, type MetricReading, type RolloutCounts } from "../../controller/src/metrics/provider.ts";
import { specFrom, start, T0 } from "./drive.ts";

function counts(stable: number, canary: number): RolloutCounts {
  const c = emptyRolloutCounts();
  c.stable.requests = stable;
  c.stable.responses["2xx"] = stable;
  c.canary.requests = canary;
  c.canary.responses["2xx"] = canary;
  return c;
}
const reading = (stable: number, canary: number): MetricReading<RolloutCounts> => ({ status: "measured", value: counts(stable, canary), sources: [] });

describe("chi-square goodness of fit", () => {
  it("matches the reference values", () => {
    const a = chiSquareGoodnessOfFit([9420, 580], [0.95, 0.05]);
    expect(a?.statistic).toBeCloseTo(13.473684210526317, 10);
    expect(a?.pValue).toBeCloseTo(0.0002419327908606597, 9);
    expect(a?.expected).toEqual([9500, 500]);
    const b = chiSquareGoodnessOfFit([720, 280], [0.75, 0.25]);
    expect(b?.statistic).toBeCloseTo(4.8, 10);
    expect(b?.pValue).toBeCloseTo(0.02845973691631057, 9);
    const c = chiSquareGoodnessOfFit([30, 50, 20], [1 / 3, 1 / 3, 1 / 3]);
    expect(c?.degreesOfFreedom).toBe(2);
    expect(c?.statistic).toBeCloseTo(14, 10);
    expect(c?.pValue).toBeCloseTo(0.0009118819655545162, 9);
    expect(chiSquareGoodnessOfFit([950, 50], [0.95, 0.05])?.pValue).toBe(1);
    expect(chiSquareGoodnessOfFit([0, 0], [0.5, 0.5])).toBeNull();
    // A variant the weights send nothing to, yet answering: a mismatch beyond statistics.
    expect(chiSquareGoodnessOfFit([10, 1], [1, 0])?.pValue).toBe(0);
  });
});

describe("the sample-ratio check", () => {
  it("a skewed window is a mismatch with observed and expected counts and the p-value; a fair one passes", () => {
    const skewed = checkSampleRatio(toSnapshot(counts(9420, 580)), 5, DEFAULT_SAMPLE_RATIO);
    expect(skewed).toMatchObject({ status: "mismatch", observed: { stable: 9420, canary: 580 }, expected: { stable: 9500, canary: 500 } });
    expect(skewed?.pValue).toBeCloseTo(0.000242, 6);
    expect(skewed?.text).toMatch(
      /^sample ratio mismatch: canary 580 of 10000 requests \(5.8%\), expected 500 \(5%\); stable 9420, expected 9500; chi-square 13.47, p = 0.00024 < 0.001/,
    );
    // p = 0.028 is not below 0.001: chance, not a broken split.
    expect(checkSampleRatio(toSnapshot(counts(720, 280)), 25, DEFAULT_SAMPLE_RATIO)?.status).toBe("passed");
  });

  it("does not speak on small samples, nor where there is no split to check", () => {
    // 150 requests, all on stable, at 50%: glaring, but under the 200 requests the check waits for.
    expect(checkSampleRatio(toSnapshot(counts(150, 0)), 50, DEFAULT_SAMPLE_RATIO)?.status).toBe("notEnoughData");
    // 1%: 400 requests expect 4 canary ones, under the five the approximation needs.
    expect(checkSampleRatio(toSnapshot(counts(400, 0)), 1, DEFAULT_SAMPLE_RATIO)?.status).toBe("notEnoughData");
    // 2000 requests expect 20: none is x = 20 + 20^2/1980 = 20.2, p = erfc(sqrt(10.1)) = 7.0e-6.
    expect(checkSampleRatio(toSnapshot(counts(2000, 0)), 1, DEFAULT_SAMPLE_RATIO)?.status).toBe("mismatch");
    expect(checkSampleRatio(toSnapshot(counts(0, 1000)), 100, DEFAULT_SAMPLE_RATIO)).toBeNull();
    expect(checkSampleRatio(toSnapshot(counts(900, 100)), 5, { p: 0, minRequests: 200 })).toBeNull();
  });

  it("holds a canary stage (no promotion, no rollback) until the split clears or an operator acts", () => {
    const spec = specFrom(
      {
        stages: [10, 100],
        promotion_gates: { error_rate: { maximum: 0.05 } },
        stageDefaults: { minDurationSeconds: 0, minRequests: 50, deadlineSeconds: 3600 },
      },
      { hasOutputSchema: false, hasShadow: false },
    );
    let state = step(start(spec), { now: T0, counts: reading(0, 0), sampleRatio: DEFAULT_SAMPLE_RATIO }).state;
    expect(state.weights.canaryPercent).toBe(10);
    // 2000 requests at 10%: the canary answered 100 instead of about 200 (some canary-bucket users routed to stable).
    const held = step(state, { now: T0 + 60_000, counts: reading(1900, 100), sampleRatio: DEFAULT_SAMPLE_RATIO });
    state = held.state;
    expect(state.phase).toBe(Phase.Canary);
    expect(state.weights.canaryPercent).toBe(10);
    expect(held.actions).toEqual([]);
    expect(held.evaluation?.blocking[0]).toMatch(/^sample ratio mismatch: canary 100 of 2000 requests \(5%\), expected 200 \(10%\)/);
    expect(held.decisions.map((d) => d.kind)).toEqual(["held"]);
    const row = liveEvaluation(held.evaluation ?? null)?.gates.find((g) => g.gate === "sample_ratio");
    expect(row).toMatchObject({ status: "Error", samples: 100, stableSamples: 1900, value: 5 });
    // The split comes right (more traffic, now at 10%): the test over the whole window clears, the stage advances.
    const cleared = step(state, { now: T0 + 600_000, counts: reading(1900 + 18_000, 100 + 2_100), sampleRatio: DEFAULT_SAMPLE_RATIO });
    expect(cleared.evaluation?.sampleRatio?.status).toBe("passed");
    expect(cleared.state.weights.canaryPercent).toBe(100);
    // An operator may promote over a mismatch.
    const promoted = applyCommand(state, { type: "promote", actor: "op", reason: "known skew: one heavy user" }, T0 + 61_000);
    expect(promoted.ok && promoted.state.weights.canaryPercent).toBe(100);
  });
});
