// Placing the charts' decision labels so they never run into one another. Pure.

/**
 * Where each marker's label goes: left to right, in the first row where it does not touch the label before it
 * ("started 5%" and "promoted 10%" a few pixels apart go one under the other, not into one another); null
 * when every row is taken there. Pure: x positions and widths in, row numbers out.
 */
export function labelRows(labels: Array<{ x: number; width: number }>, rows = 4, gap = 6): Array<number | null> {
  const rowEnds: number[] = Array.from({ length: rows }, () => Number.NEGATIVE_INFINITY);
  const order = labels.map((l, i) => ({ ...l, i })).sort((a, b) => a.x - b.x);
  const out: Array<number | null> = labels.map(() => null);
  for (const l of order) {
    const row = rowEnds.findIndex((end) => l.x >= end + gap);
    if (row === -1) continue;
    out[l.i] = row;
    rowEnds[row] = l.x + l.width;
  }
  return out;
}
