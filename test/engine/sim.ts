/**
 * Simulated traffic for engine tests: a seeded stream of requests split stable/canary by the weights the
 * engine asked for, mirrored to a shadow, with per-variant and per-segment error rates, latency and schema
 * pass rates, counted into cumulative RolloutCounts exactly as the metric provider reports them (latency
 * into the bootstrap's own histogram buckets). PoissonTrafficSim (poisson-sim.ts) draws the same traffic per tick.
 */
import type { MetricReading, RolloutCounts, VariantCounts } from "../../controller/src/metrics/provider.ts";
import { geometric, prepare, rng, SIM_VARIANTS, Tally, tallyCounts, type PreparedBehavior, type SimConfig } from "./sim-core.ts";

export { ENVOY_LATENCY_BOUNDS, GOOD, poisson, reviewScores, rng, type Behavior, type SimConfig, type SimVariant } from "./sim-core.ts";
export { PoissonTrafficSim } from "./poisson-sim.ts";

export class TrafficSim {
  private readonly random: () => number;
  private readonly values: string[];
  /** [variant][0] overall, [variant][1 + value index] per segment value. */
  private readonly tallies: Tally[][];
  private readonly behaviors: PreparedBehavior[][];
  private readonly shares: Float64Array[];
  private shadowSeen = false;
  private readonly skips: Array<Array<{ untilError: number; untilInvalid: number }>>;

  constructor(private readonly config: SimConfig) {
    this.random = rng(config.seed);
    this.values = config.segment ? Object.keys(config.segment.shares) : [];
    this.tallies = SIM_VARIANTS.map(() => [new Tally(), ...this.values.map(() => new Tally())]);
    this.behaviors = SIM_VARIANTS.map((variant) =>
      this.values.length === 0 ? [prepare(config.behavior(variant, null))] : this.values.map((value) => prepare(config.behavior(variant, value))),
    );
    this.skips = this.behaviors.map((row) =>
      row.map((b) => ({ untilError: geometric(this.random, b.errorRate), untilInvalid: geometric(this.random, 1 - b.schemaPassRate) })),
    );
    const segment = config.segment;
    this.shares = SIM_VARIANTS.map((variant) => {
      const shares = variant === "canary" && segment?.canaryShares ? segment.canaryShares : (segment?.shares ?? {});
      return Float64Array.from(this.values.map((v) => shares[v] ?? 0));
    });
  }

  /**
   * `requests` primary requests at the given weights, each possibly mirrored. Per request only the variant,
   * the segment value and the latency bucket are drawn; errors and invalid answers are placed by geometric
   * skips (one draw per rare event), which gives exactly the same distribution as a coin per request.
   */
  run(requests: number, weights: { canaryPercent: number; shadowPercent: number }): void {
    const r = this.random;
    const canary = weights.canaryPercent / 100;
    const shadow = weights.shadowPercent / 100;
    for (let i = 0; i < requests; i++) {
      const variant = canary > 0 && r() < canary ? 1 : 0;
      const value = this.pickValue(variant);
      const primaryBucket = this.serve(variant, value);
      if (shadow > 0 && r() < shadow) {
        this.serve(2, value);
        // The filter times the primary of a mirrored request like the call; the simulation has no path difference.
        const midUs = this.behaviors[variant][Math.max(value, 0)].midUs[primaryBucket];
        const row = this.tallies[2];
        for (const t of value >= 0 ? [row[0], row[1 + value]] : [row[0]]) {
          t.pairedBuckets[primaryBucket]++;
          t.pairedSumUs += midUs;
        }
      }
    }
  }

  private pickValue(variant: number): number {
    const shares = this.shares[variant];
    if (shares.length === 0) return -1;
    let u = this.random();
    for (let k = 0; k < shares.length; k++) {
      u -= shares[k];
      if (u < 0) return k;
    }
    return shares.length - 1;
  }

  /** Returns the latency bucket drawn. */
  private serve(variant: number, value: number): number {
    if (variant === 2) this.shadowSeen = true;
    const slot = Math.max(value, 0);
    const b = this.behaviors[variant][slot];
    const skip = this.skips[variant][slot];
    // Geometric skips: requests left until the next error / invalid answer.
    let error = false;
    if (skip.untilError-- <= 0) {
      error = true;
      skip.untilError = geometric(this.random, b.errorRate);
    }
    let valid = true;
    if (!error && skip.untilInvalid-- <= 0) {
      valid = false;
      skip.untilInvalid = geometric(this.random, 1 - b.schemaPassRate);
    }
    // Inverse transform over the bucket CDF: the bucket a lognormal latency falls in, exactly.
    const u = this.random();
    const cdf = b.cdf;
    let lo = 0;
    let hi = cdf.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (u <= cdf[mid]) hi = mid;
      else lo = mid + 1;
    }
    const row = this.tallies[variant];
    this.count(row[0], error, valid, lo, b.midUs[lo]);
    if (value >= 0) this.count(row[1 + value], error, valid, lo, b.midUs[lo]);
    return lo;
  }

  private count(t: Tally, error: boolean, valid: boolean, bucket: number, latencyUs: number): void {
    t.requests++;
    if (error) t.errors++;
    else if (valid) t.valid++;
    else t.invalid++;
    t.latencySumUs += latencyUs;
    t.buckets[bucket]++;
  }

  /** Cumulative counts as the metric provider reports them. */
  counts(): RolloutCounts {
    const counts: RolloutCounts = { stable: this.variantCounts(0, 0), canary: this.variantCounts(1, 0), segments: {} };
    if (this.shadowSeen) counts.shadow = this.variantCounts(2, 0);
    if (this.config.segment) {
      const perValue: RolloutCounts["segments"][string] = {};
      this.values.forEach((value, k) => {
        const slice: RolloutCounts["segments"][string][string] = { stable: this.variantCounts(0, k + 1), canary: this.variantCounts(1, k + 1) };
        if (this.shadowSeen) slice.shadow = this.variantCounts(2, k + 1);
        perValue[value] = slice;
      });
      counts.segments[this.config.segment.dimension] = perValue;
    }
    return counts;
  }

  reading(): MetricReading<RolloutCounts> {
    return { status: "measured", value: this.counts(), sources: [{ url: "sim", ok: true }] };
  }

  private variantCounts(variant: number, slot: number): VariantCounts {
    return tallyCounts(this.tallies[variant][slot], this.config.allBuckets ?? false);
  }
}
