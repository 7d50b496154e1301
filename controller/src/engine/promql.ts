/**
 * PromQL gates read one number per tick from Prometheus (GPU OOM events, pod restarts, ...). The engine only
 * says which queries its gates need; the caller asks Prometheus (metrics/prometheus-http.ts,
 * release/promql-gates.ts) and passes the readings to step() as `promql`.
 */
import type { PromQLGate } from "./gate-spec.ts";
import type { EngineSpec } from "./spec.ts";

/** Every PromQL gate of the spec with its query, in the spec's order. */
export function promqlQueries(spec: EngineSpec): Array<{ gate: string; query: string }> {
  return spec.gates.filter((g): g is PromQLGate => g.kind === "promql").map((g) => ({ gate: g.name, query: g.query }));
}
