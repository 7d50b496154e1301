import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { stageRef, toSnapshot, type EngineState } from "../engine/index.ts";
import { InvalidRequestError, UnavailableError } from "../errors.ts";
import type { MetricProvider } from "../metrics/provider.ts";
import { summarizeShadow, summarizeVariant, type VariantSummary } from "../metrics/summary.ts";
import type { SliceCounts } from "../metrics/provider.ts";
import { ErrorBody, RolloutNameParams } from "../http/schemas.ts";
import { rolloutFromPath } from "../http/subject.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { countsSince, type WindowCounts } from "./baseline.ts";
import { countsFromSnapshot } from "./snapshot-counts.ts";

const NullableNumber = Type.Union([Type.Number(), Type.Null()]);

const Distribution = Type.Object({ p50: NullableNumber, p95: NullableNumber, count: Type.Number() });
const Counts = Type.Record(Type.String(), Type.Number());

const OutputStats = Type.Object({
  analyzed: Type.Number(),
  labels: Counts,
  schema: Type.Union([Type.Object({ validated: Type.Number(), valid: Type.Number(), passRate: NullableNumber, failures: Counts }), Type.Null()]),
  unanalyzed: Counts,
  guard: Type.Object({ replaced: Type.Number(), failed: Type.Number(), skipped: Type.Number() }),
  confidence: Type.Object({ p50: NullableNumber, p95: NullableNumber, count: Type.Number(), mean: NullableNumber }),
  toolCalls: Type.Optional(
    Type.Object(
      {
        count: Type.Number(),
        valid: Type.Number(),
        invalidJson: Type.Number(),
        schemaFailed: Type.Number(),
        unknownTool: Type.Number(),
        validRate: NullableNumber,
      },
      { description: "Tool calls judged against output.tools: arguments JSON and valid against the tool's schema, or why not." },
    ),
  ),
  streams: Type.Union([
    Type.Object(
      {
        count: Type.Number(),
        chunks: Type.Number(),
        ttftMs: Distribution,
        tpotMs: Distribution,
        cutOffRate: NullableNumber,
        malformedRate: NullableNumber,
        finish: Counts,
        outputTokensMean: NullableNumber,
      },
      { description: "Streamed LLM answers (SSE, NDJSON): time to first token, time per output token (ms), cut-off and malformed rates, finish reasons." },
    ),
    Type.Null(),
  ]),
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
  noise: Type.Optional(
    Type.Object(
      { requests: Type.Number(), compared: Type.Number(), agreementRate: NullableNumber },
      { description: "Stable asked again on a sample of the mirrored requests (shadow.noisePercent): how often it agrees with itself." },
    ),
  ),
  confidenceDelta: Distribution,
  primaryLatencyMs: Type.Object(
    { p50: NullableNumber, p95: NullableNumber, count: Type.Number() },
    {
      description:
        "The primary's answers to the mirrored requests, timed like the mirrored calls (request complete -> whole answer): what the shadow's latencyMs is compared with.",
    },
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

const StatsQuery = Type.Object({
  window: Type.Optional(
    Type.Unsafe<"rollout" | "stage">({
      type: "string",
      enum: ["rollout", "stage"],
      default: "rollout",
      description:
        "rollout (default): since this rollout was created, not counting an earlier rollout of the same name. " +
        "stage: the current stage's window as the engine judges it (engine-managed rollouts only).",
    }),
  ),
});

const StatsWindow = Type.Object({
  kind: Type.Union([Type.Literal("rollout"), Type.Literal("stage")]),
  since: Type.Union([Type.String({ format: "date-time" }), Type.Null()], {
    description: "Start of the window: the rollout's creation, or the stage window's start (null before the engine's first reading of the stage).",
  }),
  stage: Type.Optional(Type.Union([Type.Object({ index: Type.Number(), name: Type.String() }), Type.Null()])),
  envoyRestarted: Type.Boolean({ description: "A count went down since the window started: an Envoy restarted, and the counts are since its restart." }),
  note: Type.Union([Type.String(), Type.Null()]),
});

const RolloutStatsBody = Type.Object({
  rollout: Type.String(),
  window: StatsWindow,
  sources: Type.Array(Type.Object({ url: Type.String(), ok: Type.Boolean(), error: Type.Optional(Type.String()) })),
  variants: SliceStats,
  segments: Type.Record(Type.String({ description: "segment dimension" }), Type.Record(Type.String({ description: "segment value" }), SliceStats), {
    description: "The same stats per segment value, for every dimension the rollout declares.",
  }),
});

interface StatsRoutesOptions {
  store: RolloutStore;
  metricProvider: MetricProvider;
  clock?: () => Date;
}

export const statsRoutes: FastifyPluginAsyncTypebox<StatsRoutesOptions> = async (app, { store, metricProvider, clock = () => new Date() }) => {
  app.get(
    "/v1/rollouts/:name/stats",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags: ["rollouts"],
        summary: "Per-variant traffic, errors and latency since the rollout was created, or over the current stage's window",
        description:
          "Read from every Envoy admin endpoint and summed. Counts are this rollout's own: what Envoy had counted under " +
          "the same name before it was created (an earlier rollout of that name) is subtracted. Latencies are in ms, " +
          "rounded: two decimals below 10 ms, one below 100 ms, whole ms above.",
        params: RolloutNameParams,
        querystring: StatsQuery,
        response: { 200: RolloutStatsBody, 400: ErrorBody, 404: ErrorBody, 503: ErrorBody },
      },
    },
    async (request) => {
      const rollout = store.get(request.params.name);
      const name = rollout.spec.name;
      const kind = request.query.window ?? "rollout";
      if (kind === "stage" && rollout.engine === null) {
        throw new InvalidRequestError(`rollout ${name}: no stage window: the rollout is not managed by the engine (use window=rollout)`, [
          { path: "/window", reason: "stage windows exist for engine-managed rollouts only" },
        ]);
      }
      const reading = await metricProvider.readRollout(name, { at: clock().getTime(), since: rollout.createdAt.getTime() });
      if (reading.status === "unmeasurable") {
        throw new UnavailableError(`rollout ${name}: could not read stats: ${reading.error}`);
      }
      // Fresh after the await: the rollout may have moved to another stage, or been deleted and created again.
      const current = store.get(name);
      let window: Window;
      if (kind === "stage") {
        // Deleted and created again as a manual rollout during the read: no stage window any more.
        if (current.engine === null) throw noStageWindow(name);
        window = stageWindow(current.engine.state, toSnapshot(reading.value));
      } else {
        window = rolloutWindow(store, current, toSnapshot(reading.value), clock());
      }
      const counts = countsFromSnapshot(window.counted.counts);
      return {
        rollout: name,
        window: { ...window.describe, envoyRestarted: window.counted.envoyRestarted },
        sources: reading.sources,
        variants: summarizeSlice(counts),
        segments: Object.fromEntries(
          Object.entries(counts.segments).map(([dimension, values]) => [
            dimension,
            Object.fromEntries(Object.entries(values).map(([value, slice]) => [value, summarizeSlice(slice)])),
          ]),
        ),
      };
    },
  );
};

interface Window {
  counted: WindowCounts;
  describe: { kind: "rollout" | "stage"; since: string | null; stage?: { index: number; name: string } | null; note: string | null };
}

/**
 * Since the rollout was created. A count that went down means an Envoy restarted since: from then on its
 * counts are this rollout's only, so the baseline becomes zero (kept, so that counts climbing back past the
 * old baseline are not mistaken for a window).
 */
function rolloutWindow(store: RolloutStore, rollout: Rollout, current: ReturnType<typeof toSnapshot>, now: Date): Window {
  const baseline = rollout.statsBaseline;
  const since = rollout.createdAt.toISOString();
  if (baseline === undefined) {
    return {
      counted: countsSince(current, null),
      describe: { kind: "rollout", since, note: "created before per-rollout counting: counts since the Envoys started" },
    };
  }
  if (baseline.kind === "unknown") {
    return {
      counted: countsSince(current, null),
      describe: {
        kind: "rollout",
        since,
        note: `Envoy's counts could not be read when the rollout was created (${baseline.error}): an earlier rollout of the same name may be included`,
      },
    };
  }
  const counted = countsSince(current, baseline.kind === "counts" ? baseline.counts : null);
  if (counted.envoyRestarted) {
    try {
      store.setStatsBaseline(rollout.spec.name, { at: now.toISOString(), kind: "zero", note: `an Envoy restart was seen at ${now.toISOString()}` });
    } catch {
      // Not kept (state file write failed): the next read sees the same drop and says the same.
    }
    return { counted, describe: { kind: "rollout", since, note: "an Envoy restarted since the rollout was created: counts since its restart" } };
  }
  return { counted, describe: { kind: "rollout", since, note: baseline.kind === "zero" ? (baseline.note ?? null) : null } };
}

/** The engine's current stage window: current minus the stage's baseline. */
function noStageWindow(name: string): InvalidRequestError {
  return new InvalidRequestError(`rollout ${name}: no stage window: the rollout is not managed by the engine (use window=rollout)`, [
    { path: "/window", reason: "stage windows exist for engine-managed rollouts only" },
  ]);
}

function stageWindow(state: EngineState, current: ReturnType<typeof toSnapshot>): Window {
  const stage = stageRef(state);
  if (state.baseline === null) {
    const note = state.stageIndex < 0 ? "no stage started yet" : "the stage's window starts at the engine's next reading";
    return { counted: { counts: { slices: {} }, envoyRestarted: false }, describe: { kind: "stage", since: null, stage, note } };
  }
  const counted = countsSince(current, state.baseline);
  const since = state.baselineAt === null ? null : new Date(state.baselineAt).toISOString();
  const note = counted.envoyRestarted
    ? "an Envoy restarted since the stage's window started: counts since its restart (the engine starts a new window at its next tick)"
    : null;
  return { counted, describe: { kind: "stage", since, stage, note } };
}

/** Latency for people: two decimals below 10 ms, one below 100 ms, whole ms above. */
export function roundMs(ms: number | null): number | null {
  if (ms === null) return null;
  const digits = ms < 10 ? 100 : ms < 100 ? 10 : 1;
  return Math.round(ms * digits) / digits;
}

function rounded(summary: VariantSummary): VariantSummary {
  return { ...summary, latencyMs: { ...summary.latencyMs, p50: roundMs(summary.latencyMs.p50), p95: roundMs(summary.latencyMs.p95) } };
}

function summarizeSlice(slice: SliceCounts) {
  return {
    stable: rounded(summarizeVariant(slice.stable)),
    canary: rounded(summarizeVariant(slice.canary)),
    ...(slice.shadow ? { shadow: rounded(summarizeShadow(slice.shadow)) } : {}),
  };
}
