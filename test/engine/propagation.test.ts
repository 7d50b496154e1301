// The stage window waits for the data plane (engine/propagation.ts): counts read before every proxy runs the
// stage's config version never enter the window; the share rule after the wait; the laggards named; no wait
// without a version source; a rollback never waits. Hand-made cumulative readings, injected clock.
import { describe, expect, it } from "vitest";
import { applyCommand } from "../../controller/src/engine/commands.ts";
import { MeasurementStatus } from "../../controller/src/engine/measurement.ts";
import { Phase } from "../../controller/src/engine/phase.ts";
import type { PropagationInput } from "../../controller/src/engine/propagation.ts";
import type { EngineState } from "../../controller/src/engine/state.ts";
import { step } from "../../controller/src/engine/step.ts";
import type { ProxyVersion } from "../../controller/src/metrics/config-versions.ts";
import { emptyRolloutCounts, type MetricReading, type RolloutCounts } from "../../controller/src/metrics/provider.ts";
import { specFrom, start, T0 } from "./drive.ts";

/** Cumulative counts: requests and 5xx per variant. */
function reading(stable: [number, number], canary: [number, number]): MetricReading<RolloutCounts> {
  const counts = emptyRolloutCounts();
  for (const [v, [n, errors]] of [
    ["stable", stable],
    ["canary", canary],
  ] as const) {
    counts[v].requests = n;
    counts[v].responses["2xx"] = n - errors;
    counts[v].responses["5xx"] = errors;
  }
  return { status: "measured", value: counts, sources: [{ url: "test", ok: true }] };
}

const proxy = (name: string, oldest: number | null, note: string | null = null): ProxyVersion => ({
  proxy: name,
  oldest,
  contexts: 2,
  versions: oldest === null ? [] : [{ version: oldest, contexts: 2 }],
  note,
});

const input = (proxies: ProxyVersion[], policy = { share: 0.95, waitSeconds: 30 }): PropagationInput => ({ required: 7, proxies, error: null, policy });

/** A rollout at its 5% stage (from 1%), the stage entered at T0 + 10 s with the reading `at`. */
function atSecondStage(at: MetricReading<RolloutCounts>): { state: EngineState; now: number } {
  const spec = specFrom(
    {
      stages: [1, 5, 100],
      promotion_gates: { error_rate: { maximum: 0.05 } },
      stageDefaults: { minDurationSeconds: 0, minRequests: 50, deadlineSeconds: 3600 },
    },
    { hasOutputSchema: false, hasShadow: false },
  );
  let state = step(start(spec), { now: T0, counts: reading([0, 0], [0, 0]) }).state;
  // Promoted by hand to 5% (a manual promotion carries no reading; the stage's baseline is taken at the next tick).
  const promoted = applyCommand(state, { type: "promote", actor: "op" }, T0 + 10_000);
  if (!promoted.ok) throw new Error(promoted.error);
  state = promoted.state;
  expect(state.weights.canaryPercent).toBe(5);
  expect(state.propagation).toEqual({ since: T0 + 10_000, confirmed: null });
  void at;
  return { state, now: T0 + 10_000 };
}

describe("the stage window waits for the data plane", () => {
  it("counts served before every proxy runs the new version never enter the window", () => {
    let { state, now } = atSecondStage(reading([0, 0], [0, 0]));
    // Under the previous split the canary answered 400 requests, 100 of them errors (25%, past the 5% limit).
    now += 5_000;
    const waiting = step(state, { now, counts: reading([1000, 0], [400, 100]), propagation: input([proxy("a", 7), proxy("b", 6)]) });
    state = waiting.state;
    expect(state.phase).toBe(Phase.Canary);
    expect(waiting.evaluation?.windowStartedAt).toBeNull();
    expect(waiting.evaluation?.blocking[0]).toMatch(/data plane: 1 of 2 proxies run config version 7 or newer .*waiting on b \(runs 6\)/);
    expect(waiting.evaluation?.propagation?.laggards).toEqual([{ proxy: "b", oldest: 6, note: null }]);
    // More old-split traffic, then the reading that shows both proxies at 7: the window's baseline.
    now += 5_000;
    const confirmed = step(state, { now, counts: reading([1500, 0], [600, 150]), propagation: input([proxy("a", 7), proxy("b", 8)]) });
    state = confirmed.state;
    expect(confirmed.evaluation?.windowStartedAt).toBe(now);
    expect(confirmed.evaluation?.propagation).toMatchObject({ rule: "all", ready: 2, total: 2, confirmedAt: now, laggards: [] });
    // Under the new weights: 100 canary requests, 1 error.
    now += 5_000;
    const after = step(state, { now, counts: reading([3400, 0], [700, 151]), propagation: input([proxy("a", 7), proxy("b", 8)]) });
    const gate = after.evaluation?.measurements.find((m) => m.gate === "error_rate" && m.segment === null);
    expect(gate?.sampleSizes.candidate).toBe(100);
    expect(gate?.status).not.toBe(MeasurementStatus.Failed);
    expect(after.state.phase).not.toBe(Phase.RolledBack);
    expect(after.state.baselineAt).toBe(now - 5_000);
  });

  it("without the wait (no version source) the same counts are in the window and roll back: what the wait prevents", () => {
    let { state, now } = atSecondStage(reading([0, 0], [0, 0]));
    now += 5_000;
    state = step(state, { now, counts: reading([1000, 0], [400, 100]) }).state;
    expect(state.propagation).toBeNull();
    now += 5_000;
    const result = step(state, { now, counts: reading([1500, 0], [600, 150]) });
    // The baseline is the first reading of the stage: 200 canary requests, 50 errors, served before the proxies moved.
    expect(result.state.phase).toBe(Phase.RolledBack);
  });

  it("after the wait, the stated share of proxies starts the window, and the laggards are named in it", () => {
    let { state, now } = atSecondStage(reading([0, 0], [0, 0]));
    const proxies = [proxy("a", 7), proxy("b", 7), proxy("c", 7), proxy("d", null, "2 of 2 workers have no config yet")];
    const policy = { share: 0.75, waitSeconds: 30 };
    now += 10_000;
    const early = step(state, { now, counts: reading([100, 0], [10, 0]), propagation: input(proxies, policy) });
    state = early.state;
    expect(early.evaluation?.windowStartedAt).toBeNull();
    expect(early.evaluation?.blocking[0]).toMatch(/3 of 4 proxies .* after 10 s .*75% of them after 30 s.*waiting on d \(2 of 2 workers have no config yet\)/);
    const hold = early.evaluation?.eta?.holds.find((h) => h.key === "propagation");
    expect(hold?.seconds).toBe(20);
    now += 20_000;
    const late = step(state, { now, counts: reading([200, 0], [20, 0]), propagation: input(proxies, policy) });
    expect(late.evaluation?.propagation).toMatchObject({ rule: "share", ready: 3, total: 4, laggards: [{ proxy: "d", oldest: null }] });
    expect(late.state.baselineAt).toBe(now);
    expect(late.evaluation?.blocking.some((b) => b.startsWith("data plane"))).toBe(false);
    // Confirmed stays confirmed for the stage: a proxy falling back later does not move the window.
    now += 5_000;
    const later = step(late.state, { now, counts: reading([300, 0], [30, 0]), propagation: input([proxy("a", 3)], policy) });
    expect(later.state.baselineAt).toBe(now - 5_000);
  });

  it("share 1 waits for every proxy however long (the stage's deadline still applies)", () => {
    let { state, now } = atSecondStage(reading([0, 0], [0, 0]));
    now += 600_000;
    const r = step(state, { now, counts: reading([100, 0], [10, 0]), propagation: input([proxy("a", 7), proxy("b", 6)], { share: 1, waitSeconds: 0 }) });
    state = r.state;
    expect(r.evaluation?.windowStartedAt).toBeNull();
    expect(r.evaluation?.blocking[0]).toMatch(/the window starts when every proxy does\)/);
  });

  it("no proxy reporting a version starts the window after the wait, and says so", () => {
    let { state, now } = atSecondStage(reading([0, 0], [0, 0]));
    now += 5_000;
    const r1 = step(state, {
      now,
      counts: reading([0, 0], [0, 0]),
      propagation: { required: 7, proxies: null, error: "prometheus down", policy: { share: 0.95, waitSeconds: 30 } },
    });
    expect(r1.evaluation?.blocking[0]).toMatch(/no proxy reports its config version yet \(prometheus down\)/);
    state = r1.state;
    now += 30_000;
    const r2 = step(state, {
      now,
      counts: reading([0, 0], [0, 0]),
      propagation: { required: 7, proxies: [], error: null, policy: { share: 0.95, waitSeconds: 30 } },
    });
    expect(r2.evaluation?.propagation?.rule).toBe("unknown");
    expect(r2.state.baselineAt).toBe(now);
  });

  it("a rollback never waits: asked while the stage waits, stable takes all traffic in the same step", () => {
    let { state, now } = atSecondStage(reading([0, 0], [0, 0]));
    now += 5_000;
    state = step(state, { now, counts: reading([100, 0], [10, 0]), propagation: input([proxy("a", 6)]) }).state;
    expect(state.propagation?.confirmed).toBeNull();
    const rolled = applyCommand(state, { type: "rollback", actor: "op", reason: "bad" }, now + 1);
    if (!rolled.ok) throw new Error(rolled.error);
    expect(rolled.state.phase).toBe(Phase.RolledBack);
    expect(rolled.actions).toEqual([expect.objectContaining({ type: "rollback", canaryPercent: 0 })]);
  });
});
