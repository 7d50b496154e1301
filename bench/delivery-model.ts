// The 2,000-sidecar estimate of bench/istiod-delivery.ts, calibrated by its measured points: a straight line
// through each delivery's rollback times (least squares over the fleet sizes), and what istiod and the controller
// would carry, scaled by what one more Envoy cost in the run. A paper model: it says which term grows and how
// fast, with the assumptions printed beside it.

export interface Point {
  mode: string;
  n: number;
  /** Median time until every Envoy routes the rollback's weight. */
  rollbackMs: number;
  /** istiod's CPU seconds per config change (its whole process, averaged over the trials' changes). */
  istiodCpuS: number;
  /** What the controller held after the trials: TCP connections from the fleet, and long-polls waiting. */
  accepted: number;
  held: number;
  rssMiB: number;
}

/** Least-squares line y = a + b x. */
export function fitLine(points: Array<[number, number]>): { a: number; b: number } {
  const n = points.length;
  if (n === 0) return { a: Number.NaN, b: Number.NaN };
  if (n === 1) return { a: (points[0] as [number, number])[1], b: 0 };
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const b = sxx === 0 ? 0 : sxy / sxx;
  return { a: my - b * mx, b };
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
/** A slope the run could not tell from zero (noise, or too few sizes) is said so, not extrapolated below zero. */
const growth = (b: number, unit: string, digits = 2) => (b > 0 ? `${b.toFixed(digits)} ${unit}` : `no growth measurable (${b.toFixed(digits)})`);

export function extrapolate(points: Point[], sidecars: number): string {
  const lines: string[] = [`Estimate for ${sidecars} sidecars (2 workers each, as istio-proxy's default), calibrated by the points above:`];
  const of = (mode: string) => points.filter((p) => p.mode === mode).sort((x, y) => x.n - y.n);
  const istiod = of("istiod");
  if (istiod.length > 0) {
    const line = fitLine(istiod.map((p) => [p.n, p.rollbackMs]));
    const cpu = fitLine(istiod.map((p) => [p.n, p.istiodCpuS]));
    const first = istiod[0] as Point;
    const cpuAt = Math.max(0, cpu.a) + Math.max(0, cpu.b) * sidecars;
    lines.push(
      `  istiod: rollback = ${line.a.toFixed(0)} ms + ${growth(line.b, "ms per Envoy")} on this machine -> ${s(line.a + Math.max(0, line.b) * sidecars)} at ${sidecars} ` +
        `(the Envoys share these cores with istiod here, so this slope counts their own apply too).`,
      `          istiod CPU per change = ${(cpu.a * 1000).toFixed(0)} ms + ${growth(cpu.b * 1000, "ms per proxy")} -> ${cpuAt.toFixed(2)} CPU-s per change at ${sidecars}; ` +
        `on Istio's published scale-test istiod (1 vCPU, 1.5 GB, 2,000 sidecars) the push alone takes at least that long: ` +
        `rollback ~ ${s(cpuAt * 1000 + first.rollbackMs)} (that plus one Envoy's own time, ${s(first.rollbackMs)} at n=${first.n}, debounce included).`,
    );
  }
  const poll = of("long-poll");
  if (poll.length > 0) {
    const line = fitLine(poll.map((p) => [p.n, p.rollbackMs]));
    const perEnvoy = fitLine(poll.map((p) => [p.n, p.held]));
    const conns = fitLine(poll.map((p) => [p.n, p.accepted]));
    const mem = fitLine(poll.map((p) => [p.accepted, p.rssMiB]));
    // Envoy configures the plugin on its main thread too: workers + 1 pollers per Envoy (test/mesh/ecds.test.ts).
    const held = sidecars * 3;
    lines.push(
      `  long-poll: rollback = ${line.a.toFixed(0)} ms + ${growth(line.b, "ms per Envoy")} -> ${s(line.a + Math.max(0, line.b) * sidecars)} at ${sidecars}; ` +
        `${perEnvoy.b.toFixed(1)} held polls and ${conns.b.toFixed(1)} open connections per 1-worker Envoy here; ${held} polls for ${sidecars} sidecars with 2 workers ` +
        `(connections: ${(held * (conns.b / Math.max(perEnvoy.b, 1e-9))).toFixed(0)} at this ratio); ` +
        `controller memory ${growth(mem.b * 1024, "KiB per connection", 1)} -> ${(mem.a + Math.max(0, mem.b) * held * (conns.b / Math.max(perEnvoy.b, 1e-9))).toFixed(0)} MiB.`,
    );
  }
  const both = of("both");
  if (both.length > 0) {
    const line = fitLine(both.map((p) => [p.n, p.rollbackMs]));
    lines.push(
      `  both: rollback = ${line.a.toFixed(0)} ms + ${line.b.toFixed(2)} ms per Envoy -> ${s(line.a + line.b * sidecars)} at ${sidecars} (the long-poll's path, with istiod's copy behind it).`,
    );
  }
  return lines.join("\n");
}
