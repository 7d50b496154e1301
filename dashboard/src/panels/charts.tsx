// The side-by-side time series: stable vs canary (and shadow in a shadow stage) from the rollout's
// telemetry history, with decisions and stage changes marked.
import { inUnit, ms, num, percent } from "../format.ts";
import type { TimelineEntry } from "../read.ts";
import { hasColumn, type SeriesColumns } from "../read-series.ts";
import { Chart, COLORS, type Line, type Marker } from "./chart.tsx";

const VARIANTS = ["stable", "canary", "shadow"] as const;

const rate = (v: number | null) => percent(v);
const perSecond = (v: number | null) => (v === null ? "–" : `${num(v)}/s`);
const plain = (v: number | null) => num(v);

function variantLines(s: SeriesColumns, figure: string, dash?: number[], suffix = ""): Line[] {
  return VARIANTS.flatMap((v) => {
    const values = s.columns.get(`${v}.${figure}`);
    return values !== undefined && hasColumn(s, `${v}.${figure}`) ? [{ label: `${v}${suffix}`, color: COLORS[v], values, dash }] : [];
  });
}

export function markersOf(timeline: TimelineEntry[]): Marker[] {
  const out: Marker[] = [];
  for (const t of timeline) {
    if (!t.at || t.kind === "held" || t.kind === "trafficMixWarning") continue;
    const tone =
      t.kind === "rolledBack" || t.kind === "failed" || t.kind === "undone"
        ? "bad"
        : t.kind === "succeeded" || t.kind === "advanced" || t.kind === "promoted"
          ? "good"
          : "info";
    out.push({ t: Date.parse(t.at) / 1000, label: `${t.kind}${t.stage ? ` ${t.stage}` : ""}`, tone });
  }
  return out;
}

export function Charts(props: { series: SeriesColumns; timeline: TimelineEntry[]; gateKinds: Record<string, string>; gateUnits: Record<string, string> }) {
  const s = props.series;
  const markers = markersOf(props.timeline);
  const charts: Array<{ title: string; lines: Line[]; format: (v: number | null) => string; id: string; minTop?: number }> = [
    { id: "chart-requests", title: "Requests per second", lines: variantLines(s, "rps"), format: perSecond },
    {
      id: "chart-latency",
      title: "Latency p50 (dashed) and p95",
      lines: [...variantLines(s, "p50", [4, 4], " p50"), ...variantLines(s, "p95", undefined, " p95")],
      format: ms,
    },
    { id: "chart-errors", title: "Error rate (5xx and local replies)", lines: variantLines(s, "errorRate"), format: rate, minTop: 0.01 },
    { id: "chart-timeouts", title: "Timeout rate (Envoy's local replies)", lines: variantLines(s, "timeoutRate"), format: rate, minTop: 0.01 },
  ];
  if (variantLines(s, "schemaFail").length > 0)
    charts.push({
      id: "chart-schema",
      title: "Schema failures (share of validated answers)",
      lines: variantLines(s, "schemaFail"),
      format: rate,
      minTop: 0.01,
    });
  if (variantLines(s, "confidenceMean").length > 0)
    charts.push({ id: "chart-confidence", title: "Mean confidence", lines: variantLines(s, "confidenceMean"), format: plain });
  // Gates whose values are not traffic: review scores and KPIs posted through the API, PromQL resource figures.
  for (const [gate, values] of s.gates) {
    const kind = props.gateKinds[gate];
    if (kind !== "external" && kind !== "promql") continue;
    const unit = props.gateUnits[gate] ?? "";
    const lines: Line[] = [];
    if (values.stable.some((v) => v !== null)) lines.push({ label: "stable", color: COLORS.stable, values: values.stable });
    if (values.candidate.some((v) => v !== null))
      lines.push({ label: kind === "promql" ? "value" : "candidate", color: COLORS.canary, values: values.candidate });
    if (lines.length > 0)
      charts.push({
        id: `chart-gate-${gate}`,
        title: `${gate} (${kind === "promql" ? "PromQL" : "posted through the API"})`,
        lines,
        format: (v) => inUnit(v, unit),
      });
  }
  return (
    <section class="panel">
      <h2>Over time</h2>
      <p class="muted small">
        {s.x.length === 0
          ? "No snapshot yet: the controller takes one every engine tick while the rollout has traffic."
          : `Steps of ${s.stepSeconds} s; dashed vertical lines are the engine's and operators' decisions.`}
      </p>
      <div class="charts">
        {charts.map((c) => (
          <Chart key={c.id} testId={c.id} title={c.title} x={s.x} lines={c.lines} format={c.format} markers={markers} minTop={c.minTop} xRange={s.range} />
        ))}
      </div>
    </section>
  );
}

export function LlmCharts(props: { series: SeriesColumns; timeline: TimelineEntry[] }) {
  const s = props.series;
  const markers = markersOf(props.timeline);
  if (variantLines(s, "promptTokens").length === 0 && variantLines(s, "citationRate").length === 0) return null;
  return (
    <div class="charts">
      <Chart
        testId="chart-tokens"
        title="Tokens per answer: prompt (dashed), completion"
        x={s.x}
        lines={[...variantLines(s, "promptTokens", [4, 4], " prompt"), ...variantLines(s, "completionTokens", undefined, " completion")]}
        format={plain}
        markers={markers}
        xRange={s.range}
      />
      <Chart
        testId="chart-llm-rates"
        title="Citation (solid), abstention (dashed), fallback (dotted)"
        x={s.x}
        lines={[
          ...variantLines(s, "citationRate", undefined, " citation"),
          ...variantLines(s, "abstainRate", [6, 4], " abstain"),
          ...variantLines(s, "fallbackRate", [2, 3], " fallback"),
        ]}
        format={rate}
        markers={markers}
        minTop={0.01}
        xRange={s.range}
      />
    </div>
  );
}

export function ShadowCharts(props: { series: SeriesColumns; timeline: TimelineEntry[] }) {
  const s = props.series;
  if (!hasColumn(s, "shadow.agreementRate") && !hasColumn(s, "shadow.statusMatchRate") && !hasColumn(s, "shadow.p95")) return null;
  const markers = markersOf(props.timeline);
  return (
    <div class="charts">
      <Chart
        testId="chart-shadow-agreement"
        title="Shadow agreement (solid) and status match (dashed)"
        x={s.x}
        lines={[...variantLines(s, "agreementRate", undefined, " agreement"), ...variantLines(s, "statusMatchRate", [4, 4], " status match")]}
        format={rate}
        markers={markers}
        minTop={0.01}
        xRange={s.range}
      />
      <Chart
        testId="chart-shadow-latency"
        title="p95 latency: shadow vs the primary (stable, canary)"
        x={s.x}
        lines={variantLines(s, "p95")}
        format={ms}
        markers={markers}
        xRange={s.range}
      />
    </div>
  );
}
