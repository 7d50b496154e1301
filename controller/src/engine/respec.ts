/**
 * A release spec changed mid-rollout (PUT apply): what may change, and the engine state under the new spec.
 * Stages already started keep their weights; the policy's choices made at create (changeKind, impact) stay.
 * Gates, deadlines, owner, rollback condition, traffic-mix settings, finalize and later stages may change.
 *
 * The error budget (budget.ts) splits falseAlarmRate over the rollout's test groups. Groups already begun are
 * charged at the alpha they ran with; what is left is split over the groups still to come (see rebudget()).
 */
import type { ErrorDetail } from "../errors.ts";
import { Phase, isClosed, isTerminal } from "./phase.ts";
import type { EngineSpec, StageSpec } from "./spec.ts";
import { errorBudget, groupAlphaOf, smallestAlpha, type ErrorBudget } from "./budget.ts";
import { budgetOf, candidateOf, type EngineState } from "./state.ts";
import { hasAbsoluteLimit, hasRelativeLimit, isStatistical, type GateSpec } from "./gate-spec.ts";
import type { StageKind } from "./spec-schema.ts";

type RespecResult = { ok: true; state: EngineState; changes: string[] } | { ok: false; errors: ErrorDetail[] };

export function respec(state: EngineState, next: EngineSpec): RespecResult {
  const before = state.spec;
  const errors: ErrorDetail[] = [];
  if (isClosed(state.phase)) return { ok: false, errors: [{ path: "", reason: `the rollout has ended (${state.phase}): nothing in it can change` }] };
  // The plan it already has: nothing to re-budget (the budget's books only move when the spec does).
  if (JSON.stringify(next) === JSON.stringify(before)) return { ok: true, state, changes: [] };
  if (next.changeKind !== before.changeKind)
    errors.push({
      path: "/changeKind",
      reason: "cannot change mid-rollout: the policy's checks for it (a shadow stage for a major change) were made at create",
    });
  if (next.impact !== before.impact)
    errors.push({ path: "/impact", reason: "cannot change mid-rollout: whether the release ends in a review was decided at create" });
  checkStages(state, before.stages, next.stages, errors);
  const budget = rebudget(state, next);
  if (typeof budget === "string") errors.push({ path: "/statistics/falseAlarmRate", reason: budget });
  if (errors.length > 0 || typeof budget === "string") return { ok: false, errors };
  return { ok: true, state: { ...state, spec: next, budget }, changes: describeChanges(before, next, smallestAlpha(budgetOf(state)), smallestAlpha(budget)) };
}

const stageShape = (s: StageSpec) => `${s.name}|${s.kind}|${s.canaryPercent}|${s.shadowPercent}`;

function checkStages(state: EngineState, before: StageSpec[], next: StageSpec[], errors: ErrorDetail[]): void {
  // Every stage of a rollout past its stages has started; so has the current one.
  const started = isTerminal(state.phase) ? before.length - 1 : state.stageIndex;
  for (let i = 0; i <= started; i++) {
    const old = before[i];
    const now = next[i];
    if (old === undefined) break; // a state past the stages it has (not written by this engine): nothing to keep
    if (now === undefined) {
      errors.push({
        path: "/stages",
        reason: `must keep stage ${i} (${old.name}): it has already ${i < started || isTerminal(state.phase) ? "passed" : "started"}`,
      });
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

/**
 * Test groups of `gate` that have begun: evidence gathered under them already counts against the budget.
 * Mirrors budget.ts testGroups(), over the stages up to `current` and the external values posted so far.
 */
function startedGroups(gate: GateSpec, stages: readonly StageSpec[], current: number, posted: ReadonlySet<string>): number {
  const begun = stages.slice(0, current + 1);
  const candidates = (kinds: readonly StageKind[]) => new Set(begun.filter((s) => kinds.includes(s.kind)).map((s) => candidateOf(s.kind)));
  switch (gate.kind) {
    case "promql":
      return 0;
    case "external": {
      const variants = candidates(gate.during);
      for (const v of ["canary", "shadow"]) if (posted.has(`${gate.name}|${v}`)) variants.add(v as "canary" | "shadow");
      return variants.size;
    }
    case "proportion": {
      let n = 0;
      if (hasAbsoluteLimit(gate)) n += candidates(gate.during).size;
      if (hasRelativeLimit(gate)) n += begun.filter((s) => s.kind !== "bake" && gate.during.includes(s.kind)).length;
      return n;
    }
    default:
      return begun.filter((s) => gate.during.includes(s.kind) && (s.kind !== "bake" || hasAbsoluteLimit(gate))).length;
  }
}

/**
 * The budget under the new spec, or why it cannot be covered. Every test group that has begun is charged at
 * the alpha it began with, once (a removed or changed gate's too: its false alarms could already have
 * happened; they stay charged as `retired` at every later change). What is left of the new falseAlarmRate is
 * split evenly over the groups still to come: later stages of unchanged gates, and every group of a new or
 * changed gate (which restarts its test on the same evidence). An unchanged gate whose test is running keeps
 * at most its old alpha (a running sequence may tighten, never widen), and no gate gets more than the same
 * spec would get from scratch. So the alphas of every test that can ever run add up to at most falseAlarmRate.
 */
function rebudget(state: EngineState, next: EngineSpec): ErrorBudget | string {
  const posted = new Set(Object.entries(state.external).flatMap(([gate, perVariant]) => Object.keys(perVariant ?? {}).map((v) => `${gate}|${v}`)));
  const fresh = errorBudget(next, state.segments);
  // Nothing has been tested yet: the new spec gets its budget from scratch.
  if (state.phase === Phase.Pending && posted.size === 0) return fresh;
  const old = budgetOf(state);
  const current = isTerminal(state.phase) ? state.spec.stages.length - 1 : state.stageIndex;
  const nextByName = new Map(next.gates.map((g) => [g.name, g]));
  const unchanged = (g: GateSpec) => nextByName.has(g.name) && JSON.stringify(nextByName.get(g.name)) === JSON.stringify(g);
  let retired = old.retired ?? 0;
  const spent: Record<string, { alpha: number; groups: number }> = {};
  for (const gate of state.spec.gates) {
    if (!isStatistical(gate)) continue;
    const begun = startedGroups(gate, state.spec.stages, current, posted);
    const before = old.spent?.[gate.name] ?? { alpha: 0, groups: 0 };
    const charged = { alpha: before.alpha + Math.max(0, begun - before.groups) * groupAlphaOf(old, gate.name), groups: Math.max(begun, before.groups) };
    if (unchanged(gate)) spent[gate.name] = charged;
    else retired += charged.alpha;
  }
  const given = retired + Object.values(spent).reduce((sum, s) => sum + s.alpha, 0);
  const remainingOf = (g: GateSpec) => Math.max(0, (fresh.groups[g.name] ?? 1) - (spent[g.name]?.groups ?? 0));
  const future = next.gates.filter(isStatistical).reduce((n, g) => n + remainingOf(g), 0);
  const left = next.falseAlarmRate - given;
  if (future > 0 && left <= 0) {
    return `must leave budget for the tests still to come: the tests already begun were given ${given.toPrecision(3)} of the false-alarm rate, and ${next.falseAlarmRate} leaves nothing for ${future} more test group(s)`;
  }
  const each = future > 0 ? left / future : 0;
  const groupAlpha: Record<string, number> = {};
  for (const gate of next.gates) {
    if (!isStatistical(gate)) continue;
    const fromScratch = groupAlphaOf(fresh, gate.name);
    const running = spent[gate.name];
    if (running === undefined) groupAlpha[gate.name] = Math.min(fromScratch, each);
    else {
      const was = groupAlphaOf(old, gate.name);
      groupAlpha[gate.name] = remainingOf(gate) === 0 ? was : Math.min(fromScratch, each, running.groups > 0 ? was : Infinity);
    }
  }
  return { ...fresh, groupAlpha, spent, retired };
}

function describeChanges(before: EngineSpec, next: EngineSpec, oldAlpha: number, newAlpha: number): string[] {
  const out: string[] = [];
  if (before.owner !== next.owner) out.push(`owner ${before.owner ?? "-"} -> ${next.owner ?? "-"}`);
  if (before.rollbackCondition !== next.rollbackCondition) out.push("rollbackCondition");
  const gates = (s: EngineSpec) => new Map(s.gates.map((g) => [g.name, JSON.stringify(g)]));
  const [a, b] = [gates(before), gates(next)];
  for (const [name, text] of b)
    if (!a.has(name)) out.push(`gate ${name} added`);
    else if (a.get(name) !== text) out.push(`gate ${name} changed`);
  for (const name of a.keys()) if (!b.has(name)) out.push(`gate ${name} removed`);
  const stages = (s: EngineSpec) => JSON.stringify(s.stages);
  if (stages(before) !== stages(next)) out.push("stages");
  if (JSON.stringify(before.trafficMix) !== JSON.stringify(next.trafficMix)) out.push("trafficMix");
  if (JSON.stringify(before.finalize) !== JSON.stringify(next.finalize)) out.push("finalize");
  if (JSON.stringify(before.notifications ?? null) !== JSON.stringify(next.notifications ?? null)) out.push("notifications");
  if (before.falseAlarmRate !== next.falseAlarmRate) out.push(`falseAlarmRate ${before.falseAlarmRate} -> ${next.falseAlarmRate}`);
  if (before.segmentTrafficShare !== next.segmentTrafficShare) out.push("segmentTrafficShare");
  if (newAlpha !== oldAlpha) out.push(`smallest alpha per test ${oldAlpha.toPrecision(3)} -> ${newAlpha.toPrecision(3)}`);
  return out;
}
