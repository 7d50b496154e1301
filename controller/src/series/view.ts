/**
 * The series API's document: its schema (OpenAPI) and the readable form of merged snapshots. Rates are
 * ratios of the step's summed counts; null where the denominator is 0 (nothing to say, not zero).
 */
import { Type, type Static } from "@sinclair/typebox";
import { FIELD, type MergedCell } from "./point.ts";

const N = Type.Union([Type.Number(), Type.Null()]);
const Counts = Type.Record(Type.String(), Type.Number());

const VariantPoint = Type.Object({
  requests: Type.Number(),
  requestsPerSecond: Type.Number(),
  responses: Type.Object({ "2xx": Type.Number(), "3xx": Type.Number(), "4xx": Type.Number(), "5xx": Type.Number(), local: Type.Number() }),
  errorRate: Type.Union([Type.Number(), Type.Null()], { description: "(5xx + local) / responses" }),
  timeoutRate: Type.Union([Type.Number(), Type.Null()], { description: "local replies (Envoy's own: timeouts, resets, refused connections) / responses" }),
  latencyMs: Type.Object(
    { p50: N, p95: N, p99: N, count: Type.Number() },
    { description: "Per snapshot from Envoy's histogram; over a step of several snapshots, their mean weighted by each one's count" },
  ),
  schema: Type.Union([Type.Object({ validated: Type.Number(), passRate: N, failures: Counts }), Type.Null()]),
  labels: Counts,
  unanalyzed: Type.Number(),
  confidence: Type.Union([
    Type.Object({ mean: N, count: Type.Number(), histogram: Type.Array(Type.Number(), { description: "10 bins of 0.1, from [0, 0.1) to [0.9, 1]" }) }),
    Type.Null(),
  ]),
  llm: Type.Union([
    Type.Object({ outputs: Type.Number(), promptTokensMean: N, completionTokensMean: N, citationRate: N, abstainRate: N, fallbackRate: N }),
    Type.Null(),
  ]),
  comparison: Type.Union(
    [
      Type.Object({
        compared: Type.Number(),
        statusMatchRate: N,
        agreementRate: N,
        predictionMissing: Type.Number(),
        confidenceDeltaMean: N,
        dropped: Type.Number(),
        skippedLargeBody: Type.Number(),
        incomplete: Type.Number(),
      }),
      Type.Null(),
    ],
    { description: "The shadow against the primary (shadow variant only)" },
  ),
});
type VariantPoint = Static<typeof VariantPoint>;

const SlicePoint = Type.Object({ stable: Type.Optional(VariantPoint), canary: Type.Optional(VariantPoint), shadow: Type.Optional(VariantPoint) });

export const SeriesPoint = Type.Object({
  at: Type.String({ format: "date-time", description: "Start of the step" }),
  t: Type.Number({ description: "Start of the step, ms since the epoch" }),
  snapshots: Type.Integer({ description: "Snapshots merged into this step" }),
  seconds: Type.Number({ description: "Time the merged snapshots cover" }),
  phase: Type.Union([Type.String(), Type.Null()]),
  stage: Type.Union([Type.String(), Type.Null()]),
  canaryPercent: Type.Number(),
  shadowPercent: Type.Number(),
  slices: Type.Record(Type.String({ description: "overall, or dimension=value" }), SlicePoint),
  gates: Type.Record(Type.String({ description: "gate name" }), Type.Object({ stable: N, candidate: N, status: Type.String() }), {
    description: "The engine's overall measurement of each gate at the step's last snapshot (engine-managed rollouts)",
  }),
});
export type SeriesPoint = Static<typeof SeriesPoint>;

export const SeriesBody = Type.Object({
  rollout: Type.String(),
  from: Type.String({ format: "date-time" }),
  to: Type.String({ format: "date-time" }),
  stepSeconds: Type.Number(),
  retentionHours: Type.Number({ description: "Snapshots older than this are removed" }),
  intervalSeconds: Type.Number({ description: "How often snapshots are taken (the engine tick)" }),
  points: Type.Array(SeriesPoint, { description: "Steps with at least one snapshot, oldest first; a step without traffic is absent" }),
});
export type SeriesBody = Static<typeof SeriesBody>;

const rate = (num: number, den: number): number | null => (den > 0 ? num / den : null);
const ms = (us: number, count: number): number | null => (count > 0 ? Math.round(us) / 1000 : null);

export function variantPoint(cell: MergedCell, seconds: number, variant: string): VariantPoint {
  // Stored rows cut trailing zeros: a field past the end is 0.
  const n = (field: number) => cell.n[field] ?? 0;
  const responses = n(FIELD.r2xx) + n(FIELD.r3xx) + n(FIELD.r4xx) + n(FIELD.r5xx) + n(FIELD.local);
  const count = n(FIELD.latencyCount);
  const compared = n(FIELD.statusMatch) + n(FIELD.statusMismatch);
  const shadow = variant === "shadow";
  return {
    requests: n(FIELD.requests),
    requestsPerSecond: seconds > 0 ? n(FIELD.requests) / seconds : 0,
    responses: { "2xx": n(FIELD.r2xx), "3xx": n(FIELD.r3xx), "4xx": n(FIELD.r4xx), "5xx": n(FIELD.r5xx), local: n(FIELD.local) },
    errorRate: rate(n(FIELD.r5xx) + n(FIELD.local), responses),
    timeoutRate: rate(n(FIELD.local), responses),
    latencyMs: { p50: ms(n(FIELD.p50Us), count), p95: ms(n(FIELD.p95Us), count), p99: ms(n(FIELD.p99Us), count), count },
    schema:
      n(FIELD.schemaValidated) > 0
        ? { validated: n(FIELD.schemaValidated), passRate: rate(n(FIELD.schemaValid), n(FIELD.schemaValidated)), failures: cell.failures }
        : null,
    labels: cell.labels,
    unanalyzed: n(FIELD.unanalyzed),
    confidence:
      n(FIELD.confidenceCount) > 0
        ? { mean: n(FIELD.confidenceSumMilli) / n(FIELD.confidenceCount) / 1000, count: n(FIELD.confidenceCount), histogram: cell.confidence ?? [] }
        : null,
    llm:
      n(FIELD.llmOutputs) > 0
        ? {
            outputs: n(FIELD.llmOutputs),
            promptTokensMean: rate(n(FIELD.promptSum), n(FIELD.promptCount)),
            completionTokensMean: rate(n(FIELD.completionSum), n(FIELD.completionCount)),
            citationRate: rate(n(FIELD.citation), n(FIELD.llmOutputs)),
            abstainRate: rate(n(FIELD.abstained), n(FIELD.llmOutputs)),
            fallbackRate: rate(n(FIELD.fallback), n(FIELD.llmOutputs)),
          }
        : null,
    comparison:
      shadow && (compared > 0 || n(FIELD.dropped) + n(FIELD.skippedLargeBody) + n(FIELD.incomplete) > 0)
        ? {
            compared,
            statusMatchRate: rate(n(FIELD.statusMatch), compared),
            agreementRate: rate(n(FIELD.agree), n(FIELD.agree) + n(FIELD.disagree)),
            predictionMissing: n(FIELD.predictionMissing),
            confidenceDeltaMean: n(FIELD.confidenceDeltaCount) > 0 ? n(FIELD.confidenceDeltaSumMilli) / n(FIELD.confidenceDeltaCount) / 1000 : null,
            dropped: n(FIELD.dropped),
            skippedLargeBody: n(FIELD.skippedLargeBody),
            incomplete: n(FIELD.incomplete),
          }
        : null,
  };
}
