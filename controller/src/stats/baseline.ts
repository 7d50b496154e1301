/**
 * Stats per rollout incarnation. Envoy counts under the rollout's name from its own start, so a rollout
 * deleted and created again under the same name would show the earlier one's traffic and errors. At create,
 * before the rollout is committed (and so before any filter counts for it), the name's cumulative counts
 * are read and kept with the rollout; /stats subtracts them. The same subtraction gives the current stage's
 * window from the engine's stage baseline.
 */
import { toSnapshot, windowBetween, type CountsSnapshot } from "../engine/index.ts";
import type { MetricProvider } from "../metrics/provider.ts";
import type { StatsBaseline } from "../rollouts/model.ts";

/** Reads the baseline for a rollout about to be created under `name`. Never throws: a create must not fail on it. */
export async function readStatsBaseline(provider: MetricProvider, name: string, at: Date): Promise<StatsBaseline> {
  let reading: Awaited<ReturnType<MetricProvider["readRollout"]>>;
  try {
    // Counts since `at` (a source that counts from the rollout's start has nothing yet); Envoy admin: since Envoy started.
    reading = await provider.readRollout(name, { at: at.getTime(), since: at.getTime() });
  } catch (error) {
    return { at: at.toISOString(), kind: "unknown", error: (error as Error).message };
  }
  if (reading.status === "unmeasurable") return { at: at.toISOString(), kind: "unknown", error: reading.error };
  const counts = toSnapshot(reading.value);
  return hasAnyCount(counts) ? { at: at.toISOString(), kind: "counts", counts } : { at: at.toISOString(), kind: "zero" };
}

function hasAnyCount(snapshot: CountsSnapshot): boolean {
  for (const variants of Object.values(snapshot.slices)) {
    for (const slice of Object.values(variants)) {
      if (!slice) continue;
      if (Object.values(slice.counters).some((n) => n > 0)) return true;
      if (Object.values(slice.histograms).some((h) => h.total > 0)) return true;
    }
  }
  return false;
}

/** Counts over a window: the snapshot to summarize, and what the reader should know about it. */
export interface WindowCounts {
  counts: CountsSnapshot;
  /** A count went down since the window started: an Envoy restarted, and the counts are since its restart. */
  envoyRestarted: boolean;
}

/** current - baseline; a count that went down means an Envoy restarted: then everything it counted since. */
export function countsSince(current: CountsSnapshot, baseline: CountsSnapshot | null): WindowCounts {
  if (baseline === null) return { counts: current, envoyRestarted: false };
  const { window, reset } = windowBetween(current, baseline);
  return reset ? { counts: current, envoyRestarted: true } : { counts: window, envoyRestarted: false };
}
