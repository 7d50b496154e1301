/**
 * Which model each variant's upstream answers with, turned into the filter's identity counters
 * (answers{model=stable|canary|other|missing}) on top of the simulated readings: every request a variant
 * answered since the last reading counts for the class its upstream serves now.
 */
import type { MetricReading, RolloutCounts } from "../../controller/src/metrics/provider.ts";
import type { Harness } from "./harness.ts";

export type ModelClass = "stable" | "canary" | "other" | "missing";
const CLASSES: readonly ModelClass[] = ["stable", "canary", "other", "missing"];

export class Answers {
  /** What each upstream answers with now, relative to the rollout's declared models. */
  serves: { stable: ModelClass; canary: ModelClass } = { stable: "stable", canary: "canary" };
  readonly #last = { stable: 0, canary: 0 };
  readonly #counts = { stable: zero(), canary: zero() };

  decorate(reading: MetricReading<RolloutCounts>): MetricReading<RolloutCounts> {
    if (reading.status !== "measured") return reading;
    for (const variant of ["stable", "canary"] as const) {
      const counts = reading.value[variant];
      this.#counts[variant][this.serves[variant]] += Math.max(0, counts.requests - this.#last[variant]);
      this.#last[variant] = counts.requests;
      for (const k of CLASSES) counts.counters[`answers{model=${k}}`] = this.#counts[variant][k];
    }
    return reading;
  }

  /** Feeds the harness's provider through this. */
  attach(h: Harness): this {
    const read = h.provider.readRollout.bind(h.provider);
    h.provider.readRollout = async (rollout: string) => this.decorate(await read(rollout));
    return this;
  }
}

function zero(): Record<ModelClass, number> {
  return { stable: 0, canary: 0, other: 0, missing: 0 };
}
