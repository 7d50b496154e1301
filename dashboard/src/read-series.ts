/**
 * Columns for the charts from GET /v1/rollouts/{name}/series: one x (seconds) and per variant one array per
 * figure, with a null inserted where the history has a gap (no snapshot for more than two steps: no traffic,
 * or the controller was down), so lines break there instead of bridging it. Pure.
 */
import { arr, field, num, str } from "./read.ts";

export type Column = Array<number | null>;

export interface SeriesColumns {
  x: number[];
  stepSeconds: number;
  /** `${variant}.${figure}` -> values; figures: rps, errorRate, timeoutRate, p50, p95, p99, schemaFail, ... */
  columns: Map<string, Column>;
  /** Gate name -> stable / candidate values at each x. */
  gates: Map<string, { stable: Column; candidate: Column }>;
  /** Summed over the range: confidence histogram and labels per variant. */
  confidence: Map<string, number[]>;
  stages: Array<{ t: number; stage: string | null; phase: string | null }>;
  /** The range asked for, seconds: the x axis spans it even where there is no snapshot. */
  range: [number, number] | null;
}

const FIGURES: Record<string, (v: unknown) => number | null> = {
  rps: (v) => num(field(v, "requestsPerSecond")),
  requests: (v) => num(field(v, "requests")),
  errorRate: (v) => num(field(v, "errorRate")),
  timeoutRate: (v) => num(field(v, "timeoutRate")),
  p50: (v) => num(field(v, "latencyMs", "p50")),
  p95: (v) => num(field(v, "latencyMs", "p95")),
  p99: (v) => num(field(v, "latencyMs", "p99")),
  schemaFail: (v) => {
    const pass = num(field(v, "schema", "passRate"));
    return pass === null ? null : 1 - pass;
  },
  confidenceMean: (v) => num(field(v, "confidence", "mean")),
  promptTokens: (v) => num(field(v, "llm", "promptTokensMean")),
  completionTokens: (v) => num(field(v, "llm", "completionTokensMean")),
  citationRate: (v) => num(field(v, "llm", "citationRate")),
  abstainRate: (v) => num(field(v, "llm", "abstainRate")),
  fallbackRate: (v) => num(field(v, "llm", "fallbackRate")),
  agreementRate: (v) => num(field(v, "comparison", "agreementRate")),
  statusMatchRate: (v) => num(field(v, "comparison", "statusMatchRate")),
  confidenceDelta: (v) => num(field(v, "comparison", "confidenceDeltaMean")),
};

export function readSeries(doc: unknown, slice = "overall"): SeriesColumns {
  const points = arr(field(doc, "points"));
  const stepSeconds = num(field(doc, "stepSeconds")) ?? 5;
  const x: number[] = [];
  const columns = new Map<string, Column>();
  const gates = new Map<string, { stable: Column; candidate: Column }>();
  const confidence = new Map<string, number[]>();
  const stages: SeriesColumns["stages"] = [];
  const column = (key: string) => {
    let c = columns.get(key);
    if (!c) columns.set(key, (c = new Array<number | null>(x.length - 1).fill(null)));
    return c;
  };
  let previous: number | null = null;
  for (const point of points) {
    const t = num(field(point, "t"));
    if (t === null) continue;
    const seconds = t / 1000;
    if (previous !== null && seconds - previous > 2.5 * stepSeconds) {
      // A gap: one null row halfway, so every line breaks.
      x.push((previous + seconds) / 2);
      for (const c of columns.values()) c.push(null);
      for (const g of gates.values()) {
        g.stable.push(null);
        g.candidate.push(null);
      }
    }
    previous = seconds;
    x.push(seconds);
    const slices = field(point, "slices", slice);
    for (const variant of ["stable", "canary", "shadow"]) {
      const v = field(slices, variant);
      if (v === undefined) continue;
      for (const [figure, read] of Object.entries(FIGURES)) {
        const value = read(v);
        if (value !== null) column(`${variant}.${figure}`);
      }
      const histogram = arr(field(v, "confidence", "histogram"));
      if (histogram.length > 0) {
        const sum = confidence.get(variant) ?? new Array<number>(histogram.length).fill(0);
        histogram.forEach((n, i) => {
          sum[i] = (sum[i] ?? 0) + (num(n) ?? 0);
        });
        confidence.set(variant, sum);
      }
    }
    for (const [key, c] of columns) {
      const [variant, figure] = key.split(".");
      const v = field(slices, variant);
      c.push(v === undefined ? null : FIGURES[figure](v));
    }
    const g = field(point, "gates");
    if (typeof g === "object" && g !== null) {
      for (const [gate, values] of Object.entries(g)) {
        let entry = gates.get(gate);
        if (!entry)
          gates.set(
            gate,
            (entry = { stable: new Array<number | null>(x.length - 1).fill(null), candidate: new Array<number | null>(x.length - 1).fill(null) }),
          );
        entry.stable.push(num(field(values, "stable")));
        entry.candidate.push(num(field(values, "candidate")));
      }
    }
    for (const entry of gates.values()) {
      if (entry.stable.length < x.length) {
        entry.stable.push(null);
        entry.candidate.push(null);
      }
    }
    const stage = str(field(point, "stage"));
    const phase = str(field(point, "phase"));
    const last = stages.at(-1);
    if (!last || last.stage !== stage || last.phase !== phase) stages.push({ t: seconds, stage, phase });
  }
  const from = Date.parse(str(field(doc, "from")) ?? "");
  const to = Date.parse(str(field(doc, "to")) ?? "");
  const range: [number, number] | null = Number.isFinite(from) && Number.isFinite(to) && to > from ? [from / 1000, to / 1000] : null;
  return { x, stepSeconds, columns, gates, confidence, stages, range };
}

export function hasColumn(s: SeriesColumns, key: string): boolean {
  const c = s.columns.get(key);
  return c?.some((v) => v !== null) ?? false;
}
