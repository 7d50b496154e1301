/**
 * Moves every managed rollout one engine step per tick: read the rollout's counts (and its PromQL gates),
 * step(), apply the result through the store. The state is read after the I/O and applied in the same
 * synchronous turn, so a manual command landing during a read is never overwritten.
 */
import type { FastifyBaseLogger } from "fastify";
import {
  DEFAULT_PROPAGATION,
  DEFAULT_SAMPLE_RATIO,
  isClosed,
  isTerminal,
  needsReadings,
  step,
  type PropagationInput,
  type PropagationPolicy,
  type SampleRatioPolicy,
  type StepResult,
} from "../engine/index.ts";
import { decodeVersions, type ConfigVersionSource, type ProxyVersion } from "../metrics/config-versions.ts";
import { PrometheusHttpSource, type PromQLSource } from "../metrics/prometheus-http.ts";
import type { MetricProvider, MetricReading, RolloutCounts } from "../metrics/provider.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { FinalizeHooks } from "./finalize-hook.ts";
import type { UpstreamLookup } from "../metrics/envoy-upstreams.ts";
import type { WebhookJudges } from "./webhook-judge.ts";
import { readPromQLGates } from "./promql-gates.ts";

interface RolloutDriverOptions {
  store: RolloutStore;
  /** What each Envoy cluster reaches, for the finalize webhook's view. */
  upstreams?: UpstreamLookup;
  metricProvider: MetricProvider;
  clock?: () => Date;
  /** Prometheus base URL for PromQL gates; without it (and without `promql`) those gates read as Error. */
  prometheusUrl?: string;
  /** Replaces the Prometheus HTTP source (tests). */
  promql?: PromQLSource;
  log?: FastifyBaseLogger;
  /** Told about every step that ran (telemetry): the rollout, the result, how long it took, and the counts it read. */
  onStep?: (rollout: string, result: StepResult, seconds: number, counts: MetricReading<RolloutCounts>, now: number) => void;
  /** First retry delay of a failed finalize webhook (doubles per failure, at most 60 s); default 1000 ms. */
  hookRetryMs?: number;
  /** Asks the judges of webhook gates; without it those gates read Error. */
  judges?: WebhookJudges;
  /** The proxies' config versions: a stage's window waits until they run its weights; absent: no wait. */
  configVersions?: ConfigVersionSource | null;
  propagation?: PropagationPolicy;
  sampleRatio?: SampleRatioPolicy;
  /**
   * Whether this replica leads (kube/lease.ts): only the leader steps rollouts. Asked when a tick starts and
   * again right before each decision is applied, after the reads (a leader may have lost its Lease while it
   * waited for them). Default: always (one controller, no election).
   */
  leading?: () => boolean;
  /** Told after every tick this replica ran as leader: how many rollouts it stepped and how long it took. */
  onTick?: (report: TickReport, seconds: number) => void;
}

/** The proxies' versions as one tick read them (before any count), decoded against the newest version. */
type VersionsRead = { proxies: ProxyVersion[]; error: null } | { proxies: null; error: string };

export interface TickReport {
  at: number;
  /** Rollouts stepped, and those whose step threw (logged, retried next tick). */
  stepped: string[];
  failed: Array<{ rollout: string; error: string }>;
}

export class RolloutDriver {
  readonly #store: RolloutStore;
  readonly #metrics: MetricProvider;
  readonly #clock: () => Date;
  readonly #promql: PromQLSource | null;
  readonly #log: FastifyBaseLogger | undefined;
  readonly #onStep: RolloutDriverOptions["onStep"];
  /** Finalize webhooks of Succeeded rollouts: started by the tick, never waited for by it. */
  readonly hooks: FinalizeHooks;
  /** Judges of webhook gates: asked beside the ticks, their latest answers read by each step. */
  readonly judges: WebhookJudges | null;
  readonly #versions: ConfigVersionSource | null;
  readonly #propagation: PropagationPolicy;
  readonly #sampleRatio: SampleRatioPolicy;
  readonly #leading: () => boolean;
  readonly #onTick: RolloutDriverOptions["onTick"];
  #running: Promise<TickReport> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(options: RolloutDriverOptions) {
    this.#store = options.store;
    this.#metrics = options.metricProvider;
    this.#clock = options.clock ?? (() => new Date());
    this.#promql = options.promql ?? (options.prometheusUrl ? new PrometheusHttpSource({ baseUrl: options.prometheusUrl }) : null);
    this.#log = options.log;
    this.#onStep = options.onStep;
    this.judges = options.judges ?? null;
    this.#versions = options.configVersions ?? null;
    this.#propagation = options.propagation ?? DEFAULT_PROPAGATION;
    this.#sampleRatio = options.sampleRatio ?? DEFAULT_SAMPLE_RATIO;
    this.#leading = options.leading ?? (() => true);
    this.#onTick = options.onTick;
    this.hooks = new FinalizeHooks({
      store: options.store,
      clock: options.clock,
      log: options.log,
      retryBaseMs: options.hookRetryMs,
      ...(options.upstreams ? { upstreams: options.upstreams } : {}),
    });
  }

  /** One step for every managed rollout that has not ended. A tick asked for while one runs joins it (no overlap). */
  tick(now: number = this.#clock().getTime()): Promise<TickReport> {
    if (this.#running) return this.#running;
    const running = this.#tick(now).finally(() => {
      this.#running = null;
    });
    this.#running = running;
    return running;
  }

  async #tick(now: number): Promise<TickReport> {
    const report: TickReport = { at: now, stepped: [], failed: [] };
    if (!this.#leading()) return report;
    const started = performance.now();
    const names = this.#store.activeManaged().map((r) => r.spec.name);
    // The versions first, then the counts: a reading that shows the new version is followed by counts taken
    // after every proxy switched, so the window they start holds nothing served under the previous weights.
    const versions = names.length > 0 ? await this.#readVersions(now) : null;
    // Rollouts are independent: read them concurrently, apply each as its readings arrive.
    await Promise.all(
      names.map(async (name) => {
        try {
          if (await this.#stepOne(name, now, versions)) report.stepped.push(name);
        } catch (error) {
          const message = (error as Error).message;
          report.failed.push({ rollout: name, error: message });
          this.#log?.error({ err: error, rollout: name }, "rollout engine step failed");
        }
      }),
    );
    // After the steps, so a rollout that has just succeeded gets its finalize webhook at once.
    if (this.#leading()) this.hooks.run(now);
    this.#onTick?.(report, (performance.now() - started) / 1000);
    return report;
  }

  async #readVersions(now: number): Promise<VersionsRead | null> {
    if (!this.#versions) return null;
    try {
      const read = await this.#versions.read(now);
      if ("error" in read) return { proxies: null, error: read.error };
      // Read after the gauges: no proxy can run a version newer than this.
      const newest = this.#store.version;
      return { proxies: read.map((p) => decodeVersions(p, newest)), error: null };
    } catch (error) {
      return { proxies: null, error: (error as Error).message };
    }
  }

  async #stepOne(name: string, now: number, versions: VersionsRead | null): Promise<boolean> {
    const started = performance.now();
    const before = this.#store.find(name);
    if (!before?.engine || !needsReadings(before.engine.state)) return false;
    // Held for changed upstreams (rollouts/upstreams.ts): no stage moves until accepted; an ended release still finalizes.
    if (before.upstreams?.hold && !isTerminal(before.engine.state.phase)) return false;
    const spec = before.engine.state.spec;
    const countsPromise = this.#metrics.readRollout(name, { at: now, since: before.createdAt.getTime() });
    let promql: Record<string, MetricReading<number | null>> | undefined;
    if (this.#promql && !isTerminal(before.engine.state.phase) && spec.gates.some((g) => g.kind === "promql")) {
      promql = await readPromQLGates(spec, this.#promql, now);
    }
    const counts = await countsPromise;
    // Fresh state after the awaits: deleted, ended or changed by a command meanwhile.
    const current = this.#store.find(name);
    if (!current?.engine || isClosed(current.engine.state.phase)) return false;
    // Deposed while reading: a follower decides nothing (the decision is the new leader's to make).
    if (!this.#leading()) return false;
    // Never waits: it starts the questions due and returns the answers in hand.
    const judges = this.judges?.readings(current, now);
    const propagation: PropagationInput | undefined = versions
      ? { required: current.configVersion, proxies: versions.proxies, error: versions.error, policy: this.#propagation }
      : undefined;
    const result = step(current.engine.state, { now, counts, promql, judges, propagation, sampleRatio: this.#sampleRatio });
    this.#store.applyEngine(name, result);
    this.#onStep?.(name, result, (performance.now() - started) / 1000, counts, now);
    return true;
  }

  /** A tick every intervalMs (the next one starts after the previous ended). */
  start(intervalMs: number): void {
    if (this.#timer || intervalMs <= 0) return;
    this.#stopped = false;
    const schedule = () => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => {
        void this.tick().finally(schedule);
      }, intervalMs);
      this.#timer.unref?.();
    };
    schedule();
  }

  /** No more ticks; waits for a running one to finish. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#running) await this.#running.catch(() => undefined);
    await this.judges?.stop();
    await this.hooks.settle();
  }
}
