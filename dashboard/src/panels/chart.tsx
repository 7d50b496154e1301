// One time-series chart (uPlot on a canvas): stable vs canary (and shadow), with the rollout's decisions
// and stage changes drawn as vertical lines. Created once, fed new data on every update.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { labelRows } from "../label-rows.ts";

export const COLORS: Record<string, string> = { stable: "#2563eb", canary: "#ea580c", shadow: "#7c3aed" };

export interface Line {
  label: string;
  color: string;
  values: Array<number | null>;
  dash?: number[];
}

export interface Marker {
  t: number;
  label: string;
  tone: "bad" | "good" | "info";
}

export interface ChartProps {
  title: string;
  x: number[];
  lines: Line[];
  format: (v: number | null) => string;
  markers: Marker[];
  testId?: string;
  /** Rates: the y axis starts at 0 and shows at least up to this (a flat 0 line would otherwise span ±10). */
  minTop?: number;
  /** The x axis's span, seconds (the range asked for); else the data's. */
  xRange?: [number, number] | null;
}

const MARKER_COLORS = { bad: "#dc2626", good: "#16a34a", info: "#64748b" };

/** Label rows above the plot before a label is left out (its line is still drawn; the timeline has every decision). */
const LABEL_ROWS = 4;

function markerPlugin(markers: () => Marker[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        const dpr = devicePixelRatio;
        ctx.save();
        ctx.font = `${Math.round(10 * dpr)}px sans-serif`;
        const shown = markers()
          .map((m) => ({ m, x: Math.round(u.valToPos(m.t, "x", true)) }))
          .filter(({ x }) => x >= u.bbox.left && x <= u.bbox.left + u.bbox.width);
        const rows = labelRows(
          shown.map(({ m, x }) => ({ x: x + 3 * dpr, width: ctx.measureText(m.label).width })),
          LABEL_ROWS,
          6 * dpr,
        );
        shown.forEach(({ m, x }, i) => {
          ctx.strokeStyle = MARKER_COLORS[m.tone];
          ctx.setLineDash([4 * dpr, 3 * dpr]);
          ctx.lineWidth = dpr;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          const row = rows[i];
          if (row === null || row === undefined) return;
          const y = top + (11 + row * 12) * dpr;
          const width = ctx.measureText(m.label).width;
          // A light backing so a label stays readable over the lines it crosses.
          ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
          ctx.fillRect(x + 2 * dpr, y - 9 * dpr, width + 2 * dpr, 11 * dpr);
          ctx.fillStyle = MARKER_COLORS[m.tone];
          ctx.fillText(m.label, x + 3 * dpr, y);
        });
        ctx.restore();
      },
    },
  };
}

export function Chart(props: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const markers = useRef(props.markers);
  const xRange = useRef(props.xRange);
  xRange.current = props.xRange;
  const shape = props.lines.map((l) => l.label).join("|");
  markers.current = props.markers;

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const options: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height: 180,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: (_u, min, max) => (props.minTop !== undefined ? [0, Math.max(max, props.minTop) * 1.1] : [Math.min(0, min), max > 0 ? max * 1.1 : 1]) },
      },
      axes: [
        { stroke: "#64748b", grid: { stroke: "#e2e8f0" } },
        { stroke: "#64748b", grid: { stroke: "#e2e8f0" }, size: 64, values: (_u, ticks) => ticks.map((t) => props.format(t)) },
      ],
      series: [
        {},
        ...props.lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: 1.5,
          dash: l.dash,
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => props.format(v),
        })),
      ],
      plugins: [markerPlugin(() => markers.current)],
    };
    const u = new uPlot(options, [props.x, ...props.lines.map((l) => l.values)] as uPlot.AlignedData, el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(280, el.clientWidth), height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    u.setData([props.x, ...props.lines.map((l) => l.values)] as uPlot.AlignedData);
    // The whole range asked for, not just the data's (one snapshot would otherwise span years).
    const range = xRange.current;
    if (range) u.setScale("x", { min: Math.min(range[0], props.x[0] ?? range[0]), max: Math.max(range[1], props.x.at(-1) ?? range[1]) });
  }, [props.x, props.lines]);

  return (
    <figure class="chart" data-testid={props.testId}>
      <figcaption>{props.title}</figcaption>
      <div ref={host} class="chart-host" />
      {props.x.length === 0 && <p class="muted chart-empty">no traffic recorded yet</p>}
    </figure>
  );
}
