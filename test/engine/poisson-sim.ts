import type { MetricReading, RolloutCounts } from "../../controller/src/metrics/provider.ts";
import { binomialSmall, poisson, prepare, rng, SIM_VARIANTS, Tally, tallyCounts, type PreparedBehavior, type SimConfig } from "./sim-core.ts";

/**
 * The same traffic drawn per tick instead of per request, for the many-runs false-alarm check: the number
 * of requests in a tick is Poisson, so (Poisson splitting) every (variant, segment value, latency bucket)
 * count is an independent Poisson draw, and errors / invalid answers are binomial within each cell. Same
 * distributions as TrafficSim with Poisson arrivals, at a cost independent of the traffic.
 */
export class PoissonTrafficSim {
  private readonly random: () => number;
  private readonly values: string[];
  private readonly tallies: Tally[][];
  private readonly behaviors: PreparedBehavior[][];
  private readonly shares: Float64Array[];
  /** Per behavior: bucket probabilities (the +Inf bucket last), for Poisson splitting. */
  private readonly bucketP: Float64Array[][];
  private shadowSeen = false;
  private errorFactor = 1;
  /** Its own stream, so that adding the paired draws left every other draw of a seed as it was. */
  private readonly pairedRandom: () => number;

  constructor(private readonly config: SimConfig) {
    this.random = rng(config.seed);
    this.pairedRandom = rng(config.seed ^ 0x9e3779b9);
    this.values = config.segment ? Object.keys(config.segment.shares) : [];
    this.tallies = SIM_VARIANTS.map(() => [new Tally(), ...this.values.map(() => new Tally())]);
    this.behaviors = SIM_VARIANTS.map((variant) =>
      this.values.length === 0 ? [prepare(config.behavior(variant, null))] : this.values.map((value) => prepare(config.behavior(variant, value))),
    );
    this.bucketP = this.behaviors.map((row) =>
      row.map((b) => {
        const p = new Float64Array(b.cdf.length + 1);
        let previous = 0;
        for (let i = 0; i < b.cdf.length; i++) {
          p[i] = b.cdf[i] - previous;
          previous = b.cdf[i];
        }
        p[b.cdf.length] = 1 - previous;
        return p;
      }),
    );
    const segment = config.segment;
    this.shares = SIM_VARIANTS.map((variant) => {
      const shares = variant === "canary" && segment?.canaryShares ? segment.canaryShares : (segment?.shares ?? {});
      return this.values.length === 0 ? Float64Array.of(1) : Float64Array.from(this.values.map((v) => shares[v] ?? 0));
    });
  }

  /**
   * A tick with Poisson(meanRequests) primary requests at the given weights. `errorFactor` scales every
   * variant's error rate alike for this tick (load-dependent errors, a diurnal cycle).
   */
  run(meanRequests: number, weights: { canaryPercent: number; shadowPercent: number }, errorFactor = 1): void {
    this.errorFactor = errorFactor;
    const rates = [
      meanRequests * (1 - weights.canaryPercent / 100),
      (meanRequests * weights.canaryPercent) / 100,
      (meanRequests * weights.shadowPercent) / 100,
    ];
    for (let v = 0; v < 3; v++) {
      if (rates[v] <= 0) continue;
      if (v === 2) this.shadowSeen = true;
      const shares = this.shares[v];
      for (let k = 0; k < shares.length; k++) {
        const mean = rates[v] * shares[k];
        if (mean <= 0) continue;
        this.cell(v, k, mean);
        // The primaries of the mirrored requests, timed like the calls (primary_latency_us): by Poisson splitting,
        // independent draws from the primary variants' latency, in proportion to their weights.
        if (v === 2) {
          const canaryShare = weights.canaryPercent / 100;
          if (canaryShare < 1) this.pairedCell(0, k, mean * (1 - canaryShare));
          if (canaryShare > 0) this.pairedCell(1, k, mean * canaryShare);
        }
      }
    }
  }

  private pairedCell(primary: number, slot: number, mean: number): void {
    const b = this.behaviors[primary][slot];
    const p = this.bucketP[primary][slot];
    const row = this.tallies[2];
    const tallies = this.values.length > 0 ? [row[0], row[1 + slot]] : [row[0]];
    for (let i = 0; i < p.length; i++) {
      if (p[i] < 1e-15) continue;
      const c = poisson(this.pairedRandom, mean * p[i]);
      if (c === 0) continue;
      for (const t of tallies) {
        t.pairedBuckets[i] += c;
        t.pairedSumUs += c * b.midUs[i];
      }
    }
  }

  private cell(variant: number, slot: number, mean: number): void {
    const b = this.behaviors[variant][slot];
    const p = this.bucketP[variant][slot];
    const row = this.tallies[variant];
    const segmentTally = this.values.length > 0 ? row[1 + slot] : null;
    let n = 0;
    for (let i = 0; i < p.length; i++) {
      if (p[i] < 1e-15) continue;
      const c = poisson(this.random, mean * p[i]);
      if (c === 0) continue;
      n += c;
      for (const t of segmentTally ? [row[0], segmentTally] : [row[0]]) {
        t.buckets[i] += c;
        t.latencySumUs += c * b.midUs[i];
      }
    }
    const errors = binomialSmall(this.random, n, Math.min(1, b.errorRate * this.errorFactor));
    const invalid = binomialSmall(this.random, n - errors, 1 - b.schemaPassRate);
    for (const t of segmentTally ? [row[0], segmentTally] : [row[0]]) {
      t.requests += n;
      t.errors += errors;
      t.invalid += invalid;
      t.valid += n - errors - invalid;
    }
  }

  reading(): MetricReading<RolloutCounts> {
    return { status: "measured", value: this.counts(), sources: [{ url: "sim", ok: true }] };
  }

  counts(): RolloutCounts {
    const view = (v: number, slot: number) => tallyCounts(this.tallies[v][slot], this.config.allBuckets ?? false);
    const counts: RolloutCounts = { stable: view(0, 0), canary: view(1, 0), segments: {} };
    if (this.shadowSeen) counts.shadow = view(2, 0);
    if (this.config.segment) {
      const perValue: RolloutCounts["segments"][string] = {};
      this.values.forEach((value, k) => {
        perValue[value] = { stable: view(0, k + 1), canary: view(1, k + 1), ...(this.shadowSeen ? { shadow: view(2, k + 1) } : {}) };
      });
      counts.segments[this.config.segment.dimension] = perValue;
    }
    return counts;
  }
}
