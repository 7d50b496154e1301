// Panels from Envoy's counts since the rollout was created (/stats): traffic per variant, output (labels,
// confidence, schema failures), LLM fields, and the shadow against the primary.
import { count, ms, num, percent } from "../format.ts";
import type { StatsPicture, VariantFigures, VariantName } from "../read-stats.ts";
import type { SeriesColumns } from "../read-series.ts";
import { COLORS } from "./chart.tsx";

const SHOWN: VariantName[] = ["stable", "canary", "shadow"];

function present(s: StatsPicture): Array<[VariantName, VariantFigures]> {
  return SHOWN.flatMap((v): Array<[VariantName, VariantFigures]> => {
    const figures = s.variants[v];
    return figures && (v !== "shadow" || s.hasShadow) ? [[v, figures]] : [];
  });
}

export function Traffic(props: { stats: StatsPicture | null; error: string | null }) {
  const s = props.stats;
  return (
    <section class="panel">
      <h2>Stable vs canary since the rollout was created</h2>
      {props.error && <p class="error">{props.error}</p>}
      {s && s.sourcesDown.length > 0 && <p class="error">Envoy endpoints not answering: {s.sourcesDown.join("; ")}</p>}
      {s?.windowNote && <p class="muted small">{s.windowNote}</p>}
      {s && (
        <table class="grid traffic" data-testid="traffic">
          <thead>
            <tr>
              <th>variant</th>
              <th class="num">requests</th>
              <th class="num">2xx</th>
              <th class="num">4xx</th>
              <th class="num">5xx</th>
              <th class="num">local</th>
              <th class="num">error rate</th>
              <th class="num">p50</th>
              <th class="num">p95</th>
            </tr>
          </thead>
          <tbody>
            {present(s).map(([name, v]) => (
              <tr key={name} data-testid={`traffic-${name}`}>
                <td>
                  <span class="swatch" style={{ background: COLORS[name] }} /> {name}
                </td>
                <td class="num" data-testid={`${name}-requests`} data-value={v.requests ?? ""}>
                  {count(v.requests)}
                </td>
                <td class="num">{count(v.responses["2xx"])}</td>
                <td class="num">{count(v.responses["4xx"])}</td>
                <td class="num">{count(v.responses["5xx"])}</td>
                <td class="num">{count(v.responses.local)}</td>
                <td class="num" data-testid={`${name}-error-rate`} data-value={v.errorRate ?? ""}>
                  {percent(v.errorRate)}
                </td>
                <td class="num" data-testid={`${name}-p50`} data-value={v.p50 ?? ""}>
                  {ms(v.p50)}
                </td>
                <td class="num" data-testid={`${name}-p95`} data-value={v.p95 ?? ""}>
                  {ms(v.p95)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Bars(props: { title: string; byVariant: Array<[VariantName, Record<string, number>]>; keys: string[]; testId: string }) {
  return (
    <div class="bars" data-testid={props.testId}>
      <h3>{props.title}</h3>
      {props.keys.map((key) => (
        <div class="bar-row" key={key}>
          <span class="bar-label">{key}</span>
          <span class="bar-stack">
            {props.byVariant.map(([variant, values]) => {
              const total = Object.values(values).reduce((a, b) => a + b, 0);
              const share = total > 0 ? (values[key] ?? 0) / total : 0;
              return (
                <span class="bar-line" key={variant}>
                  <span class="bar" style={{ width: `${Math.max(0.5, share * 100)}%`, background: COLORS[variant] }} />
                  <span class="bar-value">
                    {variant} {percent(share, 1)}
                  </span>
                </span>
              );
            })}
          </span>
        </div>
      ))}
    </div>
  );
}

export function Output(props: { stats: StatsPicture; series: SeriesColumns }) {
  const variants = present(props.stats).filter(([, v]) => Object.keys(v.labels).length > 0 || v.schemaValidated !== null);
  if (variants.length === 0) return null;
  const labels = [...new Set(variants.flatMap(([, v]) => Object.keys(v.labels)))].sort();
  const failures = [...new Set(variants.flatMap(([, v]) => Object.keys(v.schemaFailures)))].sort();
  const bins = [...props.series.confidence.entries()].filter(([v]) => v === "stable" || v === "canary" || v === "shadow") as Array<[VariantName, number[]]>;
  const binLabels = Array.from({ length: 10 }, (_, i) => `${(i / 10).toFixed(1)}–${((i + 1) / 10).toFixed(1)}`);
  return (
    <section class="panel">
      <h2>Output</h2>
      <div class="two">
        {labels.length > 0 && <Bars title="Label distribution" testId="labels" byVariant={variants.map(([n, v]) => [n, v.labels])} keys={labels} />}
        {bins.length > 0 && (
          <Bars
            title="Confidence (recorded history)"
            testId="confidence"
            byVariant={bins.map(([n, b]) => [n, Object.fromEntries(b.map((c, i) => [binLabels[i], c]))])}
            keys={binLabels}
          />
        )}
      </div>
      <table class="grid" data-testid="schema">
        <thead>
          <tr>
            <th>variant</th>
            <th class="num">validated</th>
            <th class="num">schema pass rate</th>
            <th class="num">mean confidence</th>
            {failures.map((f) => (
              <th class="num" key={f}>
                {f}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {variants.map(([name, v]) => (
            <tr key={name}>
              <td>{name}</td>
              <td class="num">{count(v.schemaValidated)}</td>
              <td class="num">{percent(v.schemaPassRate)}</td>
              <td class="num">{num(v.confidenceMean)}</td>
              {failures.map((f) => (
                <td class="num" key={f}>
                  {count(v.schemaFailures[f] ?? 0)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function Llm(props: { stats: StatsPicture; children?: preact.ComponentChildren }) {
  const variants = present(props.stats).flatMap(([name, v]) => (v.llm !== null ? [[name, v.llm] as const] : []));
  if (variants.length === 0) return null;
  return (
    <section class="panel">
      <h2>LLM answers</h2>
      <table class="grid" data-testid="llm">
        <thead>
          <tr>
            <th>variant</th>
            <th class="num">answers</th>
            <th class="num">prompt tokens p50</th>
            <th class="num">completion tokens p50</th>
            <th class="num">citation rate</th>
            <th class="num">abstention rate</th>
            <th class="num">fallback rate</th>
          </tr>
        </thead>
        <tbody>
          {variants.map(([name, llm]) => (
            <tr key={name}>
              <td>{name}</td>
              <td class="num">{count(llm.outputs)}</td>
              <td class="num">{num(llm.promptP50)}</td>
              <td class="num">{num(llm.completionP50)}</td>
              <td class="num">{percent(llm.citationRate)}</td>
              <td class="num">{percent(llm.abstainRate)}</td>
              <td class="num">{percent(llm.fallbackRate)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {props.children}
    </section>
  );
}

/** Streamed LLM answers per variant: what ttft_p95_ms, tpot_p95_ms, stream_cut_off_rate and output_tokens_per_answer judge. */
export function Streams(props: { stats: StatsPicture }) {
  const variants = present(props.stats).flatMap(([name, v]) => (v.streams !== null ? [[name, v.streams] as const] : []));
  if (variants.length === 0) return null;
  return (
    <section class="panel">
      <h2>Streamed answers</h2>
      <table class="grid" data-testid="streams">
        <thead>
          <tr>
            <th>variant</th>
            <th class="num">streams</th>
            <th class="num">first token p50</th>
            <th class="num">first token p95</th>
            <th class="num">per token p50</th>
            <th class="num">per token p95</th>
            <th class="num">cut off</th>
            <th class="num">tokens per answer</th>
          </tr>
        </thead>
        <tbody>
          {variants.map(([name, s]) => (
            <tr key={name}>
              <td>{name}</td>
              <td class="num">{count(s.count)}</td>
              <td class="num">{ms(s.ttftP50)}</td>
              <td class="num">{ms(s.ttftP95)}</td>
              <td class="num">{ms(s.tpotP50)}</td>
              <td class="num">{ms(s.tpotP95)}</td>
              <td class="num">{percent(s.cutOffRate)}</td>
              <td class="num">{num(s.outputTokensMean)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function Shadow(props: { stats: StatsPicture; children?: preact.ComponentChildren }) {
  const shadow = props.stats.variants.shadow;
  if (!props.stats.hasShadow || !shadow) return null;
  const c = shadow.comparison;
  const stable = props.stats.variants.stable;
  return (
    <section class="panel">
      <h2>Shadow</h2>
      <dl class="facts wide" data-testid="shadow">
        <dt>mirrored</dt>
        <dd>{count(shadow.requests)}</dd>
        <dt>compared</dt>
        <dd>{count(c?.compared)}</dd>
        <dt>prediction agreement</dt>
        <dd>{percent(c?.agreementRate)}</dd>
        <dt>status match</dt>
        <dd>{percent(c?.statusMatchRate)}</dd>
        <dt>confidence delta p50 / p95</dt>
        <dd>
          {num(c?.confidenceDeltaP50)} / {num(c?.confidenceDeltaP95)}
        </dd>
        <dt>latency p95 shadow vs primary</dt>
        <dd>
          {ms(shadow.p95)} vs {ms(stable?.p95)}
        </dd>
        <dt>error rate shadow</dt>
        <dd>{percent(shadow.errorRate)}</dd>
        <dt>dropped / skipped (large body) / incomplete</dt>
        <dd>
          {count(c?.dropped)} / {count(c?.skippedLargeBody)} / {count(c?.incomplete)}
        </dd>
      </dl>
      {props.children}
    </section>
  );
}
