/**
 * The built-in gates' counts from Prometheus instead of each Envoy's admin endpoint: what a mesh needs, where
 * the controller cannot scrape thousands of sidecars every tick but Prometheus already does. Counts are since
 * the rollout began, per series, so pods that go away or restart do not make a sum go down
 * (prometheus-queries.ts says how). Prometheus unreachable, or its newest sample of the filter older than
 * `maxLagMs` at the tick, is unmeasurable: the gates read Error and the stage holds.
 */
import type { PrometheusClient, VectorSample } from "./prometheus-http.ts";
import { lifeEnds, mainQuery, restartedCounts, restartedSidecarQuery, restartSamplesQuery, samplesFrom, splitMainAnswer } from "./prometheus-queries.ts";
import { emptyRolloutCounts, type MetricProvider, type MetricReading, type ReadWindow, type RolloutCounts } from "./provider.ts";
import { RolloutCountsSum } from "./rollout-counts.ts";

/** Default freshness bound: four scrapes at Istio's default 15 s interval. */
const DEFAULT_MAX_LAG_MS = 60_000;

interface PrometheusProviderOptions {
  /** The newest sample of the filter's series may be at most this much older than the tick; default 60 s. */
  maxLagMs?: number;
  /** Restarted sidecars asked about at once. */
  concurrency?: number;
}

/** Rollouts whose values at their start are kept (a bound on memory, not a working-set guess). */
const STARTS_KEPT = 256;

export class PrometheusMetricProvider implements MetricProvider {
  readonly #client: PrometheusClient;
  readonly #maxLagMs: number;
  readonly #concurrency: number;
  /**
   * Summed values at each rollout's start, by "rollout@since": they cannot change once every sample up to
   * the start is in, so they are asked once (half of what a tick costs Prometheus otherwise).
   */
  readonly #starts = new Map<string, VectorSample[]>();

  constructor(client: PrometheusClient, options: PrometheusProviderOptions = {}) {
    this.#client = client;
    this.#maxLagMs = options.maxLagMs ?? DEFAULT_MAX_LAG_MS;
    this.#concurrency = options.concurrency ?? 4;
  }

  get maxLagMs(): number {
    return this.#maxLagMs;
  }

  async readRollout(rollout: string, window?: ReadWindow): Promise<MetricReading<RolloutCounts>> {
    const url = this.#client.baseUrl;
    const fail = (error: string): MetricReading<RolloutCounts> => ({
      status: "unmeasurable",
      error: `prometheus ${url}: ${error}`,
      sources: [{ url, ok: false, error }],
    });
    if (!window) return fail(`rollout ${rollout}: counts from Prometheus need the time the rollout began`);
    const { at, since } = window;
    // Nothing can have been counted yet (the reading at creation).
    if (at - since < 1) return { status: "measured", value: emptyRolloutCounts(), sources: [{ url, ok: true }] };

    const startKey = `${rollout}@${since}`;
    const knownStart = this.#starts.get(startKey);
    const main = await this.#client.vector(mainQuery(rollout, since, at, knownStart === undefined), at);
    if (!main.ok) return fail(main.error);
    const answer = splitMainAnswer(main.samples);
    if (answer.newest === null) {
      return fail("no modelroll_* samples within Prometheus' 5-minute lookback: is it scraping the proxies' /stats/prometheus?");
    }
    const lag = at - answer.newest;
    if (lag > this.#maxLagMs) {
      return fail(
        `its newest modelroll_* sample is ${(lag / 1000).toFixed(1)} s older than the tick (at most ${this.#maxLagMs / 1000} s): Prometheus is lagging or not scraping the proxies`,
      );
    }

    const start = knownStart ?? answer.start;
    // Kept once Prometheus is past the start by more than the freshness bound: every sample up to it is in.
    if (knownStart === undefined && at - since > this.#maxLagMs) {
      const oldest = this.#starts.keys().next();
      if (this.#starts.size >= STARTS_KEPT && !oldest.done) this.#starts.delete(oldest.value);
      this.#starts.set(startKey, start);
    }
    const plus: VectorSample[][] = [answer.now];
    const minus: VectorSample[][] = [start];
    const queue = [...answer.restarted];
    let problem: string | null = null;
    const worker = async () => {
      for (let sidecar = queue.shift(); sidecar && problem === null; sidecar = queue.shift()) {
        const raw = await this.#client.matrix(restartSamplesQuery(rollout, sidecar, since, at), at);
        if (!raw.ok) {
          problem = raw.error;
          return;
        }
        const lives = await this.#client.vector(restartedSidecarQuery(rollout, sidecar, lifeEnds(raw.series), since, at), at);
        if (!lives.ok) {
          problem = lives.error;
          return;
        }
        const parts = restartedCounts(lives.samples);
        plus.push(parts.plus);
        minus.push(parts.minus);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, queue.length) }, worker));
    if (problem !== null) return fail(`a restarted sidecar's counts: ${problem}`);

    const sum = new RolloutCountsSum(rollout);
    sum.add(samplesFrom(plus, minus));
    return { status: "measured", value: sum.finish(), sources: [{ url, ok: true }] };
  }
}
