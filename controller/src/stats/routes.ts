import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { UnavailableError } from "../errors.ts";
import type { MetricProvider } from "../metrics/provider.ts";
import { summarizeShadow, summarizeVariant } from "../metrics/summary.ts";
import type { SliceCounts } from "../metrics/provider.ts";
import { rolloutFromPath } from "../rollouts/routes.ts";
import { ErrorBody, RolloutNameParams } from "../rollouts/schemas.ts";
import type { RolloutStore } from "../rollouts/store.ts";

const NullableNumber = Type.Union([Type.Number(), Type.Null()]);

const Distribution = Type.Object({ p50: NullableNumber, p95: NullableNumber, count: Type.Number() });
const Counts = Type.Record(Type.String(), Type.Number());

const OutputStats = Type.Object({
  analyzed: Type.Number(),
  labels: Counts,
  schema: Type.Union([
    Type.Object({ validated: Type.Number(), valid: Type.Number(), passRate: NullableNumber, failures: Counts }),
    Type.Null(),
  ]),
  unanalyzed: Counts,
  guard: Type.Object({ replaced: Type.Number(), failed: Type.Number(), skipped: Type.Number() }),
  confidence: Type.Object({ p50: NullableNumber, p95: NullableNumber, count: Type.Number(), mean: NullableNumber }),
  llm: Type.Union([
    Type.Object({
      outputs: Type.Number(),
      promptTokens: Distribution,
      completionTokens: Distribution,
      citationRate: NullableNumber,
      abstainRate: NullableNumber,
      fallbackRate: NullableNumber,
    }),
    Type.Null(),
  ]),
});

const ShadowComparison = Type.Object({
  compared: Type.Number(),
  statusMatchRate: NullableNumber,
  predictionAgreementRate: NullableNumber,
  predictionMissing: Type.Number(),
  confidenceDelta: Distribution,
  primaryLatencyMs: Type.Object(
    { p50: NullableNumber, p95: NullableNumber, count: Type.Number() },
    { description: "The primary's answers to the mirrored requests, timed like the mirrored calls (request complete -> whole answer): what the shadow's latencyMs is compared with." },
  ),
  dropped: Type.Number(),
  skippedLargeBody: Type.Number(),
  incomplete: Type.Number(),
});

const VariantStats = Type.Object({
  requests: Type.Number(),
  responses: Type.Object({
    "2xx": Type.Number(),
    "3xx": Type.Number(),
    "4xx": Type.Number(),
    "5xx": Type.Number(),
    local: Type.Number(),
  }),
  errorRate: NullableNumber,
  latencyMs: Type.Object({ p50: NullableNumber, p95: NullableNumber, count: Type.Number() }),
  output: Type.Optional(OutputStats),
  comparison: Type.Optional(ShadowComparison),
});

const SliceStats = Type.Object({ stable: VariantStats, canary: VariantStats, shadow: Type.Optional(VariantStats) });

export const RolloutStatsBody = Type.Object({
  rollout: Type.String(),
  sources: Type.Array(
    Type.Object({ url: Type.String(), ok: Type.Boolean(), error: Type.Optional(Type.String()) }),
  ),
  variants: SliceStats,
  segments: Type.Record(
    Type.String({ description: "segment dimension" }),
    Type.Record(Type.String({ description: "segment value" }), SliceStats),
    { description: "The same stats per segment value, for every dimension the rollout declares." },
  ),
});

export interface StatsRoutesOptions {
  store: RolloutStore;
  metricProvider: MetricProvider;
}

export const statsRoutes: FastifyPluginAsyncTypebox<StatsRoutesOptions> = async (app, { store, metricProvider }) => {
  app.get(
    "/v1/rollouts/:name/stats",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags: ["rollouts"],
        summary: "Per-variant traffic, errors and latency since the proxies started",
        params: RolloutNameParams,
        response: { 200: RolloutStatsBody, 404: ErrorBody, 503: ErrorBody },
      },
    },
    async (request) => {
      const name = store.get(request.params.name).spec.name;
      const reading = await metricProvider.readRollout(name);
      if (reading.status === "unmeasurable") {
        throw new UnavailableError(`rollout ${name}: could not read stats: ${reading.error}`);
      }
      return {
        rollout: name,
        sources: reading.sources,
        variants: summarizeSlice(reading.value),
        segments: Object.fromEntries(
          Object.entries(reading.value.segments).map(([dimension, values]) => [
            dimension,
            Object.fromEntries(Object.entries(values).map(([value, slice]) => [value, summarizeSlice(slice)])),
          ]),
        ),
      };
    },
  );
};

function summarizeSlice(slice: SliceCounts) {
  return {
    stable: summarizeVariant(slice.stable),
    canary: summarizeVariant(slice.canary),
    ...(slice.shadow ? { shadow: summarizeShadow(slice.shadow) } : {}),
  };
}
