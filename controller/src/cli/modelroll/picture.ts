/**
 * One rollout as `modelroll get` shows it, read tolerantly from what the controller answers: the view
 * (GET /v1/rollouts/{name}) and, for a managed rollout, its report (owner, rollback condition, timeline, the
 * gates of the last decision per stage). Fields newer controllers add are used when present: the accepted
 * spec with its stages, a live `evaluation` (per gate and slice, samples vs needed, an ETA), a `pending` next
 * step after Succeeded, an archive mark. A field that is absent makes the picture say less, never fail.
 * Every guess about those newer shapes is in this file. Pure.
 */
// Not engine/index.ts: loading the whole engine would add about a second to every modelroll command.
import { formatValue } from "../../engine/measurement.ts";
import { arr, field, num, str } from "./format.ts";

export type Verdict = "Passed" | "Failed" | "Inconclusive" | "Error" | "Unknown";

export interface GateSlice {
  gate: string;
  /** "overall" or "dimension=value". */
  slice: string;
  verdict: Verdict;
  stable: string;
  candidate: string;
  limit: string | null;
  samples: { stable: number | null; candidate: number | null };
  /** Samples the gate needs to decide, where the engine says. */
  needed: { stable: number | null; candidate: number | null } | null;
  reason: string | null;
  severity: number;
  /** Seconds to a decision for this slice, where the engine says. */
  etaSeconds: number | null;
}

interface StageLine {
  name: string;
  state: "done" | "current" | "ended" | "pending";
}

export interface Picture {
  name: string;
  managed: boolean;
  phase: string | null;
  revision: number | null;
  stage: { index: number; name: string } | null;
  /** Number of stages in the plan, when the controller returns the plan. */
  stageCount: number | null;
  canaryPercent: number | null;
  shadowPercent: number | null;
  observedCanaryPercent: number | null;
  /** Over which window the observed share was measured: the stage's window, its length, and whether it is over. */
  observedWindow: { stage: string | null; seconds: number | null; state: "live" | "ended" } | null;
  /** Which model is which, in the controller's words ("stable v1 at 127.0.0.1:9001 · canary v2 at ..."). */
  models: string | null;
  /** The same, short, for the list: "v1 → v2", or the upstreams. */
  modelsShort: string | null;
  owner: string | null;
  rollbackCondition: string | null;
  match: string | null;
  stickyHeader: string | null;
  stages: StageLine[];
  /** False when the plan is not known and `stages` lists only the stages seen so far. */
  stagesComplete: boolean;
  gates: GateSlice[];
  /** Where the gates come from: the engine's live evaluation, or the last decision recorded in the stage. */
  gatesSource: "live evaluation" | "last decision" | null;
  /** What holds the stage, in the engine's words. */
  holding: string[];
  etaSeconds: number | null;
  /** The latest decision's reason (why it ended, for an ended rollout). */
  why: string | null;
  pending: string | null;
  /** What the spec leaves unprotected (the view's warnings), as "POINTER reason". */
  warnings: string[];
  /** When it was archived ("yes" when the controller does not say when), or null. */
  archived: string | null;
  createdAt: string | null;
  updatedAt: string | null;
}

// The release is decided: Succeeded (and what follows it: finalize) or ended on stable.
const TERMINAL = new Set(["Succeeded", "Finalizing", "Finalized", "RolledBack", "Failed"]);
const SUCCEEDED = new Set(["Succeeded", "Finalizing", "Finalized"]);
export const isSuccessPhase = (phase: string | null | undefined) => typeof phase === "string" && SUCCEEDED.has(phase);
export const isTerminalPhase = (phase: string | null | undefined): phase is string => phase !== null && phase !== undefined && TERMINAL.has(phase);
export const isActivePhase = (phase: string | null | undefined) => typeof phase === "string" && !TERMINAL.has(phase);

const VERDICT_RANK: Record<Verdict, number> = { Failed: 0, Error: 1, Inconclusive: 2, Unknown: 3, Passed: 4 };

/** Worst first: Failed, Error, Inconclusive, Passed; then the larger severity; then overall before segments. */
export function worstFirst(a: GateSlice, b: GateSlice): number {
  return (
    VERDICT_RANK[a.verdict] - VERDICT_RANK[b.verdict] ||
    b.severity - a.severity ||
    Number(a.slice !== "overall") - Number(b.slice !== "overall") ||
    a.slice.localeCompare(b.slice)
  );
}

function verdictOf(value: unknown): Verdict {
  const text = String(value ?? "").toLowerCase();
  if (text === "passed" || text === "pass") return "Passed";
  if (text === "failed" || text === "fail") return "Failed";
  if (text === "inconclusive") return "Inconclusive";
  if (text === "error") return "Error";
  return "Unknown";
}

type Unit = "ratio" | "ms" | "";
const unitOf = (value: unknown): Unit => (value === "ratio" || value === "ms" ? value : "");

function sliceOf(value: unknown): string {
  if (typeof value === "string" && value !== "") return value;
  const dimension = str(field(value, "dimension"));
  return dimension ? `${dimension}=${String(field(value, "value"))}` : "overall";
}

function limitOf(threshold: unknown, unit: Unit): string | null {
  let kind: string | null = null;
  let value: number | null = null;
  if (typeof threshold === "string") {
    const [k, v] = threshold.split(/\s+/);
    kind = k ?? null;
    value = v !== undefined && v !== "" ? Number(v) : null;
  } else {
    kind = str(field(threshold, "kind"));
    value = num(field(threshold, "value"));
  }
  if (kind === null) return null;
  if (value === null || !Number.isFinite(value)) return kind;
  if (kind === "maxRatio") return `${kind} ×${value}`;
  return `${kind} ${formatValue(value, unit)}`;
}

function pair(value: unknown): { stable: number | null; candidate: number | null } | null {
  if (typeof value === "number") return { stable: null, candidate: value };
  const stable = num(field(value, "stable"));
  const candidate = num(field(value, "candidate")) ?? num(field(value, "canary")) ?? num(field(value, "shadow"));
  return stable === null && candidate === null ? null : { stable, candidate };
}

/** The live evaluation's samples: the candidate's, and stable's beside them. */
function samplePair(candidate: unknown, stable: unknown): { stable: number | null; candidate: number | null } | null {
  if (typeof candidate !== "number") return pair(candidate);
  return { stable: num(stable), candidate };
}

/** The candidate samples a gate needs: to reach a verdict (pass), else to be able to detect harm (detect). */
function neededOf(value: unknown): { stable: number | null; candidate: number | null } | null {
  if (typeof value !== "object" || value === null || !("pass" in value || "detect" in value)) return pair(value);
  const candidate = num(field(value, "pass")) ?? num(field(value, "detect"));
  return candidate === null ? null : { stable: null, candidate };
}

/** Seconds from a number of seconds, an { seconds } object, or an ISO time (from now). */
function secondsOf(value: unknown, now: number): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  const seconds = num(field(value, "seconds")) ?? num(field(value, "etaSeconds"));
  if (seconds !== null) return seconds;
  const at = typeof value === "string" ? Date.parse(value) : NaN;
  return Number.isFinite(at) ? Math.max(0, (at - now) / 1000) : null;
}

function gateSlice(m: unknown, now: number): GateSlice {
  const unit = unitOf(field(m, "unit"));
  const value = (v: unknown) => (typeof v === "number" ? formatValue(v, unit) : "n/a");
  const samples = pair(field(m, "sampleSizes")) ?? samplePair(field(m, "samples"), field(m, "stableSamples")) ?? { stable: null, candidate: null };
  return {
    gate: str(field(m, "gate")) ?? str(field(m, "name")) ?? "?",
    slice: sliceOf(field(m, "segment") ?? field(m, "slice")),
    verdict: verdictOf(field(m, "status") ?? field(m, "verdict")),
    stable: value(field(m, "stableValue") ?? field(m, "stable")),
    candidate: value(field(m, "candidateValue") ?? field(m, "value") ?? field(m, "candidate")),
    limit: limitOf(field(m, "threshold") ?? field(m, "limit"), unit),
    samples,
    needed: neededOf(field(m, "needed")) ?? pair(field(m, "samplesNeeded") ?? field(m, "requiredSamples") ?? field(m, "sampleSizesNeeded")),
    reason: str(field(m, "reason")),
    severity: num(field(m, "severity")) ?? 0,
    etaSeconds: secondsOf(field(m, "etaSeconds") ?? field(m, "eta"), now),
  };
}

function stageName(item: unknown): string {
  if (typeof item === "number") return `${item}%`;
  if (typeof item === "string") return item;
  return str(field(item, "name")) ?? (field(item, "shadow") === true ? "shadow" : `${String(field(item, "canaryPercent") ?? "?")}%`);
}

function planOf(view: unknown): unknown[] | null {
  for (const candidate of [field(view, "spec", "stages"), field(view, "stages"), field(view, "plan", "stages")]) {
    if (Array.isArray(candidate) && candidate.length > 0) return candidate;
  }
  return null;
}

function textOf(value: unknown): string | null {
  if (typeof value === "string") return value || null;
  if (typeof value !== "object" || value === null) return null;
  return (
    str(field(value, "description")) ??
    str(field(value, "message")) ??
    str(field(value, "reason")) ??
    str(field(value, "step")) ??
    str(field(value, "action")) ??
    str(field(value, "next")) ??
    JSON.stringify(value)
  );
}

function archivedOf(view: unknown): string | null {
  const at =
    str(field(view, "archived", "at")) ?? str(field(view, "archivedAt")) ?? str(field(view, "archive", "at")) ?? str(field(view, "archive", "archivedAt"));
  if (at) return at;
  if (field(view, "archived") === true || (typeof field(view, "archive") === "object" && field(view, "archive") !== null)) return "yes";
  return null;
}

/** The picture of one rollout from its view and, when fetched, its report (JSON of unknown vintage). */
export function buildPicture(view: unknown, report: unknown, now: number): Picture {
  const phase = str(field(view, "phase"));
  const stageIndex = num(field(view, "stage", "index"));
  const stage = stageIndex !== null ? { index: stageIndex, name: str(field(view, "stage", "name")) ?? `${stageIndex + 1}` } : null;
  const plan = planOf(view);
  const timeline = arr(field(report, "timeline"));

  const stages = stageLines(plan, timeline, stage, phase);
  const evaluation = field(view, "evaluation");
  const liveMeasurements = arr(field(evaluation, "measurements") ?? field(evaluation, "gates") ?? field(evaluation, "slices"));
  let gates: GateSlice[] = [];
  let gatesSource: Picture["gatesSource"] = null;
  if (liveMeasurements.length > 0) {
    gates = liveMeasurements.map((m) => gateSlice(m, now));
    gatesSource = "live evaluation";
  } else if (stage) {
    const recorded = arr(field(report, "stages")).find((s) => field(s, "stage") === stage.name);
    gates = arr(field(recorded, "gates")).map((m) => gateSlice(m, now));
    if (gates.length > 0) gatesSource = "last decision";
  }

  const holds = arr(field(evaluation, "holds"))
    .map((h) => str(field(h, "text")))
    .filter((t): t is string => t !== null);
  const holding =
    holds.length > 0 ? holds : arr(field(evaluation, "blocking") ?? field(evaluation, "holding")).filter((b): b is string => typeof b === "string");
  if (holding.length === 0 && isActivePhase(phase) && stage) {
    const lastInStage = [...timeline].reverse().find((t) => field(t, "stage") === stage.name);
    const kind = str(field(lastInStage, "kind"));
    if (kind === "held" || kind === "deadlinePassed" || kind === "trafficMixWarning") holding.push(str(field(lastInStage, "reason")) ?? kind);
  }
  const eta =
    secondsOf(
      field(evaluation, "secondsToDecision") ??
        field(evaluation, "etaSeconds") ??
        field(evaluation, "eta") ??
        field(evaluation, "expectedDecisionAt") ??
        field(evaluation, "expectedDecisionSeconds"),
      now,
    ) ?? (gates.some((g) => g.etaSeconds !== null) ? Math.max(...gates.map((g) => g.etaSeconds ?? 0)) : null);

  return {
    name: str(field(view, "name")) ?? str(field(report, "rollout")) ?? "?",
    managed: field(view, "managed") === true,
    phase,
    revision: num(field(view, "revision")),
    stage,
    stageCount: plan?.length ?? null,
    canaryPercent: num(field(view, "canaryPercent")),
    shadowPercent: num(field(view, "shadowPercent")),
    observedCanaryPercent: observedOf(view, evaluation, gates, phase),
    observedWindow: observedWindowOf(evaluation, phase),
    ...modelsOf(view, report),
    owner: str(field(view, "spec", "owner")) ?? str(field(view, "owner")) ?? str(field(report, "owner")),
    rollbackCondition: str(field(view, "spec", "rollbackCondition")) ?? str(field(view, "rollbackCondition")) ?? str(field(report, "rollbackCondition")),
    match: str(field(view, "spec", "match", "pathPrefix")),
    stickyHeader: str(field(view, "spec", "stickyKey", "header")),
    stages,
    stagesComplete: plan !== null,
    gates: [...gates].sort(worstFirst),
    gatesSource,
    holding,
    etaSeconds: eta,
    why: str(field(report, "why")) ?? str(field(timeline.at(-1), "reason")),
    pending: textOf(field(view, "pending")),
    warnings: arr(field(view, "warnings")).map((w) => `${str(field(w, "path")) ?? ""} ${str(field(w, "reason")) ?? ""}`.trim()),
    archived: archivedOf(view),
    createdAt: str(field(view, "createdAt")),
    updatedAt: str(field(view, "updatedAt")),
  };
}

function stageLines(plan: unknown[] | null, timeline: unknown[], stage: Picture["stage"], phase: string | null): StageLine[] {
  const names = plan ? plan.map(stageName) : seenStages(timeline, stage);
  const currentAt = stage === null ? -1 : plan ? stage.index : names.indexOf(stage.name);
  return names.map((name, i): StageLine => {
    if (isSuccessPhase(phase)) return { name, state: "done" };
    if (i === currentAt) return { name, state: isTerminalPhase(phase) ? "ended" : "current" };
    return { name, state: i < currentAt ? "done" : "pending" };
  });
}

/** Without the plan: the stages the timeline has entered, in order, and the current one. */
function seenStages(timeline: unknown[], stage: Picture["stage"]): string[] {
  const names: string[] = [];
  for (const entry of timeline) {
    const name = str(field(entry, "stage"));
    if (name && !names.includes(name)) names.push(name);
  }
  if (stage && !names.includes(stage.name)) names.push(stage.name);
  return names;
}

/**
 * The canary's real share of requests: as the controller reports it, or from the current stage's overall
 * sample sizes (requests per variant in the stage's window) in a canary stage.
 */
function observedOf(view: unknown, evaluation: unknown, gates: GateSlice[], phase: string | null): number | null {
  const reported =
    num(field(view, "observedCanaryPercent")) ??
    num(field(view, "observed", "canaryPercent")) ??
    num(field(evaluation, "observedCanaryPercent")) ??
    num(field(evaluation, "observed", "canaryPercent"));
  if (reported !== null) return reported;
  if (phase !== "Canary" && phase !== "Baking") return null;
  let best: { stable: number; candidate: number } | null = null;
  for (const g of gates) {
    if (g.slice !== "overall" || g.samples.stable === null || g.samples.candidate === null) continue;
    if (!best || g.samples.stable + g.samples.candidate > best.stable + best.candidate) best = { stable: g.samples.stable, candidate: g.samples.candidate };
  }
  if (!best || best.stable + best.candidate === 0) return null;
  return (best.candidate / (best.stable + best.candidate)) * 100;
}

/** The stage window the evaluation's observed share covers: from windowStartedAt to the evaluation's time. */
function observedWindowOf(evaluation: unknown, phase: string | null): Picture["observedWindow"] {
  if (num(field(evaluation, "observedCanaryPercent")) === null) return null;
  const from = Date.parse(str(field(evaluation, "windowStartedAt")) ?? "");
  const to = Date.parse(str(field(evaluation, "at")) ?? "");
  return {
    stage: str(field(evaluation, "stage", "name")),
    seconds: Number.isFinite(from) && Number.isFinite(to) ? Math.max(0, (to - from) / 1000) : null,
    // A paused rollout is still evaluated (a failed gate still rolls it back); an ended one is not.
    state: isTerminalPhase(phase) ? "ended" : "live",
  };
}

/** One variant, short: its declared version, else its hosts, else "?". */
function variantShort(v: unknown): string {
  const model = str(field(v, "model"));
  if (model) return model;
  const hosts = arr(field(v, "upstreams")).filter((h): h is string => typeof h === "string");
  if (hosts.length > 0) return hosts.length === 1 ? (hosts[0] ?? "?") : `${hosts[0]} +${hosts.length - 1}`;
  return "?";
}

function modelsOf(view: unknown, report: unknown): Pick<Picture, "models" | "modelsShort"> {
  const variants = field(view, "variants") ?? field(report, "variants");
  const text = str(field(variants, "text"));
  if (text) return { models: text, modelsShort: `${variantShort(field(variants, "stable"))} → ${variantShort(field(variants, "canary"))}` };
  // Older controllers: the spec's declared versions only.
  const stable = str(field(view, "spec", "models", "stable")) ?? str(field(report, "models", "stable"));
  const canary = str(field(view, "spec", "models", "canary")) ?? str(field(report, "models", "canary"));
  if (stable && canary) return { models: `stable ${stable} · canary ${canary}`, modelsShort: `${stable} → ${canary}` };
  return { models: null, modelsShort: null };
}
