/**
 * An app whose metric provider is a traffic simulator: each round, the simulated traffic uses the weights
 * the filter config serves (as Envoy would), the injected clock moves one tick, and the driver steps.
 */
import type { FastifyInstance } from "fastify";
import type { BuildAppOptions } from "../../controller/src/app.ts";
import type { MetricProvider, MetricReading, RolloutCounts } from "../../controller/src/metrics/provider.ts";
import { testApp, EPOCH } from "../controller/helpers.ts";
import { GOOD, PoissonTrafficSim, type Behavior } from "../engine/sim.ts";

export { EPOCH };
export const T0 = Date.UTC(2026, 0, 1);
export const TIMING = { minDurationSeconds: 60, minRequests: 300, deadlineSeconds: 3600 };

export function managedSpec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "fraud-model",
    match: { pathPrefix: "/v1/predict" },
    stickyKey: { header: "x-user-id" },
    shadow: { percent: 10 },
    owner: "team-fraud",
    rollbackCondition: "errors above 1% or p95 up 10%",
    stages: ["shadow", 10, 50, 100],
    stageDefaults: TIMING,
    promotion_gates: { error_rate: { maximum: 0.01 }, latency_p95_ms: { maximum_regression_percent: 10 } },
    ...overrides,
  };
}

/** Fake provider: readings come from a simulator, or a fixed answer when `reading` is set. */
export class SimProvider implements MetricProvider {
  readonly reads: string[] = [];
  reading: MetricReading<RolloutCounts> | null = null;
  constructor(readonly sim: PoissonTrafficSim) {}
  async readRollout(rollout: string): Promise<MetricReading<RolloutCounts>> {
    this.reads.push(rollout);
    return this.reading ?? this.sim.reading();
  }
}

export interface Weights {
  canaryPercent: number;
  shadowPercent: number;
  version: number;
}

export interface Harness {
  app: FastifyInstance;
  provider: SimProvider;
  sim: PoissonTrafficSim;
  now: () => number;
  /** The weights the filters get for the rollout. */
  served(): Promise<Weights>;
  /** Traffic at the served weights for one tick, then the clock moves and the driver steps. */
  round(requests?: number): Promise<Weights>;
  view(): Promise<Record<string, any>>;
}

export interface HarnessOptions {
  canary?: Partial<Behavior>;
  seed?: number;
  tickSeconds?: number;
  /** SQLite state file (default in memory). */
  stateFile?: string;
  /** Continue a previous harness's traffic and clock (a controller restarted while Envoy kept counting). */
  resume?: { sim: PoissonTrafficSim; now: number };
  /** More app options (notification targets, a logger, ...). */
  app?: Partial<BuildAppOptions>;
}

export async function harness(options: HarnessOptions = {}): Promise<Harness> {
  let now = options.resume?.now ?? T0;
  const tickMs = (options.tickSeconds ?? 10) * 1000;
  const sim =
    options.resume?.sim ??
    new PoissonTrafficSim({
      seed: options.seed ?? 20260101,
      behavior: (variant) => (variant === "stable" ? GOOD : { ...GOOD, ...options.canary }),
    });
  const provider = new SimProvider(sim);
  const app = await testApp({ ...options.app, clock: () => new Date(now), metricProvider: provider, tickIntervalMs: 0, stateFile: options.stateFile });
  const served = async (): Promise<Weights> => {
    const config = (await app.inject({ url: "/v1/filter-config" })).json();
    const rollout = config.rollouts.find((r: { name: string }) => r.name === "fraud-model");
    // Gone from the table (archived or deleted): its path goes to stable.
    if (!rollout) return { canaryPercent: 0, shadowPercent: 0, version: config.version };
    return { canaryPercent: rollout.canaryBasisPoints / 100, shadowPercent: (rollout.shadow?.basisPoints ?? 0) / 100, version: config.version };
  };
  return {
    app,
    provider,
    sim,
    now: () => now,
    served,
    async round(requests = 20000) {
      const weights = await served();
      sim.run(requests, weights);
      now += tickMs;
      await app.modelroll.driver.tick();
      return weights;
    },
    async view() {
      return (await app.inject({ url: "/v1/rollouts/fraud-model" })).json();
    },
  };
}
