import type { HistogramBucket } from "./provider.ts";

/**
 * A cumulative histogram as the quantile reads it (and as the engine keeps its histograms, engine/counts.ts):
 * finite upper bounds, the count at or below each, and the total.
 */
export interface CumulativeHistogram {
  /** Finite upper bounds, ascending. A bound may be left out when its bucket is empty (step function). */
  bounds: readonly number[];
  /** Observations <= bounds[i]. */
  cumulative: readonly number[];
  /** All observations, the +Inf bucket included. */
  total: number;
}

/**
 * The q-quantile point estimate, computed as Prometheus' histogram_quantile does: find the bucket holding rank
 * q*total and interpolate linearly inside it (the first bucket starts at 0, or answers its bound when that is
 * 0 or below). A rank in the +Inf bucket answers the highest finite bound, since nothing is known above it.
 * Null without observations or without a finite bound.
 *
 * The one quantile of the controller: /stats, the gates and the decisions' window summaries all read theirs
 * here, so an operator never sees two p95s for one window (test/controller/one-quantile.test.ts).
 */
export function cumulativeQuantile(h: CumulativeHistogram, q: number): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q}: must be between 0 and 1`);
  if (!(h.total > 0) || h.bounds.length === 0) return null;
  const rank = q * h.total;
  let previousBound = 0;
  let previousCount = 0;
  for (const [i, bound] of h.bounds.entries()) {
    const count = h.cumulative[i];
    if (count === undefined) throw new RangeError(`histogram: ${h.bounds.length} bounds but ${h.cumulative.length} cumulative counts`);
    if (count >= rank) {
      if (i === 0 && bound <= 0) return bound;
      const inBucket = count - previousCount;
      if (inBucket === 0) return bound;
      return previousBound + (bound - previousBound) * ((rank - previousCount) / inBucket);
    }
    previousBound = bound;
    previousCount = count;
  }
  // Every bucket below the rank: the highest finite bound (the loop ended on it).
  return previousBound;
}

/**
 * The q-quantile of buckets as a provider reads them (cumulative, the last one +Inf; unsorted, repeated bounds
 * and dips allowed): put in order as Prometheus does, then cumulativeQuantile(). Null when there is nothing to
 * estimate from (no observations, or no +Inf bucket).
 */
export function histogramQuantile(q: number, input: readonly HistogramBucket[]): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q}: must be between 0 and 1`);
  const buckets = monotonic(mergeDuplicateBounds(input));
  const last = buckets.at(-1);
  if (buckets.length < 2 || last === undefined || last.upperBound !== Infinity) return null;
  const finite = buckets.slice(0, -1);
  return cumulativeQuantile({ bounds: finite.map((b) => b.upperBound), cumulative: finite.map((b) => b.cumulativeCount), total: last.cumulativeCount }, q);
}

function mergeDuplicateBounds(input: readonly HistogramBucket[]): HistogramBucket[] {
  const byBound = new Map<number, number>();
  for (const { upperBound, cumulativeCount } of input) {
    if (Number.isNaN(upperBound) || !Number.isFinite(cumulativeCount)) continue;
    byBound.set(upperBound, (byBound.get(upperBound) ?? 0) + cumulativeCount);
  }
  return [...byBound].map(([upperBound, cumulativeCount]) => ({ upperBound, cumulativeCount })).sort((a, b) => a.upperBound - b.upperBound);
}

// Counters scraped at slightly different moments can make a cumulative series dip; Prometheus
// flattens such dips the same way.
function monotonic(buckets: HistogramBucket[]): HistogramBucket[] {
  let max = 0;
  return buckets.map(({ upperBound, cumulativeCount }) => {
    max = Math.max(max, cumulativeCount);
    return { upperBound, cumulativeCount: max };
  });
}
