/**
 * Traffic over time for the engine simulations: how many requests a tick brings, and how the error rate of
 * every variant moves with load. Identical models see the same conditions, so none of this may make the
 * engine roll back a candidate as good as stable (false-alarm.test.ts).
 *   steady   Poisson arrivals at a constant rate.
 *   bursty   the rate jumps to 4x for a few ticks now and then (5% of ticks start a burst, lasting 3 ticks
 *            on average), with every variant's error rate doubled during a burst (overload), and a
 *            lognormal wobble (sigma 0.5) from tick to tick otherwise.
 *   diurnal  a compressed day (one hour): the rate swings +-60% around its mean, the error rate +-50%
 *            with it (more errors at the peak).
 */
import { rng } from "./sim-core.ts";

export type TrafficPattern = "steady" | "bursty" | "diurnal";
export const TRAFFIC_PATTERNS: readonly TrafficPattern[] = ["steady", "bursty", "diurnal"];

export interface TickTraffic {
  requests: number;
  errorFactor: number;
}

export const DIURNAL_PERIOD_SECONDS = 3600;

/** A pattern as a function of the tick number; deterministic for a seed. */
export function trafficPattern(pattern: TrafficPattern, meanPerTick: number, tickSeconds: number, seed: number): (tick: number) => TickTraffic {
  const random = rng(seed ^ 0x7a11c);
  const phase = random() * 2 * Math.PI;
  let burstLeft = 0;
  return (tick) => {
    switch (pattern) {
      case "steady":
        return { requests: meanPerTick, errorFactor: 1 };
      case "bursty": {
        if (burstLeft === 0 && random() < 0.05) burstLeft = 1 + Math.floor(-Math.log(1 - random()) * 2);
        if (burstLeft > 0) {
          burstLeft--;
          return { requests: 4 * meanPerTick, errorFactor: 2 };
        }
        const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
        return { requests: meanPerTick * Math.exp(0.5 * z - 0.125), errorFactor: 1 };
      }
      case "diurnal": {
        const wave = Math.sin(phase + (2 * Math.PI * tick * tickSeconds) / DIURNAL_PERIOD_SECONDS);
        return { requests: meanPerTick * (1 + 0.6 * wave), errorFactor: 1 + 0.5 * wave };
      }
    }
  };
}
