/**
 * A rollout as the API shows it (GET /v1/rollouts/{name}, every write's answer, the event stream, the finalize
 * webhook's payload): its schema for the OpenAPI document and the serializer, and the projection from the
 * store's Rollout.
 */
import type { FastifyReply } from "fastify";
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { liveEvaluation, rolloutForecast, specWarnings, stageRef } from "../engine/index.ts";
import type { ArchiveEntry } from "../rollouts/archive.ts";
import { pendingOf } from "../rollouts/lifecycle-view.ts";
import { toBasisPoints, type Rollout } from "../rollouts/model.ts";
import { etagOf } from "./etag.ts";
import { SpecView, specView } from "./spec-view.ts";
import { UpstreamsView, upstreamsView } from "./upstreams-view.ts";
import type { UpstreamLookup } from "../metrics/envoy-upstreams.ts";
import { VariantsView, variantsOf } from "./variants-view.ts";

declare module "fastify" {
  interface FastifyInstance {
    /** What each Envoy cluster reaches, for the views' `variants` (buildApp decorates it; absent: unknown). */
    upstreamLookup?: UpstreamLookup;
  }
}

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const IntervalView = Type.Object({ lower: Nullable(Type.Number()), upper: Nullable(Type.Number()) });
const PropagationView = Type.Object(
  {
    required: Type.Integer({ description: "The config version that carried the stage's weights." }),
    since: Type.Number({ description: "When the weights were decided (ms since the epoch)." }),
    confirmedAt: Nullable(Type.Number({ description: "When the window started: the first reading in which the proxies ran the version." })),
    rule: Nullable(Type.String({ description: "all, share (enough proxies after the wait), unknown (none reported after the wait); null while waiting." })),
    ready: Type.Integer(),
    total: Type.Integer(),
    laggards: Type.Array(Type.Object({ proxy: Type.String(), oldest: Nullable(Type.Number()), note: Nullable(Type.String()) })),
    policy: Type.Object({ share: Type.Number(), waitSeconds: Type.Number() }),
    error: Nullable(Type.String()),
  },
  { description: "Whether the data plane runs the stage's weights; the stage's window waits for it (docs: the stage window)." },
);
const SampleRatioView = Type.Object(
  {
    status: Type.String({ description: "passed, mismatch (holds the stage), notEnoughData" }),
    observed: Type.Object({ stable: Type.Number(), canary: Type.Number() }),
    expected: Type.Object({ stable: Type.Number(), canary: Type.Number() }),
    setCanaryPercent: Type.Number(),
    observedCanaryPercent: Nullable(Type.Number()),
    statistic: Nullable(Type.Number()),
    pValue: Nullable(Type.Number()),
    policy: Type.Object({ p: Type.Number(), minRequests: Type.Number() }),
    text: Type.String(),
  },
  { description: "The window's requests per variant against the set weight (chi-square goodness of fit)." },
);
const LiveEvaluationView = Type.Object({
  at: Type.String({ format: "date-time" }),
  stage: Nullable(Type.Object({ index: Type.Integer(), name: Type.String() })),
  windowStartedAt: Nullable(Type.String({ format: "date-time" })),
  traffic: Nullable(Type.Object({ requestsPerSecond: Type.Number(), candidatePerSecond: Type.Number() })),
  observedCanaryPercent: Nullable(
    Type.Number({ description: "In a canary stage, the canary's real share of the path's requests over the stage's window, to set beside the set weight." }),
  ),
  secondsToDecision: Nullable(
    Type.Number({
      description: "Expected seconds until the stage decides at the current traffic; null when it cannot be told (no traffic, an error, a review).",
    }),
  ),
  limitedBy: Nullable(Type.String()),
  holds: Type.Array(
    Type.Object({
      text: Type.String(),
      gate: Nullable(Type.String()),
      slice: Nullable(Type.String()),
      samples: Nullable(Type.Number()),
      needed: Nullable(Type.Number()),
      seconds: Nullable(Type.Number({ description: "Expected seconds until this hold clears at the current traffic." })),
    }),
    { description: "What holds the stage: per gate and slice, the samples it has and needs, and the time that takes." },
  ),
  warnings: Type.Array(Type.String(), { description: "Stages not expected to conclude before their deadline at the observed traffic." }),
  gates: Type.Array(
    Type.Object({
      gate: Type.String(),
      slice: Type.String({ description: "overall, or dimension=value" }),
      status: Type.String(),
      requirement: Nullable(
        Type.String({
          description:
            "What this stage asks of the slice: pass, detect (the estimate within the limit and the interval within the stage bound), none (can fail, does not hold).",
        }),
      ),
      scope: Nullable(Type.String({ description: "rollout: evidence since the rollout began; stage: this stage's window." })),
      unit: Type.String(),
      value: Nullable(Type.Number()),
      stableValue: Nullable(Type.Number()),
      interval: Nullable(IntervalView),
      comparison: Nullable(IntervalView),
      confidence: Nullable(Type.Number()),
      samples: Type.Number(),
      stableSamples: Type.Number(),
      needed: Nullable(
        Type.Object(
          { pass: Nullable(Type.Number()), detect: Nullable(Type.Number()) },
          { description: "Candidate samples to reach a verdict (pass), and for the interval to be within the stage bound at the expected value (detect)." },
        ),
      ),
      harm: Nullable(
        Type.Number({ description: "The stage bound a detect slice must rule out before a bigger stage (display units; a ratio for a ratio limit)." }),
      ),
      threshold: Nullable(
        Type.Object(
          { kind: Type.String(), value: Type.Number(), tolerance: Type.Optional(Type.Number()) },
          {
            description:
              "The limit that decides (or the first not yet shown): maximum, minimum, maxDelta, minDelta or maxRatio, in the gate's display unit; tolerance: a latency gate's tolerance_ms.",
          },
        ),
      ),
      reason: Type.String(),
    }),
  ),
  propagation: Nullable(PropagationView),
  sampleRatio: Nullable(SampleRatioView),
});
const ForecastView = Type.Object({
  basis: Type.String({ description: "observed traffic, or expected traffic (the spec's expectedTraffic, before any is seen)" }),
  stages: Type.Array(
    Type.Object({ stage: Type.String(), seconds: Nullable(Type.Number()), limitedBy: Nullable(Type.String()), deadlineSeconds: Type.Number() }),
  ),
  warnings: Type.Array(Type.String()),
});

export const RolloutView = Type.Object({
  name: Type.String(),
  spec: SpecView,
  variants: VariantsView,
  shadowPercent: Type.Number({ description: "Current share mirrored to the shadow (0 without a shadow, or after a rollback)." }),
  canaryPercent: Type.Number(),
  canaryBasisPoints: Type.Integer({ minimum: 0, maximum: 10000 }),
  configVersion: Type.Integer({ description: "Config version at which this rollout last changed." }),
  revision: Type.Integer({
    minimum: 1,
    description:
      "Changes on every write and whenever the engine moves the phase, stage or weights; also the ETag. Send it back in If-Match to refuse a write made on a stale view (412).",
  }),
  createdAt: Type.String({ format: "date-time" }),
  updatedAt: Type.String({ format: "date-time" }),
  lastRollbackAt: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  managed: Type.Boolean({ description: "Driven by the rollout engine (the spec has stages, promotion_gates, owner, ...)." }),
  phase: Type.Union([Type.String(), Type.Null()], { description: "The engine's phase; null for a manual rollout." }),
  stage: Type.Union([Type.Object({ index: Type.Integer(), name: Type.String() }), Type.Null()], {
    description: "The engine's current stage; null for a manual rollout or before the first stage.",
  }),
  pending: Type.Union([Type.String(), Type.Null()], {
    description:
      "The next step, in words, when it is up to someone (finalize after Succeeded, a review, resume, deleting an ended rollout); null while the engine moves it.",
  }),
  lastRollback: Type.Union([
    Type.Object({ at: Type.String({ format: "date-time" }), by: Type.String(), reason: Type.Union([Type.String(), Type.Null()]) }),
    Type.Null(),
  ]),
  finalizeHook: Type.Union(
    [
      Type.Object({
        attempts: Type.Integer(),
        lastAttemptAt: Type.Union([Type.String(), Type.Null()]),
        lastError: Type.Union([Type.String(), Type.Null()]),
        nextAttemptAt: Type.Union([Type.String(), Type.Null()]),
        deliveredAt: Type.Union([Type.String(), Type.Null()]),
      }),
      Type.Null(),
    ],
    { description: "Deliveries of the spec's finalize webhook; null until the rollout succeeds, or without a webhook." },
  ),
  archived: Type.Optional(
    Type.Object(
      { id: Type.Integer(), at: Type.String({ format: "date-time" }), reason: Type.String() },
      { description: "Only on archived rollouts: their id under /v1/archive/{id}, when and why they left the live set." },
    ),
  ),
  evaluation: Type.Union([LiveEvaluationView, Type.Null()], {
    description: "The engine's latest evaluation, refreshed every tick; null for a manual rollout or before the first tick.",
  }),
  upstreams: UpstreamsView,
  warnings: Type.Array(Type.Object({ path: Type.String(), reason: Type.String() }), {
    description: "What the accepted spec leaves unprotected (no gates, stages no gate runs in); also in the create and apply answers, and from modelroll lint.",
  }),
  forecast: Type.Union([ForecastView, Type.Null()], {
    description: "Expected duration of the stages left (from the observed traffic, or before any from the spec's expectedTraffic); null when ended or unknown.",
  }),
});
export type RolloutView = Static<typeof RolloutView>;

export const RolloutList = Type.Object({
  rollouts: Type.Array(RolloutView),
  continue: Type.Optional(Type.String({ description: "Present when ?limit left rollouts out: send it back as ?continue= for the next page." })),
});

/** `upstreams`: what the Envoys say each cluster reaches (app.upstreamLookup); without it the view says "unknown". */
export function toView(rollout: Rollout, upstreams?: UpstreamLookup): RolloutView {
  return {
    name: rollout.spec.name,
    spec: specView(rollout),
    variants: variantsOf(rollout, upstreams),
    canaryPercent: rollout.canaryPercent,
    canaryBasisPoints: toBasisPoints(rollout.canaryPercent),
    shadowPercent: rollout.shadowPercent,
    configVersion: rollout.configVersion,
    revision: rollout.revision,
    createdAt: rollout.createdAt.toISOString(),
    updatedAt: rollout.updatedAt.toISOString(),
    lastRollbackAt: rollout.lastRollbackAt?.toISOString() ?? null,
    managed: rollout.engine !== null,
    phase: rollout.engine?.state.phase ?? null,
    stage: rollout.engine ? stageRef(rollout.engine.state) : null,
    ...lifecycleFields(rollout),
    evaluation: rollout.engine ? liveEvaluation(rollout.engine.lastEvaluation) : null,
    upstreams: upstreamsView(rollout),
    warnings: rollout.engine ? specWarnings(rollout.engine.state.spec) : [],
    forecast: rollout.engine ? rolloutForecast(rollout.engine.state, rollout.engine.lastEvaluation) : null,
  };
}

/** The view fields about where the rollout stands in its lifecycle (rollouts/lifecycle-view.ts). */
function lifecycleFields(rollout: Rollout): Pick<RolloutView, "pending" | "lastRollback" | "finalizeHook"> {
  const note = rollout.lastRollbackNote;
  return {
    // A hold for changed upstreams is the next step before anything else (rollouts/upstreams.ts).
    pending: rollout.upstreams?.hold?.reason ?? pendingOf(rollout),
    lastRollback: rollout.lastRollbackAt ? { at: rollout.lastRollbackAt.toISOString(), by: note?.by ?? "api", reason: note?.reason ?? null } : null,
    finalizeHook: rollout.finalizeHook,
  };
}

/** An archived rollout as listed: its view as it was, and where and why it was archived. */
export function archivedView(entry: ArchiveEntry): RolloutView {
  // Archived: where its clusters point now says nothing about what it ran against.
  return { ...toView(entry.rollout), pending: null, archived: { id: entry.id, at: entry.archivedAt.toISOString(), reason: entry.reason } };
}

/** The view of one rollout, with its revision as the ETag a later If-Match can send back. */
export function sendRollout(reply: FastifyReply, rollout: Rollout): RolloutView {
  void reply.header("etag", etagOf(rollout));
  return toView(rollout, reply.server.upstreamLookup);
}
