// Asks Prometheus every PromQL gate's query for one tick, before the engine's pure step() judges them.
import { promqlQueries, type EngineSpec } from "../engine/index.ts";
import type { PromQLSource } from "../metrics/prometheus-http.ts";
import type { MetricReading } from "../metrics/provider.ts";

/** Every PromQL gate's reading for this tick, asked concurrently; feed the result to step() as `promql`. */
export async function readPromQLGates(spec: EngineSpec, source: PromQLSource, at: number): Promise<Record<string, MetricReading<number | null>>> {
  const queries = promqlQueries(spec);
  const readings = await Promise.all(
    queries.map(async ({ gate, query }): Promise<[string, MetricReading<number | null>]> => {
      try {
        return [gate, await source.query(query, at)];
      } catch (error) {
        // A source must not throw, but one that does only makes this gate unmeasurable.
        return [gate, { status: "unmeasurable", error: (error as Error).message, sources: [] }];
      }
    }),
  );
  return Object.fromEntries(readings);
}
