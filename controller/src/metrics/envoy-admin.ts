import { ENVOY_STATS_PATH } from "./envoy-series.ts";
import { parsePrometheusText, type Sample } from "./prometheus-text.ts";
import type { MetricProvider, MetricReading, RolloutCounts, SourceStatus } from "./provider.ts";
import { rolloutCountsFromSamples } from "./rollout-counts.ts";

export interface EnvoyAdminOptions {
  /** Per endpoint; a hung Envoy must not hold a stats request or a gate evaluation. */
  timeoutMs?: number;
}

interface Scrape {
  status: SourceStatus;
  samples: Sample[];
}

/** Reads the filter's stats straight from each Envoy's admin endpoint and sums them. */
export class EnvoyAdminMetricProvider implements MetricProvider {
  readonly #adminUrls: string[];
  readonly #timeoutMs: number;

  constructor(adminUrls: readonly string[], options: EnvoyAdminOptions = {}) {
    this.#adminUrls = adminUrls.map((url) => url.replace(/\/+$/, ""));
    this.#timeoutMs = options.timeoutMs ?? 2000;
  }

  async readRollout(rollout: string): Promise<MetricReading<RolloutCounts>> {
    if (this.#adminUrls.length === 0) {
      return { status: "unmeasurable", error: "no Envoy admin endpoints configured", sources: [] };
    }
    const scrapes = await Promise.all(this.#adminUrls.map((url) => this.#scrape(url)));
    const sources = scrapes.map((s) => s.status);
    const answered = scrapes.filter((s) => s.status.ok);
    if (answered.length === 0) {
      const failures = sources.map((s) => `${s.url}: ${s.error}`).join("; ");
      return { status: "unmeasurable", error: `every Envoy admin endpoint failed (${failures})`, sources };
    }
    const value = rolloutCountsFromSamples(
      answered.flatMap((s) => s.samples),
      rollout,
    );
    return { status: "measured", value, sources };
  }

  async #scrape(url: string): Promise<Scrape> {
    try {
      const response = await fetch(url + ENVOY_STATS_PATH, {
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      const body = await response.text();
      if (!response.ok) {
        return failed(url, `HTTP ${response.status}${body ? ": " + body.slice(0, 200).trim() : ""}`);
      }
      return { status: { url, ok: true }, samples: parsePrometheusText(body).samples };
    } catch (error) {
      return failed(url, describeFetchError(error, this.#timeoutMs));
    }
  }
}

function failed(url: string, error: string): Scrape {
  return { status: { url, ok: false, error }, samples: [] };
}

// Node's fetch reports "fetch failed" and hides the useful part (ECONNREFUSED, ...) in `cause`.
function describeFetchError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return `no answer within ${timeoutMs} ms`;
  }
  if (error instanceof Error) {
    const cause = error.cause;
    if (cause instanceof Error) {
      const code = (cause as NodeJS.ErrnoException).code;
      return code && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
    }
    return error.message;
  }
  return String(error);
}
