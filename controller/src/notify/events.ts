/**
 * What a rollout's decisions announce: each decision the store records maps to at most one notification
 * event (started, stage advanced, paused, rolled back, succeeded, ...), with the documented payload (README,
 * "Notifications"). Gates stuck in Error are not decisions; they are followed here from each write's latest
 * evaluation (gateStreaks). Pure: the rollout as written, its new decisions and the clock's readings in,
 * payloads out.
 *
 * Event ids are stable and unique: `<rollout>:<created ms>:<decision number>` (the decision's place in the
 * rollout's history), or `<rollout>:<created ms>:gate_error:<gate>:<since ms>` for a gate's Error spell. A
 * receiver deduplicates on it: the same event is never enqueued twice, and a retry carries the same id.
 */
import { isTerminal, MeasurementStatus, Phase, type Decision, type Evaluation } from "../engine/index.ts";
import type { WindowSummary } from "../engine/index.ts";
import { pendingOf } from "../rollouts/lifecycle-view.ts";
import type { ManagedState, Rollout } from "../rollouts/model.ts";
import { clip, compactEvidence, describeItem, failingGate, linksOf, worstSegment, type EvidenceItem, type Links } from "./evidence.ts";
import type { NotificationEvent } from "../engine/index.ts";
import type { UpstreamLookup } from "../metrics/envoy-upstreams.ts";
import { variantsOf, type VariantsView } from "../http/variants-view.ts";

export interface NotificationPayload {
  /** Stable across retries and restarts: deduplicate on it. */
  id: string;
  type: `rollout.${NotificationEvent}`;
  /** When it happened (the decision's time). */
  at: string;
  /** One line for people (Slack and Teams show it as the title). */
  summary: string;
  rollout: string;
  phase: string;
  previousPhase: string;
  /** Where the rollout is: the stage entered (started, stage_advanced), else the stage judged. */
  stage: { index: number; name: string; of: number } | null;
  weights: { canaryPercent: number; shadowPercent: number };
  /** "engine", or who asked (an operator, finalize-webhook). */
  actor: string;
  /** The decision's kind (DecisionKind), or null for gate_error / gate_recovered. */
  decision: string | null;
  reason: string;
  owner: string | null;
  rollbackCondition: string | null;
  models: { stable: string; canary: string } | null;
  /** Which model is which: declared versions, else the upstream each variant reaches, and in words (`text`). */
  variants: VariantsView;
  /** rolled_back: the failed gate that weighs most; null when nothing failed (a deadline, an operator). */
  failingGate: EvidenceItem | null;
  /** rolled_back: the segment value that failed worst; null when none did. */
  worstSegment: (EvidenceItem & { dimension: string; segmentValue: string }) | null;
  /** gate_error / gate_recovered: the gate and since when it read Error. */
  gate: { name: string; errorSince: string; reason: string } | null;
  /** The next step when it is up to someone (finalize after succeeded, a review, resume); null otherwise. */
  pending: string | null;
  /** The measurements behind the decision (at most 24: all traffic first, then failed segments). */
  evidence: EvidenceItem[];
  /** Requests, error rate and p95 per variant over the stage's window, when the decision carries it. */
  window: WindowSummary | null;
  links: Links;
}

/** One event kind per decision kind (and target phase); null: nothing to announce (holds, warnings, ...). */
export function eventOf(d: Decision): NotificationEvent | null {
  if (d.kind === "started") return "started";
  if (d.to === Phase.RolledBack || d.to === Phase.Failed) return d.from === d.to ? null : "rolled_back";
  switch (d.kind) {
    case "paused":
      return "paused";
    case "resumed":
      return "resumed";
    case "deadlinePassed":
      return "deadline_passed";
    case "canaryWithdrawn":
    case "upstreamsChanged":
      return "canary_withdrawn";
    case "finalizeNotVerified":
      return "finalize_not_verified";
    case "finalized":
      return "finalized";
  }
  if (d.to === Phase.Succeeded && d.from !== Phase.Succeeded && d.from !== Phase.Finalizing) return "succeeded";
  if (d.to === Phase.AwaitingReview && d.from !== Phase.AwaitingReview) return "awaiting_review";
  if ((d.kind === "advanced" || d.kind === "promoted") && (d.to === Phase.Shadowing || d.to === Phase.Canary || d.to === Phase.Baking)) return "stage_advanced";
  return null;
}

interface EventContext {
  publicUrl: string | null;
  /** What each Envoy cluster reaches (for `variants`); absent: unknown. */
  upstreams?: UpstreamLookup;
}

/** The events of the decisions a write appends; `rollout` is the rollout as written (history included). */
export function decisionEvents(rollout: Rollout, newDecisions: readonly Decision[], ctx: EventContext): NotificationPayload[] {
  const engine = rollout.engine;
  if (!engine || newDecisions.length === 0) return [];
  const first = engine.decisions.length - newDecisions.length + 1;
  const out: NotificationPayload[] = [];
  newDecisions.forEach((d, i) => {
    const type = eventOf(d);
    if (type === null) return;
    out.push(payloadOf(rollout, engine, d, type, `${idPrefix(rollout)}:${first + i}`, ctx));
  });
  return out;
}

function idPrefix(rollout: Rollout): string {
  return `${rollout.spec.name}:${rollout.createdAt.getTime()}`;
}

function payloadOf(rollout: Rollout, engine: ManagedState, d: Decision, type: NotificationEvent, id: string, ctx: EventContext): NotificationPayload {
  const spec = engine.state.spec;
  const stages = spec.stages;
  const entered = type === "stage_advanced" && d.stage ? stages[d.stage.index + 1] : null;
  const stage = entered ? { index: entered.index, name: entered.name } : d.stage;
  const ended = type === "rolled_back";
  const base = {
    id,
    type: `rollout.${type}` as const,
    at: new Date(d.at).toISOString(),
    summary: "",
    rollout: rollout.spec.name,
    phase: d.to,
    previousPhase: d.from,
    stage: stage ? { ...stage, of: stages.length } : null,
    weights: { canaryPercent: rollout.canaryPercent, shadowPercent: rollout.shadowPercent },
    actor: d.actor,
    decision: d.kind,
    reason: clip(d.reason),
    owner: spec.owner,
    rollbackCondition: spec.rollbackCondition,
    models: spec.models ? { stable: spec.models.stable, canary: spec.models.canary } : null,
    variants: variantsOf(rollout, ctx.upstreams),
    failingGate: ended ? failingGate(d.measurements) : null,
    worstSegment: ended ? worstSegment(d.measurements) : null,
    gate: null,
    pending: pendingOf(rollout),
    evidence: compactEvidence(d.measurements),
    window: d.window ?? null,
    links: linksOf(ctx.publicUrl, rollout.spec.name),
  };
  base.summary = summaryOf(base, type);
  return base;
}

function summaryOf(p: NotificationPayload, type: NotificationEvent): string {
  const name = p.rollout;
  const at = p.stage ? ` stage ${p.stage.name} (${p.stage.index + 1} of ${p.stage.of})` : "";
  const by = p.actor === "engine" ? "" : ` by ${p.actor}`;
  switch (type) {
    case "started":
      return `${name} started:${at}`;
    case "stage_advanced":
      return `${name} advanced${by} to${at}: canary ${p.weights.canaryPercent}%${p.weights.shadowPercent > 0 ? `, shadow ${p.weights.shadowPercent}%` : ""}`;
    case "paused":
      return `${name} paused${by} at${at}`;
    case "resumed":
      return `${name} resumed${by} at${at}`;
    case "deadline_passed":
      return `${name}:${at} passed its deadline; holding for an operator`;
    case "awaiting_review":
      return `${name} awaits a review (the new model answers 100%)`;
    case "rolled_back": {
      const verb = p.phase === Phase.Failed ? "failed" : "rolled back";
      const why = p.failingGate ? `: ${describeItem(p.failingGate)}` : "";
      const where = p.worstSegment && p.worstSegment.slice !== p.failingGate?.slice ? `, worst on ${p.worstSegment.slice}` : "";
      return `${name} ${verb}${by} at${at}${why}${where}; all traffic on stable`;
    }
    case "succeeded":
      return `${name} succeeded${by}: the new model answers 100%; finalize pending`;
    case "canary_withdrawn":
      return `${name}: canary traffic withdrawn (the canary answers another model)`;
    case "finalize_not_verified":
      return `${name}: finalize not verified; back to Succeeded`;
    case "finalized":
      return `${name} finalized: stable serves the new model; archived`;
    default:
      return `${name}: ${type}`;
  }
}

/** A gate reading Error on all traffic, tick after tick. */
export interface GateStreak {
  gate: string;
  /** Engine-clock ms of the first evaluation in Error. */
  since: number;
  notified: boolean;
  reason: string;
}

interface StreakUpdate {
  next: Map<string, GateStreak>;
  events: NotificationPayload[];
  changed: boolean;
}

/**
 * Follows the rollout's gates in Error from its latest evaluation: a gate that has read Error on all traffic
 * for `afterMs` is announced once (gate_error), and again when it reads anything else (gate_recovered). An
 * ended rollout has no gates to follow.
 */
export function gateStreaks(rollout: Rollout, previous: ReadonlyMap<string, GateStreak>, afterMs: number, ctx: EventContext): StreakUpdate {
  const engine = rollout.engine;
  const evaluation: Evaluation | null = engine?.lastEvaluation ?? null;
  const next = new Map<string, GateStreak>();
  const events: NotificationPayload[] = [];
  if (!engine || !evaluation || isTerminal(engine.state.phase) || engine.state.phase === Phase.Pending) {
    return { next, events, changed: previous.size > 0 };
  }
  let changed = false;
  const inError = new Map(evaluation.measurements.filter((m) => m.segment === null && m.status === MeasurementStatus.Error).map((m) => [m.gate, m.reason]));
  for (const [gate, reason] of inError) {
    const was = previous.get(gate);
    const streak: GateStreak = was ? { ...was, reason } : { gate, since: evaluation.at, notified: false, reason };
    if (!was) changed = true;
    if (!streak.notified && evaluation.at - streak.since >= afterMs) {
      streak.notified = true;
      changed = true;
      events.push(gatePayload(rollout, engine, evaluation, streak, "gate_error", ctx));
    }
    next.set(gate, streak);
  }
  for (const [gate, streak] of previous) {
    if (inError.has(gate)) continue;
    changed = true;
    if (streak.notified) {
      const now = evaluation.measurements.find((m) => m.gate === gate && m.segment === null);
      events.push(
        gatePayload(
          rollout,
          engine,
          evaluation,
          { ...streak, reason: now ? now.reason : "the gate is no longer evaluated in this stage" },
          "gate_recovered",
          ctx,
        ),
      );
    }
  }
  return { next, events, changed };
}

function gatePayload(
  rollout: Rollout,
  engine: ManagedState,
  evaluation: Evaluation,
  streak: GateStreak,
  type: "gate_error" | "gate_recovered",
  ctx: EventContext,
): NotificationPayload {
  const state = engine.state;
  const spec = state.spec;
  const seconds = Math.round((evaluation.at - streak.since) / 1000);
  const summary =
    type === "gate_error"
      ? `${rollout.spec.name}: gate ${streak.gate} cannot be measured (Error for ${seconds} s); the stage holds`
      : `${rollout.spec.name}: gate ${streak.gate} measures again after ${seconds} s in Error`;
  return {
    id: `${idPrefix(rollout)}:${type}:${streak.gate}:${streak.since}`,
    type: `rollout.${type}`,
    at: new Date(evaluation.at).toISOString(),
    summary,
    rollout: rollout.spec.name,
    phase: state.phase,
    previousPhase: state.phase,
    stage: evaluation.stage ? { ...evaluation.stage, of: spec.stages.length } : null,
    weights: { canaryPercent: rollout.canaryPercent, shadowPercent: rollout.shadowPercent },
    actor: "engine",
    decision: null,
    reason: clip(streak.reason),
    owner: spec.owner,
    rollbackCondition: spec.rollbackCondition,
    models: spec.models ? { stable: spec.models.stable, canary: spec.models.canary } : null,
    variants: variantsOf(rollout, ctx.upstreams),
    failingGate: null,
    worstSegment: null,
    gate: { name: streak.gate, errorSince: new Date(streak.since).toISOString(), reason: clip(streak.reason, 600) },
    pending: pendingOf(rollout),
    evidence: compactEvidence(evaluation.measurements),
    window: null,
    links: linksOf(ctx.publicUrl, rollout.spec.name),
  };
}
