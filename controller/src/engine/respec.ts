/**
 * A release spec changed mid-rollout (PUT apply): what may change, and the engine state under the new spec.
 * Stages already started keep their weights; the policy's choices made at create (changeKind, impact) stay.
 * Gates, deadlines, owner, rollback condition, traffic-mix settings, finalize and later stages may change.
 *
 * The error budget. alphaPerTest (state.ts) splits falseAlarmRate over every test the rollout can run. A
 * test already run or running has spent up to the alpha it ran with, so those are charged at the old alpha;
 * what is left of falseAlarmRate is split over the tests still to come under the new spec (later stages, and
 * in the current stage only gates that are new or changed). The new alpha is never above the old one: a
 * running test's sequence may tighten, never widen, so the total stays at most falseAlarmRate.
 */
import type { ErrorDetail } from "../errors.ts";
import { Phase, isClosed, isTerminal } from "./phase.ts";
import type { EngineSpec, StageSpec } from "./spec.ts";
import { alphaPerTest, appliesTo, candidateOf, type EngineState } from "./state.ts";
import type { GateSpec } from "./gate-spec.ts";

export type RespecResult = { ok: true; state: EngineState; changes: string[] } | { ok: false; errors: ErrorDetail[] };

export function respec(state: EngineState, next: EngineSpec): RespecResult {
  const before = state.spec;
  const errors: ErrorDetail[] = [];
  if (isClosed(state.phase)) return { ok: false, errors: [{ path: "", reason: `the rollout has ended (${state.phase}): nothing in it can change` }] };
  if (next.changeKind !== before.changeKind) errors.push({ path: "/changeKind", reason: "cannot change mid-rollout: the policy's checks for it (a shadow stage for a major change) were made at create" });
  if (next.impact !== before.impact) errors.push({ path: "/impact", reason: "cannot change mid-rollout: whether the release ends in a review was decided at create" });
  checkStages(state, before.stages, next.stages, errors);
  const budget = rebudget(state, next);
  if (typeof budget === "string") errors.push({ path: "/statistics/falseAlarmRate", reason: budget });
  if (errors.length > 0 || typeof budget === "string") return { ok: false, errors };
  return { ok: true, state: { ...state, spec: next, alphaPerTest: budget }, changes: describeChanges(before, next, state.alphaPerTest, budget) };
}

const stageShape = (s: StageSpec) => `${s.name}|${s.kind}|${s.canaryPercent}|${s.shadowPercent}`;

function checkStages(state: EngineState, before: StageSpec[], next: StageSpec[], errors: ErrorDetail[]): void {
  // Every stage of a rollout past its stages has started; so has the current one.
  const started = isTerminal(state.phase) ? before.length - 1 : state.stageIndex;
  for (let i = 0; i <= started; i++) {
    const old = before[i];
    const now = next[i];
    if (now === undefined) {
      errors.push({ path: "/stages", reason: `must keep stage ${i} (${old.name}): it has already ${i < started || isTerminal(state.phase) ? "passed" : "started"}` });
      break;
    }
    if (stageShape(old) !== stageShape(now)) {
      const when = i < started || isTerminal(state.phase) ? "passed" : "is running";
      errors.push({
        path: `/stages/${i}`,
        reason: `stage ${i} (${old.name}: ${describeWeights(old)}) ${when}: its name and weights cannot change (asked: ${now.name}: ${describeWeights(now)})`,
      });
    }
  }
  if (isTerminal(state.phase) && next.length !== before.length) {
    errors.push({ path: "/stages", reason: `the release has passed all its stages (${state.phase}): none can be added or removed` });
  }
}

const describeWeights = (s: StageSpec) => (s.kind === "shadow" ? `shadow ${s.shadowPercent}%` : `canary ${s.canaryPercent}%`);

/** Statistical tests of one stage: one per traffic gate that applies, per slice (overall and every segment value). */
function testsIn(gates: readonly GateSpec[], stage: StageSpec, slices: number, only?: (g: GateSpec) => boolean): number {
  let n = 0;
  for (const gate of gates) {
    if (gate.kind === "promql" || gate.kind === "external") continue;
    if (only && !only(gate)) continue;
    if (appliesTo(gate, stage)) n += slices;
  }
  return n;
}

/** One test per external gate and candidate variant of the stages that can run it. */
function externalTests(spec: EngineSpec): Array<{ gate: string; variant: string }> {
  const kinds = new Set(spec.stages.map((s) => s.kind));
  const out: Array<{ gate: string; variant: string }> = [];
  for (const gate of spec.gates) {
    if (gate.kind !== "external") continue;
    for (const variant of new Set(gate.during.filter((k) => kinds.has(k)).map(candidateOf))) out.push({ gate: gate.name, variant });
  }
  return out;
}

/** The alpha per test under the new spec, or why the budget cannot cover it. */
function rebudget(state: EngineState, next: EngineSpec): number | string {
  const slices = 1 + state.segments.reduce((n, s) => n + s.values.length, 0);
  const started = new Set(Object.entries(state.external).flatMap(([gate, perVariant]) => Object.keys(perVariant ?? {}).map((v) => `${gate}|${v}`)));
  const fresh = alphaPerTest(next, state.segments);
  // Nothing has been tested yet: the new spec gets its budget from scratch.
  if (state.phase === Phase.Pending && started.size === 0) return fresh;
  const old = state.alphaPerTest;
  const current = isTerminal(state.phase) ? state.spec.stages.length - 1 : state.stageIndex;
  let spent = started.size;
  for (let i = 0; i <= current; i++) spent += testsIn(state.spec.gates, state.spec.stages[i], slices);
  const spentAlpha = spent * old;
  const sameGate = new Map(state.spec.gates.map((g) => [g.name, JSON.stringify(g)]));
  let remaining = externalTests(next).filter((t) => !started.has(`${t.gate}|${t.variant}`)).length;
  if (current >= 0 && current < next.stages.length) {
    remaining += testsIn(next.gates, next.stages[current], slices, (g) => sameGate.get(g.name) !== JSON.stringify(g));
  }
  for (let i = current + 1; i < next.stages.length; i++) remaining += testsIn(next.gates, next.stages[i], slices);
  const left = next.falseAlarmRate - spentAlpha;
  if (remaining === 0) return old;
  if (left <= 0) {
    return `must leave budget for the tests still to come: ${spent} tests already ran or run at ${old.toPrecision(3)} each (${spentAlpha.toPrecision(3)} of the false-alarm rate); ${next.falseAlarmRate} leaves nothing for ${remaining} more`;
  }
  return Math.min(old, left / remaining);
}

function describeChanges(before: EngineSpec, next: EngineSpec, oldAlpha: number, newAlpha: number): string[] {
  const out: string[] = [];
  if (before.owner !== next.owner) out.push(`owner ${before.owner ?? "-"} -> ${next.owner ?? "-"}`);
  if (before.rollbackCondition !== next.rollbackCondition) out.push("rollbackCondition");
  const gates = (s: EngineSpec) => new Map(s.gates.map((g) => [g.name, JSON.stringify(g)]));
  const [a, b] = [gates(before), gates(next)];
  for (const [name, text] of b) if (!a.has(name)) out.push(`gate ${name} added`);
  else if (a.get(name) !== text) out.push(`gate ${name} changed`);
  for (const name of a.keys()) if (!b.has(name)) out.push(`gate ${name} removed`);
  const stages = (s: EngineSpec) => JSON.stringify(s.stages);
  if (stages(before) !== stages(next)) out.push("stages");
  if (JSON.stringify(before.trafficMix) !== JSON.stringify(next.trafficMix)) out.push("trafficMix");
  if (JSON.stringify(before.finalize) !== JSON.stringify(next.finalize)) out.push("finalize");
  if (before.falseAlarmRate !== next.falseAlarmRate) out.push(`falseAlarmRate ${before.falseAlarmRate} -> ${next.falseAlarmRate}`);
  if (before.segmentTrafficShare !== next.segmentTrafficShare) out.push("segmentTrafficShare");
  if (newAlpha !== oldAlpha) out.push(`alpha per test ${oldAlpha.toPrecision(3)} -> ${newAlpha.toPrecision(3)}`);
  return out;
}
