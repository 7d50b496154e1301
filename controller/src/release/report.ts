// The postmortem record of an engine-managed rollout, built from what the store already keeps (the engine
// state and every decision with its measurements): timeline, gate values per stage, a segment table from the
// last evaluated window, and why it ended the way it did. Pure; the route picks JSON or Markdown.
import { isTerminal, Phase, segmentLabel, type Decision, type Measurement } from "../engine/index.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { UpstreamLookup } from "../metrics/envoy-upstreams.ts";
import { variantsOf, type VariantsView } from "../http/variants-view.ts";

interface GateLine {
  gate: string;
  segment: string;
  status: string;
  stable: number | null;
  candidate: number | null;
  threshold: string | null;
  unit: string;
  samples: { stable: number; candidate: number };
}

export interface RolloutReport {
  rollout: string;
  owner: string | null;
  rollbackCondition: string | null;
  changeKind: string;
  impact: string;
  phase: string;
  outcome: "succeeded" | "finalized" | "rolled back" | "failed" | "in progress";
  /** The two models (spec models), when declared. */
  models: { stable: string; canary: string } | null;
  /** Which model is which: the declared versions, else the upstream each variant reaches (an archived rollout: unknown). */
  variants: VariantsView;
  /** Set for an archived rollout: its archive id, when and why it left the live set. */
  archived: { id: number; at: string; reason: string } | null;
  /** The decision that ended the rollout, or the latest one while it runs. */
  why: string;
  weights: { canaryPercent: number; shadowPercent: number };
  createdAt: string;
  endedAt: string | null;
  timeline: Array<{ at: string; kind: string; from: string; to: string; stage: string | null; actor: string; reason: string }>;
  /** Per stage, the gate values of the last decision made in it (overall first, then segment values). */
  stages: Array<{ stage: string; decidedAt: string; decision: string; gates: GateLine[] }>;
  /** The last evaluated window, per slice: what stable and the candidate saw. */
  segments: Array<{ segment: string; stable: SliceLine; candidate: SliceLine }>;
}

interface SliceLine {
  requests: number;
  errorRate: number | null;
  p95Ms: number | null;
}

/**
 * A variant with no request in the window has no error rate or p95 of its own: Envoy flushes latency histograms
 * every few seconds while counting requests at once, so answers to requests of the stage before can land in a
 * window with none (stable in a 100% stage). Shown as "-" rather than a p95 beside "0 requests".
 */
function sliceLine(line: SliceLine): SliceLine {
  return line.requests > 0 ? line : { requests: 0, errorRate: null, p95Ms: null };
}

const iso = (ms: number) => new Date(ms).toISOString();

function outcomeOf(phase: Phase): RolloutReport["outcome"] {
  if (phase === Phase.Succeeded || phase === Phase.Finalizing) return "succeeded";
  if (phase === Phase.Finalized) return "finalized";
  if (phase === Phase.RolledBack) return "rolled back";
  if (phase === Phase.Failed) return "failed";
  return "in progress";
}

function gateLine(m: Measurement): GateLine {
  return {
    gate: m.gate,
    segment: segmentLabel(m.segment),
    status: m.status,
    stable: m.stableValue,
    candidate: m.candidateValue,
    threshold: m.threshold ? `${m.threshold.kind} ${m.threshold.value}${m.threshold.tolerance ? ` (tolerance ${m.threshold.tolerance} ${m.unit})` : ""}` : null,
    unit: m.unit,
    samples: m.sampleSizes,
  };
}

export function buildReport(rollout: Rollout, archived?: { id: number; at: Date; reason: string }, upstreams?: UpstreamLookup): RolloutReport | null {
  const engine = rollout.engine;
  if (engine === null) return null;
  const { state, decisions } = engine;
  const last: Decision | undefined = decisions[decisions.length - 1];
  const ended = isTerminal(state.phase);
  const lastByStage = new Map<string, Decision>();
  for (const d of decisions) if (d.stage && d.measurements.length > 0) lastByStage.set(d.stage.name, d);
  const lastWindow = [...decisions].reverse().find((d) => d.window !== null)?.window ?? null;
  return {
    rollout: rollout.spec.name,
    owner: state.spec.owner,
    rollbackCondition: state.spec.rollbackCondition,
    changeKind: state.spec.changeKind,
    impact: state.spec.impact,
    phase: state.phase,
    outcome: outcomeOf(state.phase),
    models: rollout.spec.models ? { stable: rollout.spec.models.stable, canary: rollout.spec.models.canary } : null,
    // Archived: where its clusters point now says nothing about what it ran against.
    variants: variantsOf(rollout, archived ? undefined : upstreams),
    archived: archived ? { id: archived.id, at: archived.at.toISOString(), reason: archived.reason } : null,
    why: last ? last.reason : "not started yet",
    weights: { canaryPercent: rollout.canaryPercent, shadowPercent: rollout.shadowPercent },
    createdAt: rollout.createdAt.toISOString(),
    endedAt: ended && last ? iso(last.at) : null,
    timeline: decisions.map((d) => ({ at: iso(d.at), kind: d.kind, from: d.from, to: d.to, stage: d.stage?.name ?? null, actor: d.actor, reason: d.reason })),
    stages: [...lastByStage.entries()].map(([stage, d]) => ({
      stage,
      decidedAt: iso(d.at),
      decision: d.kind,
      gates: [...d.measurements].sort((a, b) => Number(a.segment !== null) - Number(b.segment !== null)).map(gateLine),
    })),
    segments: (lastWindow?.slices ?? []).map((s) => ({ segment: segmentLabel(s.segment), stable: sliceLine(s.stable), candidate: sliceLine(s.candidate) })),
  };
}

const cell = (v: unknown): string =>
  v === null || v === undefined ? "-" : typeof v === "number" ? String(Number(v.toPrecision(4))) : String(v).replace(/\|/g, "\\|");
const pct = (v: number | null): string => (v === null ? "-" : `${(v * 100).toFixed(2)}%`);

export function reportMarkdown(r: RolloutReport): string {
  const lines: string[] = [
    `# Rollout ${r.rollout}: ${r.outcome}`,
    "",
    `- owner: ${cell(r.owner)}; change: ${r.changeKind}, impact: ${r.impact}`,
    `- rollback condition: ${cell(r.rollbackCondition)}`,
    `- phase: ${r.phase}; weights now: canary ${r.weights.canaryPercent}%, shadow ${r.weights.shadowPercent}%`,
    `- created ${r.createdAt}${r.endedAt ? `, ended ${r.endedAt}` : ""}`,
    `- models: ${r.variants.text}`,
    ...(r.archived ? [`- archived ${r.archived.at} as ${r.archived.id}: ${r.archived.reason}`] : []),
    "",
    `**Why:** ${r.why}`,
    "",
    "## Timeline",
    "",
    "| at | decision | from -> to | stage | by | reason |",
    "|---|---|---|---|---|---|",
    ...r.timeline.map((t) => `| ${t.at} | ${t.kind} | ${t.from} -> ${t.to} | ${cell(t.stage)} | ${cell(t.actor)} | ${cell(t.reason)} |`),
  ];
  for (const s of r.stages) {
    lines.push(
      "",
      `## Stage ${s.stage} (${s.decision} at ${s.decidedAt})`,
      "",
      "| gate | segment | result | stable | candidate | limit | n stable / candidate |",
      "|---|---|---|---|---|---|---|",
    );
    for (const g of s.gates) {
      lines.push(
        `| ${g.gate} | ${g.segment} | ${g.status} | ${cell(g.stable)} | ${cell(g.candidate)} | ${cell(g.threshold)} | ${g.samples.stable} / ${g.samples.candidate} |`,
      );
    }
  }
  if (r.segments.length > 0) {
    lines.push(
      "",
      "## Segments (last evaluated window)",
      "",
      "| segment | stable requests | stable errors | stable p95 ms | candidate requests | candidate errors | candidate p95 ms |",
      "|---|---|---|---|---|---|---|",
    );
    for (const s of r.segments) {
      lines.push(
        `| ${s.segment} | ${s.stable.requests} | ${pct(s.stable.errorRate)} | ${cell(s.stable.p95Ms)} | ${s.candidate.requests} | ${pct(s.candidate.errorRate)} | ${cell(s.candidate.p95Ms)} |`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
