/**
 * Prometheus' HTTP API (instant queries), for the two things the controller asks it: the one number of a
 * PromQL gate (PrometheusHttpSource), and the filter's series behind the built-in gates
 * (prometheus-provider.ts). Moved here from the engine, which only receives the readings.
 */
import { describeFetchError } from "../net.ts";
import type { MetricReading } from "./provider.ts";

export interface PromQLSource {
  /**
   * The query's value at `at` (ms since the epoch): a number, null when it matched no series (an empty
   * vector: often "no such event yet", sometimes a typo, so the gate decides what it means), or
   * unmeasurable when Prometheus could not be asked or answered something that is not one number.
   */
  query(promql: string, at: number): Promise<MetricReading<number | null>>;
}

interface PrometheusClientOptions {
  /** e.g. http://127.0.0.1:9090 (a path prefix is kept: http://host/prometheus). */
  baseUrl: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
}

/** One series of an instant vector, or one of a range vector (matrix) with its samples (ms, value). */
export interface VectorSample {
  labels: Record<string, string>;
  value: number;
}
export interface MatrixSeries {
  labels: Record<string, string>;
  samples: Array<[number, number]>;
}

type QueryAnswer = { ok: true; resultType: string; result: unknown } | { ok: false; error: string };

// Beyond this the query goes in a form body: a URL that long may be cut by a proxy in between.
const MAX_GET_URL = 4000;

/** Instant queries: GET or POST /api/v1/query with `time` in unix seconds. */
export class PrometheusClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly #headers: Record<string, string>;
  /** Bytes of every answer body so far (the bench reports them per tick). */
  bytesReceived = 0;

  constructor(options: PrometheusClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.#headers = options.headers ?? {};
  }

  async instant(promql: string, at: number): Promise<QueryAnswer> {
    const params = new URLSearchParams({ query: promql, time: (at / 1000).toFixed(3) });
    const getUrl = `${this.baseUrl}/api/v1/query?${params}`;
    const post = getUrl.length > MAX_GET_URL;
    let body: unknown;
    // A timer of our own, raced with the whole exchange: a tick must end even if a body read never settles.
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new DOMException(`no answer within ${this.timeoutMs} ms`, "TimeoutError");
        abort.abort(error);
        reject(error);
      }, this.timeoutMs);
    });
    try {
      const exchange = (async () => {
        const response = await fetch(post ? `${this.baseUrl}/api/v1/query` : getUrl, {
          method: post ? "POST" : "GET",
          headers: { accept: "application/json", ...(post ? { "content-type": "application/x-www-form-urlencoded" } : {}), ...this.#headers },
          ...(post ? { body: params.toString() } : {}),
          signal: abort.signal,
        });
        return { response, text: await response.text() };
      })();
      const { response, text } = await Promise.race([exchange, expired]);
      this.bytesReceived += Buffer.byteLength(text);
      try {
        body = JSON.parse(text);
      } catch {
        return { ok: false, error: `HTTP ${response.status}, not JSON: ${text.slice(0, 200)}` };
      }
      if (!response.ok) {
        const detail = (body as { error?: string }).error;
        return { ok: false, error: `HTTP ${response.status}${detail ? `: ${detail}` : ""}` };
      }
    } catch (error) {
      return { ok: false, error: describeFetchError(error, this.timeoutMs) };
    } finally {
      clearTimeout(timer);
    }
    const b = body as { status?: string; error?: string; data?: { resultType?: string; result?: unknown } };
    if (b?.status !== "success") return { ok: false, error: `query failed: ${b?.error ?? "status is not success"}` };
    return { ok: true, resultType: b.data?.resultType ?? "missing", result: b.data?.result };
  }

  /** An instant query expected to answer a vector (possibly empty). */
  async vector(promql: string, at: number): Promise<{ ok: true; samples: VectorSample[] } | { ok: false; error: string }> {
    const answer = await this.instant(promql, at);
    if (!answer.ok) return answer;
    if (answer.resultType !== "vector") return { ok: false, error: `query returned a ${answer.resultType} result, not a vector` };
    const samples: VectorSample[] = [];
    for (const s of (answer.result ?? []) as Array<{ metric?: Record<string, string>; value?: [number, string] }>) {
      samples.push({ labels: s.metric ?? {}, value: readValue(s.value?.[1]) });
    }
    return { ok: true, samples };
  }

  /** A range-vector selector's raw samples (a matrix), as of `at`. */
  async matrix(promql: string, at: number): Promise<{ ok: true; series: MatrixSeries[] } | { ok: false; error: string }> {
    const answer = await this.instant(promql, at);
    if (!answer.ok) return answer;
    if (answer.resultType !== "matrix") return { ok: false, error: `query returned a ${answer.resultType} result, not a matrix` };
    const series: MatrixSeries[] = [];
    for (const s of (answer.result ?? []) as Array<{ metric?: Record<string, string>; values?: Array<[number, string]> }>) {
      series.push({ labels: s.metric ?? {}, samples: (s.values ?? []).map(([t, v]) => [Math.round(t * 1000), readValue(v)]) });
    }
    return { ok: true, series };
  }
}

function readValue(text: string | undefined): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

/** PromQL gates: one number per query, asked at the tick's time. */
export class PrometheusHttpSource implements PromQLSource {
  readonly #client: PrometheusClient;

  constructor(options: PrometheusClientOptions | PrometheusClient) {
    this.#client = options instanceof PrometheusClient ? options : new PrometheusClient(options);
  }

  async query(promql: string, at: number): Promise<MetricReading<number | null>> {
    const baseUrl = this.#client.baseUrl;
    const fail = (error: string): MetricReading<number | null> => ({
      status: "unmeasurable",
      error: `prometheus ${baseUrl}: ${error}`,
      sources: [{ url: baseUrl, ok: false, error }],
    });
    const answer = await this.#client.instant(promql, at);
    if (!answer.ok) return fail(answer.error);
    const result = parseQueryResponse({ status: "success", data: { resultType: answer.resultType, result: answer.result } });
    if ("error" in result) return fail(result.error);
    return { status: "measured", value: result.value, sources: [{ url: baseUrl, ok: true }] };
  }
}

/**
 * The one number of an instant-query answer; a gate needs exactly one (wrap the query in sum() or max()).
 * NaN is passed on as NaN: a ratio of two empty windows (0/0) means nothing was counted yet, which the gate
 * reads as Inconclusive rather than as a failed measurement.
 */
function parseQueryResponse(body: unknown): { value: number | null } | { error: string } {
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
      if (series.length > 1) return { error: `query returned ${series.length} series; a gate needs one number (aggregate with sum() or max())` };
      const [only] = series;
      return only === undefined ? { value: null } : number(only.value);
    }
    default:
      return { error: `query returned a ${resultType ?? "missing"} result; a gate needs a scalar or a one-series vector` };
  }
}
