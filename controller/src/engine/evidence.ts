/**
 * Evidence across stages. The candidate model is the same in every stage, so for proportion gates judged on
 * absolute limits (error rate, schema pass rate, shadow agreement, custom ratios) the candidate's outcomes
 * are one sequence whatever the weight: each stage's counts add to the previous stages'. The engine keeps
 * the counters (not the histograms: latency and means stay per stage) of the stages already left in
 * `carried`, and the current stage's as of the last readable tick in `stage`, which is folded into `carried`
 * when the stage ends or the data path restarts (a count going down), so neither loses evidence.
 * Validity: the sequence's interval needs each candidate request's outcome to be independent with one
 * probability, the same at every weight (README, "Evidence across stages").
 */
import { ENGINE_VARIANTS, type CountsSnapshot, type EngineVariant } from "./counts.ts";

/** Counters only, per slice and variant. JSON-safe. */
interface CounterSnapshot {
  slices: Record<string, Partial<Record<EngineVariant, Record<string, number>>>>;
}

export interface Evidence {
  /** Counters of the stages already left (and of windows cut short by a restart). */
  carried: CounterSnapshot | null;
  /** The current stage's window counters as of the last readable tick. */
  stage: CounterSnapshot | null;
}

export function countersOf(window: CountsSnapshot): CounterSnapshot {
  const slices: CounterSnapshot["slices"] = {};
  for (const [key, variants] of Object.entries(window.slices)) {
    const out: Partial<Record<EngineVariant, Record<string, number>>> = {};
    for (const variant of ENGINE_VARIANTS) {
      const v = variants[variant];
      if (v) out[variant] = { ...v.counters };
    }
    slices[key] = out;
  }
  return { slices };
}

function addCounters(a: CounterSnapshot | null, b: CounterSnapshot | null): CounterSnapshot | null {
  if (!a) return b;
  if (!b) return a;
  const slices: CounterSnapshot["slices"] = {};
  for (const key of new Set([...Object.keys(a.slices), ...Object.keys(b.slices)])) {
    const out: Partial<Record<EngineVariant, Record<string, number>>> = {};
    for (const variant of ENGINE_VARIANTS) {
      const x = a.slices[key]?.[variant];
      const y = b.slices[key]?.[variant];
      if (!x && !y) continue;
      const sum: Record<string, number> = { ...x };
      for (const [name, n] of Object.entries(y ?? {})) sum[name] = (sum[name] ?? 0) + n;
      out[variant] = sum;
    }
    slices[key] = out;
  }
  return { slices };
}

/** The evidence so far (carried + the current window), as a counts snapshot without histograms. */
export function accumulated(evidence: Evidence | undefined, window: CountsSnapshot | null): CountsSnapshot | null {
  const total = addCounters(evidence?.carried ?? null, window ? countersOf(window) : null);
  if (!total) return null;
  const slices: CountsSnapshot["slices"] = {};
  for (const [key, variants] of Object.entries(total.slices)) {
    slices[key] = {};
    for (const variant of ENGINE_VARIANTS) {
      const counters = variants[variant];
      if (counters) slices[key][variant] = { counters, histograms: {} };
    }
  }
  return { slices };
}

/** The stage ends (advance, promotion) or its window restarts: its counters join the carried evidence. */
export function foldStage(evidence: Evidence | undefined): Evidence {
  return { carried: addCounters(evidence?.carried ?? null, evidence?.stage ?? null), stage: null };
}
