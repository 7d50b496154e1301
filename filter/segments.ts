// Which value of a segment dimension a request belongs to. Pure, so it is unit-tested through the loader.
import { SEGMENT_HEADER, SEGMENT_PATH, SegmentConfig } from "./config-model";

/** Index into seg.values, or seg.values.length for "other" (unlisted, missing, unparsable). */
export function segmentValueIndex(seg: SegmentConfig, headerValue: string | null, path: string, contentLength: i64): i32 {
  const other = seg.values.length;
  if (seg.kind == SEGMENT_HEADER) {
    if (headerValue === null) return other;
    const v = headerValue.trim().toLowerCase();
    for (let i = 0; i < seg.values.length; i++) if (seg.values[i] == v) return i;
    return other;
  }
  if (seg.kind == SEGMENT_PATH) {
    let best = -1;
    let bestLength = -1;
    for (let i = 0; i < seg.prefixes.length; i++) {
      const prefix = seg.prefixes[i];
      if (prefix.length > bestLength && path.startsWith(prefix)) {
        best = i;
        bestLength = prefix.length;
      }
    }
    return best < 0 ? other : best;
  }
  // size
  if (contentLength < 0) return other;
  for (let i = 0; i < seg.bounds.length; i++) if (contentLength <= seg.bounds[i]) return i;
  return seg.bounds.length;
}

/** A content-length header as a number; -1 when absent or not a plain non-negative integer. */
export function parseContentLength(value: string | null): i64 {
  if (value === null || value.length == 0 || value.length > 15) return -1;
  let n: i64 = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + <i64>(c - 0x30);
  }
  return n;
}
