import { describeFetchError } from "../net.ts";
import { envoyStatsPath } from "./envoy-series.ts";
import type { Sample } from "./prometheus-text.ts";
import type { MetricProvider, MetricReading, ReadWindow, RolloutCounts, SourceStatus } from "./provider.ts";
import { RolloutCountsSum, rolloutSamplesFromText } from "./rollout-counts.ts";

interface EnvoyAdminOptions {
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

  /** Envoy counts since it started, whatever the window: the engine subtracts its stage baseline. */
  async readRollout(rollout: string, _window?: ReadWindow): Promise<MetricReading<RolloutCounts>> {
    if (this.#adminUrls.length === 0) {
      return { status: "unmeasurable", error: "no Envoy admin endpoints configured", sources: [] };
    }
    const sum = new RolloutCountsSum(rollout);
    const arrived: Array<Scrape | null> = this.#adminUrls.map(() => null);
    let next = 0;
    const sources = await Promise.all(
      this.#adminUrls.map(async (url, i) => {
        const scrape = (arrived[i] = await this.#scrape(url, rollout));
        // Summed in the endpoints' order (so the same sums to the last bit whoever answers first), each as
        // soon as its turn comes: its samples need not wait for the slowest endpoint.
        for (let s = arrived[next]; s !== null && s !== undefined; s = arrived[++next]) {
          if (s.status.ok) sum.add(s.samples);
          s.samples = [];
        }
        return scrape.status;
      }),
    );
    if (!sources.some((s) => s.ok)) {
      const failures = sources.map((s) => `${s.url}: ${s.error}`).join("; ");
      return { status: "unmeasurable", error: `every Envoy admin endpoint failed (${failures})`, sources };
    }
    const value = sum.finish();
    return { status: "measured", value, sources };
  }

  /** Asks for this rollout's stats only, and keeps only the lines about it (another server may send more). */
  async #scrape(url: string, rollout: string): Promise<Scrape> {
    try {
      const response = await fetch(url + envoyStatsPath(rollout), {
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      const body = await response.text();
      if (!response.ok) {
        return failed(url, `HTTP ${response.status}${body ? `: ${body.slice(0, 200).trim()}` : ""}`);
      }
      return { status: { url, ok: true }, samples: rolloutSamplesFromText(body, rollout) };
    } catch (error) {
      return failed(url, describeFetchError(error, this.#timeoutMs));
    }
  }
}

function failed(url: string, error: string): Scrape {
  return { status: { url, ok: false, error }, samples: [] };
}
