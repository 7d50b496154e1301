import type { HistogramBucket } from "./provider.ts";

/**
 * The q-quantile of a cumulative histogram, computed as Prometheus' histogram_quantile does: find the
 * bucket holding rank q*total and interpolate linearly inside it (the first bucket starts at 0). A rank
 * in the +Inf bucket answers the highest finite bound, since nothing is known above it.
 * Returns null when there is nothing to estimate from (no observations, or no +Inf bucket).
 */
export function histogramQuantile(q: number, input: readonly HistogramBucket[]): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q}: must be between 0 and 1`);
  const buckets = monotonic(mergeDuplicateBounds(input));
  if (buckets.length < 2 || buckets[buckets.length - 1].upperBound !== Infinity) return null;
  const total = buckets[buckets.length - 1].cumulativeCount;
  if (!(total > 0)) return null;

  let rank = q * total;
  let b = buckets.findIndex((bucket, i) => i < buckets.length - 1 && bucket.cumulativeCount >= rank);
  if (b === -1) b = buckets.length - 1;
  if (b === buckets.length - 1) return buckets[buckets.length - 2].upperBound;
  if (b === 0 && buckets[0].upperBound <= 0) return buckets[0].upperBound;

  let start = 0;
  const end = buckets[b].upperBound;
  let count = buckets[b].cumulativeCount;
  if (b > 0) {
    start = buckets[b - 1].upperBound;
    count -= buckets[b - 1].cumulativeCount;
    rank -= buckets[b - 1].cumulativeCount;
  }
  if (count === 0) return end;
  return start + (end - start) * (rank / count);
}

function mergeDuplicateBounds(input: readonly HistogramBucket[]): HistogramBucket[] {
  const byBound = new Map<number, number>();
  for (const { upperBound, cumulativeCount } of input) {
    if (Number.isNaN(upperBound) || !Number.isFinite(cumulativeCount)) continue;
    byBound.set(upperBound, (byBound.get(upperBound) ?? 0) + cumulativeCount);
  }
  return [...byBound]
    .map(([upperBound, cumulativeCount]) => ({ upperBound, cumulativeCount }))
    .sort((a, b) => a.upperBound - b.upperBound);
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
