/**
 * Takes the telemetry snapshots: on every engine tick (the driver hands over the counts it read, so Envoy is
 * read once per tick), and on a timer of the same period for the rollouts the engine does not step (manual
 * rollouts, and managed ones for RECORD_AFTER_END_MS after they ended, to show what the rollback did).
 *
 * A snapshot is the window between two readings of Envoy's cumulative counts; the first reading of a rollout
 * (after a create or a controller restart) only starts the next window. A count that went down (an Envoy
 * restarted) starts a new window too. A window without any traffic, and without new gate values, is not
 * written: an idle rollout costs nothing.
 */
import { OVERALL, stageRef, toSnapshot, windowBetween, type CountsSnapshot, type Evaluation } from "../engine/index.ts";
import type { MetricProvider, MetricReading, RolloutCounts } from "../metrics/provider.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { snapshotOf, type StoredGates } from "./point.ts";
import type { SeriesStore } from "./store.ts";

/** After a managed rollout ends, its traffic is still recorded this long. */
const RECORD_AFTER_END_MS = 15 * 60_000;

interface Previous {
  incarnation: number;
  at: number;
  counts: CountsSnapshot;
  gates: string | null;
  /** Requests per variant in the last window, overall. */
  lastRequests: { stable: number; canary: number } | null;
}

interface SeriesRecorderOptions {
  store: RolloutStore;
  series: SeriesStore;
  metricProvider: MetricProvider;
  clock?: () => number;
  log?: { warn(obj: unknown, msg: string): void };
}

export class SeriesRecorder {
  readonly #store: RolloutStore;
  readonly #series: SeriesStore;
  readonly #metrics: MetricProvider;
  readonly #clock: () => number;
  readonly #log: SeriesRecorderOptions["log"];
  readonly #previous = new Map<string, Previous>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #intervalMs = 0;

  constructor(options: SeriesRecorderOptions) {
    this.#store = options.store;
    this.#series = options.series;
    this.#metrics = options.metricProvider;
    this.#clock = options.clock ?? Date.now;
    this.#log = options.log;
  }

  /** One reading of a rollout's cumulative counts (from an engine tick or the timer). */
  record(name: string, reading: MetricReading<RolloutCounts>, now: number, evaluation?: Evaluation | null): void {
    const rollout = this.#store.find(name);
    if (!rollout || reading.status !== "measured") return;
    const counts = toSnapshot(reading.value);
    const incarnation = rollout.createdAt.getTime();
    const previous = this.#previous.get(name);
    const gates = evaluation ? gatesOf(evaluation) : undefined;
    const gatesKey = gates ? JSON.stringify(gates) : null;
    const next: Previous = {
      incarnation,
      at: now,
      counts,
      gates: previous?.gates ?? null,
      lastRequests: previous?.incarnation === incarnation ? previous.lastRequests : null,
    };
    this.#previous.set(name, next);
    if (!previous || previous.incarnation !== incarnation || now <= previous.at) return;
    const { window, reset } = windowBetween(counts, previous.counts);
    if (reset) return;
    const snapshot = snapshotOf(window, gates);
    const overall = snapshot.s[OVERALL];
    // The share of the latest window with traffic: a quiet spell keeps the last one seen.
    if (overall) next.lastRequests = { stable: overall.stable?.n[0] ?? 0, canary: overall.canary?.n[0] ?? 0 };
    const newGates = gatesKey !== null && gatesKey !== previous.gates;
    if (Object.keys(snapshot.s).length === 0 && !newGates) return;
    if (gatesKey !== null) next.gates = gatesKey;
    try {
      this.#series.write({
        rollout: name,
        at: now,
        intervalMs: now - previous.at,
        phase: rollout.engine?.state.phase ?? null,
        stage: rollout.engine ? (stageRef(rollout.engine.state)?.name ?? null) : null,
        canaryPercent: rollout.canaryPercent,
        shadowPercent: rollout.shadowPercent,
        snapshot,
      });
    } catch (error) {
      // History is for people; a failed write must never stop a rollout's engine step.
      this.#log?.warn({ err: error, rollout: name }, "telemetry snapshot not written");
    }
  }

  /** The canary's share of the requests in the rollout's latest window with traffic, percent; null before any. */
  observedCanaryPercent(name: string): number | null {
    const last = this.#previous.get(name)?.lastRequests;
    if (!last || last.stable + last.canary === 0) return null;
    return (last.canary / (last.stable + last.canary)) * 100;
  }

  /** Rollouts the engine does not step but whose traffic is still recorded. */
  idle(now: number): Rollout[] {
    const stepped = new Set(this.#store.activeManaged().map((r) => r.spec.name));
    return this.#store.list().filter((r) => {
      if (r.engine === null) return true;
      if (stepped.has(r.spec.name)) return false;
      const ended = r.engine.state.endedAt;
      return ended !== null && now - ended < RECORD_AFTER_END_MS;
    });
  }

  /** Reads and records every rollout the engine does not step. */
  async sampleIdle(now: number = this.#clock()): Promise<void> {
    const names = new Set(this.idle(now).map((r) => r.spec.name));
    for (const name of this.#previous.keys()) if (!this.#store.find(name)) this.#previous.delete(name);
    await Promise.all(
      [...names].map(async (name) => {
        try {
          this.record(name, await this.#metrics.readRollout(name), now);
        } catch (error) {
          this.#log?.warn({ err: error, rollout: name }, "telemetry reading failed");
        }
      }),
    );
  }

  get intervalMs(): number {
    return this.#intervalMs;
  }

  start(intervalMs: number): void {
    this.#intervalMs = intervalMs;
    if (this.#timer || intervalMs <= 0) return;
    const schedule = () => {
      this.#timer = setTimeout(() => {
        this.#running = this.sampleIdle().finally(() => {
          this.#running = null;
          if (this.#timer) schedule();
        });
      }, intervalMs);
      this.#timer.unref?.();
    };
    schedule();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}

function gatesOf(evaluation: Evaluation): StoredGates {
  const gates: StoredGates = {};
  for (const m of evaluation.measurements) {
    if (m.segment !== null) continue;
    gates[m.gate] = [m.stableValue, m.candidateValue, m.status];
  }
  return gates;
}
