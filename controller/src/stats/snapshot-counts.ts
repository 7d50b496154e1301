/**
 * A counts snapshot (the engine's JSON form, see engine/counts.ts) back in the provider's shape, so a
 * window (current minus baseline) is summarized by the same code as cumulative counts.
 */
import { parseSliceKey, type CountsSnapshot, type HistogramSnapshot, type SliceSnapshot, type VariantSnapshots } from "../engine/index.ts";
import { emptyVariantCounts, RESPONSE_CLASSES, type HistogramBucket, type RolloutCounts, type SliceCounts, type VariantCounts } from "../metrics/provider.ts";

const RESPONSE_KEY = /^responses\{class=(.+)\}$/;

function buckets(h: HistogramSnapshot): HistogramBucket[] {
  const out = h.bounds.map((upperBound, i) => {
    const cumulativeCount = h.cumulative[i];
    if (cumulativeCount === undefined) throw new RangeError(`counts snapshot: ${h.bounds.length} bounds but ${h.cumulative.length} cumulative counts`);
    return { upperBound, cumulativeCount };
  });
  if (h.total > 0) out.push({ upperBound: Infinity, cumulativeCount: h.total });
  return out;
}

function variantFromSnapshot(slice: SliceSnapshot | undefined): VariantCounts {
  const counts = emptyVariantCounts();
  if (!slice) return counts;
  for (const [name, n] of Object.entries(slice.counters)) {
    const responseClass = RESPONSE_KEY.exec(name)?.[1];
    if (name === "requests") counts.requests = n;
    else if (responseClass !== undefined && (RESPONSE_CLASSES as readonly string[]).includes(responseClass))
      counts.responses[responseClass as keyof VariantCounts["responses"]] = n;
    else counts.counters[name] = n;
  }
  for (const [name, h] of Object.entries(slice.histograms)) {
    if (name === "latency_us") counts.latency = { bucketsUs: buckets(h), sumUs: h.sum, count: h.total };
    else counts.histograms[name] = { buckets: buckets(h), sum: h.sum, count: h.total };
  }
  return counts;
}

function sliceFromSnapshot(variants: VariantSnapshots | undefined): SliceCounts {
  const slice: SliceCounts = { stable: variantFromSnapshot(variants?.stable), canary: variantFromSnapshot(variants?.canary) };
  if (variants?.shadow) slice.shadow = variantFromSnapshot(variants.shadow);
  return slice;
}

export function countsFromSnapshot(snapshot: CountsSnapshot): RolloutCounts {
  const counts: RolloutCounts = { ...sliceFromSnapshot(snapshot.slices.overall), segments: {} };
  for (const [key, variants] of Object.entries(snapshot.slices)) {
    const segment = parseSliceKey(key);
    if (segment === null) continue;
    (counts.segments[segment.dimension] ??= {})[segment.value] = sliceFromSnapshot(variants);
  }
  return counts;
}
