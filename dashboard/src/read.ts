/**
 * One rollout as the dashboard shows it, read tolerantly from what the controller answers: the stream's
 * summary (GET /v1/events?rollout=NAME: plan, latest evaluation, what needs attention), the view
 * (GET /v1/rollouts/{name}), the report and history of a managed rollout, and /stats. Newer controllers may
 * add fields (a live `evaluation` in the view with samples needed and an ETA, the accepted spec with its
 * stages, a `pending` step, an archive mark): they are used when present. A field that is missing makes the
 * page say less, never break. Every guess about those shapes is in this file. Pure.
 */
import { inUnit, num as fmtNum, percent } from "./format.ts";
import { modelsOf, observedWindowOf, type ObservedWindow } from "./read-models.ts";

import { arr, field, num, str } from "./fields.ts";

export { arr, field, num, str };
const obj = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

/** Phases in which the engine no longer judges gates (older and newer controllers' names). */
const ENDED = new Set(["Succeeded", "Finalizing", "Finalized", "RolledBack", "Failed"]);

export type Verdict = "Passed" | "Failed" | "Inconclusive" | "Error" | "Unknown";
const RANK: Record<Verdict, number> = { Failed: 0, Error: 1, Inconclusive: 2, Unknown: 3, Passed: 4 };

export function verdictOf(value: unknown): Verdict {
  const text = String(value ?? "").toLowerCase();
  if (text === "passed" || text === "pass") return "Passed";
  if (text === "failed" || text === "fail") return "Failed";
  if (text === "inconclusive") return "Inconclusive";
  if (text === "error") return "Error";
  return "Unknown";
}

export interface GateRow {
  gate: string;
  slice: string;
  verdict: Verdict;
  unit: string;
  stable: number | null;
  candidate: number | null;
  candidateName: string;
  /** Candidate against stable in the limit's terms: a difference, a ratio, or nothing for an absolute limit. */
  comparison: string;
  limit: string;
  interval: string;
  samples: { stable: number | null; candidate: number | null };
  needed: { stable: number | null; candidate: number | null } | null;
  reason: string;
  severity: number;
}

export interface StageCell {
  name: string;
  state: "done" | "current" | "ended" | "pending";
}

export interface TimelineEntry {
  at: string | null;
  kind: string;
  from: string | null;
  to: string | null;
  stage: string | null;
  actor: string | null;
  reason: string;
  evidence: GateRow[];
}

export interface MixRow {
  dimension: string;
  pValue: number | null;
  distance: number | null;
  mismatch: boolean;
  reason: string;
}

export type ActionName = "promote" | "pause" | "resume" | "rollback" | "undo" | "fail" | "approve" | "reject" | "finalize";

export interface Picture {
  name: string;
  managed: boolean;
  phase: string | null;
  revision: number | null;
  owner: string | null;
  rollbackCondition: string | null;
  pathPrefix: string | null;
  stickyHeader: string | null;
  canaryPercent: number | null;
  shadowPercent: number | null;
  observedCanaryPercent: number | null;
  /** Over which window the observed share was measured (read-models.ts). */
  observedWindow: ObservedWindow | null;
  /** Which model is which, in the controller's words, and short ("v1 → v2"). */
  models: string | null;
  modelsShort: string | null;
  stage: { index: number; name: string } | null;
  stages: StageCell[];
  stagesComplete: boolean;
  /** Start of the current stage (ms) and the time paused in it: time in stage = now - start - paused. */
  stageStartedAt: number | null;
  pausedSecondsInStage: number;
  minDurationSeconds: number | null;
  stageRequests: number | null;
  minRequests: number | null;
  holding: string[];
  etaSeconds: number | null;
  gates: GateRow[];
  gatesSource: "live evaluation" | "last decision" | null;
  gatesAt: string | null;
  trafficMix: MixRow[];
  timeline: TimelineEntry[];
  why: string | null;
  pending: string | null;
  archived: string | null;
  createdAt: string | null;
  actions: ActionName[];
  /** Gate name -> kind (proportion, quantile, external, promql, ...) where the controller says. */
  gateKinds: Record<string, string>;
}

export interface Sources {
  summary?: unknown;
  view?: unknown;
  report?: unknown;
  history?: unknown;
}

function sliceOf(value: unknown): string {
  if (typeof value === "string" && value !== "") return value;
  const dimension = str(field(value, "dimension"));
  return dimension ? `${dimension}=${String(field(value, "value"))}` : "overall";
}

function pair(value: unknown): { stable: number | null; candidate: number | null } | null {
  if (typeof value === "number") return { stable: null, candidate: value };
  const stable = num(field(value, "stable"));
  const candidate = num(field(value, "candidate")) ?? num(field(value, "canary")) ?? num(field(value, "shadow"));
  return stable === null && candidate === null ? null : { stable, candidate };
}

const LIMIT_WORDS: Record<string, string> = { maximum: "≤", minimum: "≥", maxDelta: "Δ ≤", minDelta: "Δ ≥", maxRatio: "ratio ≤" };

function intervalText(interval: unknown, unit: string, ratio: boolean): string {
  const lower = num(field(interval, "lower"));
  const upper = num(field(interval, "upper"));
  if (lower === null && upper === null) return "–";
  const show = (v: number | null, open: string) => (v === null ? open : ratio ? `×${fmtNum(v)}` : inUnit(v, unit));
  return `[${show(lower, "−∞")}, ${show(upper, "∞")}]`;
}

/**
 * One gate and slice. Two shapes: the engine's measurement (the stream's evaluation, decisions: threshold,
 * sampleSizes, intervals, severity) and the view's live evaluation (value, samples, stableSamples, needed
 * {pass, detect}, interval, comparison; no limit). `engine`, when given, is the engine's measurement of the
 * same gate and slice, for what the other shape lacks.
 */
export function gateRow(m: unknown, engine?: unknown): GateRow {
  const unit = str(field(m, "unit")) ?? str(field(engine, "unit")) ?? "";
  const stable = num(field(m, "stableValue")) ?? num(field(m, "stable"));
  const candidate = num(field(m, "candidateValue")) ?? num(field(m, "value")) ?? num(field(m, "candidate"));
  const threshold = field(m, "threshold") ?? field(m, "limit") ?? field(engine, "threshold");
  const kind = str(field(threshold, "kind")) ?? (typeof threshold === "string" ? threshold.split(/\s+/)[0] : null);
  const value = num(field(threshold, "value")) ?? (typeof threshold === "string" ? Number(threshold.split(/\s+/)[1]) : null);
  const ratio = kind === "maxRatio";
  const relative = kind === "maxDelta" || kind === "minDelta" || ratio;
  let comparison = "";
  if (stable !== null && candidate !== null) {
    if (ratio) comparison = stable !== 0 ? `×${fmtNum(candidate / stable)}` : "–";
    else if (relative || kind === null) {
      const delta = candidate - stable;
      comparison = `${delta >= 0 ? "+" : "−"}${unit === "ratio" ? percent(Math.abs(delta)).replace("%", " pp") : inUnit(Math.abs(delta), unit)}`;
    }
  }
  let limit = "–";
  if (kind !== null) {
    const shown = value === null || !Number.isFinite(value) ? "" : ratio ? `×${fmtNum(value)}` : inUnit(value, unit);
    limit = `${LIMIT_WORDS[kind] ?? kind} ${shown}`.trim();
  }
  const intervals = field(m, "intervals") ?? field(engine, "intervals");
  const interval = relative ? (field(m, "comparison") ?? field(intervals, "comparison")) : (field(m, "interval") ?? field(intervals, "candidate"));
  const samples =
    pair(field(m, "sampleSizes")) ??
    (typeof field(m, "samples") === "number" ? { stable: num(field(m, "stableSamples")), candidate: num(field(m, "samples")) } : pair(field(m, "samples")));
  const neededRaw = field(m, "needed") ?? field(m, "samplesNeeded") ?? field(m, "requiredSamples") ?? field(m, "sampleSizesNeeded");
  const neededPass = num(field(neededRaw, "pass"));
  return {
    gate: str(field(m, "gate")) ?? str(field(m, "name")) ?? "?",
    slice: sliceOf(field(m, "segment") ?? field(m, "slice")),
    verdict: verdictOf(field(m, "status") ?? field(m, "verdict")),
    unit,
    stable,
    candidate,
    candidateName: (typeof field(m, "candidate") === "string" ? str(field(m, "candidate")) : null) ?? str(field(engine, "candidate")) ?? "canary",
    comparison,
    limit,
    interval: intervalText(interval, unit, ratio),
    samples: samples ?? { stable: null, candidate: null },
    needed: neededPass !== null ? { stable: null, candidate: neededPass } : pair(neededRaw),
    reason: str(field(m, "reason")) ?? "",
    severity: num(field(m, "severity")) ?? num(field(engine, "severity")) ?? 0,
  };
}

export function worstFirst(a: { verdict: Verdict; severity: number; slice: string }, b: { verdict: Verdict; severity: number; slice: string }): number {
  return (
    RANK[a.verdict] - RANK[b.verdict] ||
    b.severity - a.severity ||
    Number(a.slice !== "overall") - Number(b.slice !== "overall") ||
    a.slice.localeCompare(b.slice)
  );
}

export const verdictRank = (v: Verdict) => RANK[v];

function stageName(item: unknown): string {
  if (typeof item === "number") return `${item}%`;
  if (typeof item === "string") return item;
  return str(field(item, "name")) ?? (field(item, "shadow") === true ? "shadow" : `${String(field(item, "canaryPercent") ?? "?")}%`);
}

function planOf(summary: unknown, view: unknown): unknown[] | null {
  for (const candidate of [field(summary, "plan"), field(view, "plan", "stages"), field(view, "spec", "stages"), field(view, "stages")]) {
    if (Array.isArray(candidate) && candidate.length > 0) return candidate;
  }
  return null;
}

function secondsOf(value: unknown, now: number): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  const seconds = num(field(value, "seconds")) ?? num(field(value, "etaSeconds"));
  if (seconds !== null) return seconds;
  const at = typeof value === "string" ? Date.parse(value) : NaN;
  return Number.isFinite(at) ? Math.max(0, (at - now) / 1000) : null;
}

function textOf(value: unknown): string | null {
  if (typeof value === "string") return value || null;
  if (typeof value !== "object" || value === null) return null;
  return str(field(value, "description")) ?? str(field(value, "message")) ?? str(field(value, "reason")) ?? str(field(value, "step")) ?? JSON.stringify(value);
}

export function actionsFor(managed: boolean, phase: string | null, canaryPercent: number | null, shadowPercent: number | null): ActionName[] {
  if (!managed) return (canaryPercent ?? 0) > 0 || (shadowPercent ?? 0) > 0 ? ["rollback"] : [];
  switch (phase) {
    case "Pending":
      return ["promote", "rollback", "fail"];
    case "Shadowing":
    case "Canary":
      return ["promote", "pause", "rollback", "fail"];
    case "Baking":
      return ["promote", "pause", "undo", "rollback", "fail"];
    case "Paused":
      return ["resume", "rollback", "fail"];
    case "AwaitingReview":
      return ["approve", "reject", "undo", "rollback", "fail"];
    case "Succeeded":
      // Newer controllers: the old stable is kept until someone finalizes; undo is still a routing change.
      return ["finalize", "undo"];
    default:
      return [];
  }
}

export function buildPicture(sources: Sources, now: number): Picture {
  const { summary, view, report, history } = sources;
  const phase = str(field(view, "phase")) ?? str(field(summary, "phase"));
  const managed = field(view, "managed") === true || field(summary, "managed") === true;
  const stageIndex = num(field(view, "stage", "index")) ?? num(field(summary, "stage", "index"));
  const stage =
    stageIndex !== null ? { index: stageIndex, name: str(field(view, "stage", "name")) ?? str(field(summary, "stage", "name")) ?? `${stageIndex + 1}` } : null;
  const plan = planOf(summary, view);
  const timelineRaw = arr(field(report, "timeline"));
  const decisions = arr(field(history, "decisions"));

  // The live evaluation: the view's own (newer controllers), else the stream's.
  const evaluation = field(view, "evaluation") ?? field(summary, "evaluation") ?? null;
  const live = arr(field(evaluation, "measurements") ?? field(evaluation, "gates") ?? field(evaluation, "slices"));
  let gates: GateRow[] = [];
  let gatesSource: Picture["gatesSource"] = null;
  let gatesAt: string | null = null;
  const ended = ENDED.has(phase ?? "");
  const lastWithMeasurements = [...decisions].reverse().find((d) => arr(field(d, "measurements")).length > 0);
  // The engine's own measurements (the stream's), by gate and slice, fill in what the view's shape lacks.
  const engineMeasurements = new Map<string, unknown>();
  for (const em of arr(field(summary, "evaluation", "measurements"))) engineMeasurements.set(`${str(field(em, "gate"))}|${sliceOf(field(em, "segment"))}`, em);
  const withEngine = (m: unknown) => gateRow(m, engineMeasurements.get(`${str(field(m, "gate"))}|${sliceOf(field(m, "segment") ?? field(m, "slice"))}`));
  if (live.length > 0 && !ended) {
    gates = live.map(withEngine);
    gatesSource = "live evaluation";
    const at = num(field(evaluation, "at"));
    gatesAt = at !== null ? new Date(at).toISOString() : str(field(evaluation, "at"));
  } else if (lastWithMeasurements) {
    gates = arr(field(lastWithMeasurements, "measurements")).map(gateRow);
    gatesSource = "last decision";
    const at = num(field(lastWithMeasurements, "at"));
    gatesAt = at !== null ? new Date(at).toISOString() : null;
  } else if (live.length > 0) {
    gates = live.map(withEngine);
    gatesSource = "live evaluation";
  }

  const holdItems = arr(field(evaluation, "holds") ?? field(evaluation, "blocking") ?? field(evaluation, "holding"));
  const holding = ended
    ? []
    : holdItems.map((h) => (typeof h === "string" ? h : (str(field(h, "text")) ?? str(field(h, "reason"))))).filter((h): h is string => h !== null);
  const eta = secondsOf(
    field(evaluation, "secondsToDecision") ??
      field(evaluation, "etaSeconds") ??
      field(evaluation, "eta") ??
      field(evaluation, "expectedDecisionAt") ??
      field(evaluation, "expectedDecisionSeconds"),
    now,
  );

  const planStage = plan && stage ? plan[stage.index] : undefined;
  const started = Date.parse(str(field(summary, "stageStartedAt")) ?? "");
  const paused = num(field(summary, "pausedSecondsInStage")) ?? 0;
  let stageRequests: number | null = null;
  for (const g of gates)
    if (g.slice === "overall" && g.samples.candidate !== null && gatesSource === "live evaluation")
      stageRequests = Math.max(stageRequests ?? 0, g.samples.candidate);

  const timeline: TimelineEntry[] = timelineRaw.map((t, i) => {
    const matching =
      decisions.length === timelineRaw.length
        ? decisions[i]
        : decisions.find((d) => field(d, "kind") === field(t, "kind") && new Date(num(field(d, "at")) ?? 0).toISOString() === field(t, "at"));
    return {
      at: str(field(t, "at")),
      kind: str(field(t, "kind")) ?? "?",
      from: str(field(t, "from")),
      to: str(field(t, "to")),
      stage: str(field(t, "stage")),
      actor: str(field(t, "actor")),
      reason: str(field(t, "reason")) ?? "",
      evidence: arr(field(matching, "measurements")).map(gateRow).sort(worstFirst),
    };
  });

  const canaryPercent = num(field(view, "canaryPercent")) ?? num(field(summary, "canaryPercent"));
  const shadowPercent = num(field(view, "shadowPercent")) ?? num(field(summary, "shadowPercent"));
  return {
    name: str(field(view, "name")) ?? str(field(summary, "name")) ?? str(field(report, "rollout")) ?? "?",
    managed,
    phase,
    revision: num(field(view, "revision")) ?? num(field(summary, "revision")),
    owner: str(field(view, "spec", "owner")) ?? str(field(view, "owner")) ?? str(field(summary, "owner")) ?? str(field(report, "owner")),
    rollbackCondition: str(field(view, "spec", "rollbackCondition")) ?? str(field(summary, "rollbackCondition")) ?? str(field(report, "rollbackCondition")),
    pathPrefix: str(field(view, "spec", "match", "pathPrefix")) ?? str(field(summary, "pathPrefix")),
    stickyHeader: str(field(view, "spec", "stickyKey", "header")),
    canaryPercent,
    shadowPercent,
    observedCanaryPercent:
      num(field(view, "observedCanaryPercent")) ?? num(field(evaluation, "observedCanaryPercent")) ?? num(field(summary, "observedCanaryPercent")),
    observedWindow: observedWindowOf(evaluation, phase),
    ...modelsOf(view, summary),
    stage,
    stages: stageCells(plan, timeline, stage, phase),
    stagesComplete: plan !== null,
    stageStartedAt: Number.isFinite(started) && !ended ? started : null,
    pausedSecondsInStage: paused,
    minDurationSeconds: num(field(planStage, "minDurationSeconds")),
    stageRequests,
    minRequests: num(field(planStage, "minRequests")),
    holding,
    etaSeconds: eta,
    gates: gates.sort(worstFirst),
    gatesSource,
    gatesAt,
    trafficMix: arr(field(evaluation, "trafficMix")).map((t) => ({
      dimension: str(field(t, "dimension")) ?? "?",
      pValue: num(field(t, "pValue")),
      distance: num(field(t, "totalVariation")),
      mismatch: field(t, "mismatch") === true,
      reason: str(field(t, "reason")) ?? "",
    })),
    timeline,
    why: str(field(report, "why")) ?? str(field(summary, "lastDecision", "reason")),
    pending: textOf(field(view, "pending")),
    archived: str(field(view, "archivedAt")) ?? str(field(view, "archived", "at")) ?? (field(view, "archived") === true ? "yes" : null),
    createdAt: str(field(view, "createdAt")) ?? str(field(summary, "createdAt")),
    actions: actionsFor(managed, phase, canaryPercent, shadowPercent),
    gateKinds: Object.fromEntries(Object.entries(obj(field(summary, "gateKinds"))).filter(([, v]) => typeof v === "string")) as Record<string, string>,
  };
}

/** Seconds in the current stage at `now`, not counting time paused; null when unknown. */
export function timeInStage(p: Picture, now: number): number | null {
  return p.stageStartedAt === null ? null : Math.max(0, (now - p.stageStartedAt) / 1000 - p.pausedSecondsInStage);
}

function stageCells(plan: unknown[] | null, timeline: TimelineEntry[], stage: Picture["stage"], phase: string | null): StageCell[] {
  let names = plan ? plan.map(stageName) : [];
  if (!plan) {
    for (const t of timeline) if (t.stage && !names.includes(t.stage)) names.push(t.stage);
    if (stage && !names.includes(stage.name)) names = [...names, stage.name];
  }
  const at = stage === null ? -1 : plan ? stage.index : names.indexOf(stage.name);
  const terminal = ENDED.has(phase ?? "");
  return names.map((name, i) => {
    if (phase === "Succeeded" || phase === "Finalizing" || phase === "Finalized") return { name, state: "done" };
    if (i === at) return { name, state: terminal ? "ended" : "current" };
    return { name, state: i < at ? "done" : "pending" };
  });
}
