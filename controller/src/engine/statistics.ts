/**
 * The engine's statistics, one file per concern: sequences.ts (proportions and quantiles), means.ts (bounded
 * means, posted values), special.ts (special functions, the traffic-mix test), power.ts (samples needed).
 * This module only gathers them for callers that want one import.
 */
export * from "./special.ts";
export * from "./sequences.ts";
export * from "./means.ts";
