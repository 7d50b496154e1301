/**
 * The evidence an event or a judge's question carries: the measurements behind a decision in a compact,
 * documented form (bounded in size), the failing gate and the worst segment, and links to the rollout's
 * report. Shared by notifications (notify/events.ts) and webhook gates (release/webhook-judge.ts). Pure.
 */
import { formatValue, MeasurementStatus, segmentLabel, type Measurement } from "../engine/index.ts";

/** At most this many measurements go into one payload: overall slices first, then the failed, the worst first. */
const MAX_EVIDENCE = 24;
const MAX_TEXT = 2000;

export interface EvidenceItem {
  gate: string;
  /** "overall", or dimension=value. */
  slice: string;
  status: string;
  candidate: "canary" | "shadow";
  /** Candidate and stable values in the gate's unit (ratio: 0.012 is 1.2%). */
  value: number | null;
  stableValue: number | null;
  unit: string;
  /** The limit that decided (or the first not yet shown). */
  threshold: { kind: string; value: number } | null;
  samples: { candidate: number; stable: number };
  reason: string;
}

export interface Links {
  rollout: string;
  report: string;
  reportMarkdown: string;
  history: string;
  dashboard: string;
}

export function clip(text: string, max = MAX_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

function evidenceItem(m: Measurement): EvidenceItem {
  return {
    gate: m.gate,
    slice: segmentLabel(m.segment),
    status: m.status,
    candidate: m.candidate,
    value: finite(m.candidateValue),
    stableValue: finite(m.stableValue),
    unit: m.unit,
    threshold: m.threshold ? { kind: m.threshold.kind, value: m.threshold.value } : null,
    samples: { candidate: m.sampleSizes.candidate, stable: m.sampleSizes.stable },
    reason: clip(m.reason, 600),
  };
}

/** The measurements worth sending, in order: every overall slice, then failed segment slices by severity, then the rest. */
export function compactEvidence(measurements: readonly Measurement[], exclude: string | null = null): EvidenceItem[] {
  const kept = measurements.filter((m) => m.gate !== exclude);
  const rank = (m: Measurement) => (m.segment === null ? 0 : m.status === MeasurementStatus.Failed ? 1 : m.status === MeasurementStatus.Error ? 2 : 3);
  const ordered = [...kept].sort((a, b) => rank(a) - rank(b) || b.severity - a.severity);
  return ordered.slice(0, MAX_EVIDENCE).map(evidenceItem);
}

/** The Failed measurement that weighs most (highest severity; all traffic before a segment on a tie). */
export function failingGate(measurements: readonly Measurement[]): EvidenceItem | null {
  const failed = measurements.filter((m) => m.status === MeasurementStatus.Failed);
  const [worst] = failed.sort((a, b) => b.severity - a.severity || (a.segment === null ? -1 : 0) - (b.segment === null ? -1 : 0));
  return worst === undefined ? null : evidenceItem(worst);
}

/** The segment value that failed worst (highest severity), with its numbers; null when only all traffic failed. */
export function worstSegment(measurements: readonly Measurement[]): (EvidenceItem & { dimension: string; segmentValue: string }) | null {
  let worst: (Measurement & { segment: NonNullable<Measurement["segment"]> }) | null = null;
  for (const m of measurements) {
    if (m.status !== MeasurementStatus.Failed || m.segment === null) continue;
    if (worst === null || m.severity > worst.severity) worst = { ...m, segment: m.segment };
  }
  if (worst === null) return null;
  return { ...evidenceItem(worst), dimension: worst.segment.dimension, segmentValue: worst.segment.value };
}

/** Links to the rollout's pages: absolute under the controller's public URL, else paths on the controller. */
export function linksOf(publicUrl: string | null, name: string): Links {
  const base = publicUrl ? publicUrl.replace(/\/+$/, "") : "";
  const rollout = `${base}/v1/rollouts/${encodeURIComponent(name)}`;
  return {
    rollout,
    report: `${rollout}/report`,
    reportMarkdown: `${rollout}/report?format=markdown`,
    history: `${rollout}/history`,
    dashboard: `${base}/rollouts/${encodeURIComponent(name)}`,
  };
}

/** "error rate 8.1% vs 0.4% (maximum 1%)" */
export function describeItem(item: EvidenceItem): string {
  const unit = item.unit as Measurement["unit"];
  const values = item.value === null ? "" : ` ${formatValue(item.value, unit)}${item.stableValue === null ? "" : ` vs ${formatValue(item.stableValue, unit)}`}`;
  const limit = item.threshold ? ` (${item.threshold.kind} ${formatValue(item.threshold.value, item.threshold.kind === "maxRatio" ? "" : unit)})` : "";
  return `${item.gate}${item.slice === "overall" ? "" : ` ${item.slice}`}${values}${limit}`;
}

function finite(x: number | null): number | null {
  return x === null || !Number.isFinite(x) ? null : x;
}
