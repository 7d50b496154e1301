/**
 * PromQL gates read one number per tick from Prometheus (GPU OOM events, pod restarts, ...). This is the
 * only engine file doing I/O, and only behind the PromQLSource interface; step() receives the readings.
 */
import type { MetricReading } from "../metrics/provider.ts";
import { describeFetchError } from "../net.ts";
import type { PromQLGate } from "./gate-spec.ts";
import type { EngineSpec } from "./spec.ts";

export interface PromQLSource {
  /**
   * The query's value at `at` (ms since the epoch): a number, null when it matched no series (an empty
   * vector: often "no such event yet", sometimes a typo, so the gate decides what it means), or
   * unmeasurable when Prometheus could not be asked or answered something that is not one number.
   */
  query(promql: string, at: number): Promise<MetricReading<number | null>>;
}

export interface PrometheusHttpSourceOptions {
  /** e.g. http://127.0.0.1:9090 (a path prefix is kept: http://host/prometheus). */
  baseUrl: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
}

/** Prometheus' instant query API: GET /api/v1/query?query=...&time=<unix seconds>. */
export class PrometheusHttpSource implements PromQLSource {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  constructor(options: PrometheusHttpSourceOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.headers = options.headers ?? {};
  }

  async query(promql: string, at: number): Promise<MetricReading<number | null>> {
    const url = `${this.baseUrl}/api/v1/query?${new URLSearchParams({ query: promql, time: (at / 1000).toFixed(3) })}`;
    const fail = (error: string): MetricReading<number | null> => ({
      status: "unmeasurable",
      error: `prometheus ${this.baseUrl}: ${error}`,
      sources: [{ url: this.baseUrl, ok: false, error }],
    });
    let body: unknown;
    try {
      const response = await fetch(url, { headers: { accept: "application/json", ...this.headers }, signal: AbortSignal.timeout(this.timeoutMs) });
      const text = await response.text();
      try {
        body = JSON.parse(text);
      } catch {
        return fail(`HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`);
      }
      if (!response.ok) {
        const detail = (body as { error?: string }).error;
        return fail(`HTTP ${response.status}${detail ? `: ${detail}` : ""}`);
      }
    } catch (error) {
      return fail(describeFetchError(error, this.timeoutMs));
    }
    const result = parseQueryResponse(body);
    if ("error" in result) return fail(result.error);
    return { status: "measured", value: result.value, sources: [{ url: this.baseUrl, ok: true }] };
  }
}

/**
 * The one number of an instant-query answer; a gate needs exactly one (wrap the query in sum() or max()).
 * NaN is passed on as NaN: a ratio of two empty windows (0/0) means nothing was counted yet, which the gate
 * reads as Inconclusive rather than as a failed measurement.
 */
export function parseQueryResponse(body: unknown): { value: number | null } | { error: string } {
  const b = body as { status?: string; error?: string; data?: { resultType?: string; result?: unknown } };
  if (b?.status !== "success") return { error: `query failed: ${b?.error ?? "status is not success"}` };
  const { resultType, result } = b.data ?? {};
  const number = (sample: unknown): { value: number } | { error: string } => {
    const text = Array.isArray(sample) ? sample[1] : undefined;
    if (text === "NaN") return { value: NaN };
    const value = typeof text === "string" ? Number(text) : NaN;
    return Number.isNaN(value) ? { error: `unreadable sample ${JSON.stringify(sample)}` } : { value };
  };
  switch (resultType) {
    case "scalar":
      return number(result);
    case "vector": {
      const series = Array.isArray(result) ? (result as Array<{ value?: unknown }>) : [];
      const [only, ...more] = series;
      if (only === undefined) return { value: null };
      if (more.length > 0) return { error: `query returned ${series.length} series; a gate needs one number (aggregate with sum() or max())` };
      return number(only.value);
    }
    default:
      return { error: `query returned a ${resultType ?? "missing"} result; a gate needs a scalar or a one-series vector` };
  }
}

/** Every PromQL gate's reading for this tick, asked concurrently; feed the result to step() as `promql`. */
export async function readPromQLGates(spec: EngineSpec, source: PromQLSource, at: number): Promise<Record<string, MetricReading<number | null>>> {
  const gates = spec.gates.filter((g): g is PromQLGate => g.kind === "promql");
  const readings = await Promise.all(
    gates.map(async (gate): Promise<[string, MetricReading<number | null>]> => {
      try {
        return [gate.name, await source.query(gate.query, at)];
      } catch (error) {
        // A source must not throw, but one that does only makes this gate unmeasurable.
        return [gate.name, { status: "unmeasurable", error: (error as Error).message, sources: [] }];
      }
    }),
  );
  return Object.fromEntries(readings);
}
