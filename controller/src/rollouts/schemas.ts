import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { REASONS_KEYWORD } from "../errors.ts";

import { HEADER_NAME_PATTERN, PATH_PREFIX_PATTERN, ROLLOUT_NAME_PATTERN } from "./patterns.ts";
import { MAX_SEGMENTS, SegmentSpec } from "./segments.ts";
import { OutputSpec } from "./output.ts";
import { SpecView } from "./spec-view.ts";
import { ShadowSpec } from "./shadow.ts";
import { ModelsSpec } from "./models.ts";
import { ClustersSpec } from "./clusters.ts";
import { ENGINE_SPEC_KEYS } from "../engine/index.ts";

const engineKey = (description: string) => Type.Optional(Type.Unknown({ description }));
// Written out (not mapped from ENGINE_SPEC_KEYS) so RolloutSpec's static type has the keys; a test checks both lists agree.
export const ENGINE_PROPERTIES = {
  owner: engineKey("Who answers for this rollout. Required for a rollout managed by the engine."),
  rollbackCondition: engineKey("In words: when this rollout must be undone. Required for a managed rollout."),
  changeKind: engineKey("major | minor (default minor); a major change starts with a shadow stage."),
  impact: engineKey("high | normal (default normal); high ends in AwaitingReview until a review is posted."),
  stages: engineKey("Release stages: 'shadow', a canary percent, or a stage object. Default shadow, 1, 5, 25, 50, 100."),
  stageDefaults: engineKey("minDurationSeconds, minRequests, deadlineSeconds, onDeadline, segmentTrafficShare for every stage."),
  promotion_gates: engineKey("Gate name -> limits, in the seed's format."),
  statistics: engineKey("{ falseAlarmRate, harmMultiple }: bound on wrongly rolling back a good candidate; how clear a harm early stages must be able to detect."),
  expectedTraffic: engineKey("{ requestsPerSecond, smallestSegmentShare }: the traffic expected, for per-stage duration estimates and deadline warnings before any traffic is seen."),
  trafficMix: engineKey("{ check, holdOnMismatch, alpha, minDifference }: canary vs stable segment mix."),
  finalize: engineKey("{ webhook: { url, timeoutMs }, verifyPercent, verifyAnswers, deadlineSeconds }: after Succeeded, how stable comes to serve the new model and how that is verified."),
};

export { HEADER_NAME_PATTERN, PATH_PREFIX_PATTERN, ROLLOUT_NAME_PATTERN };

export const RolloutName = Type.String({
  pattern: ROLLOUT_NAME_PATTERN,
  maxLength: 63,
  description: "DNS label: lowercase letters, digits and '-', 1 to 63 characters.",
  examples: ["fraud-model"],
  [REASONS_KEYWORD]: {
    pattern:
      "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit (no dots)",
  },
});

// A function, not a shared constant, so the spec's optional copy can carry a default of its own.
const canaryPercent = (extra: { default?: number } = {}) =>
  Type.Number({
    ...extra,
    minimum: 0,
    maximum: 100,
    // 0.01% is one basis point, the filter's unit; anything finer would be silently rounded.
    multipleOf: 0.01,
    description: "Share of traffic sent to the canary, 0 to 100 with at most two decimals.",
    examples: [5],
    [REASONS_KEYWORD]: {
      multipleOf: "must have at most two decimals (0.01% is one basis point, the smallest step)",
    },
  });

export const RolloutSpec = Type.Object(
  {
    name: RolloutName,
    match: Type.Object(
      {
        pathPrefix: Type.String({
          pattern: PATH_PREFIX_PATTERN,
          maxLength: 256,
          examples: ["/v1/predict"],
          [REASONS_KEYWORD]: { pattern: "must start with / and contain no whitespace" },
        }),
      },
      { additionalProperties: false },
    ),
    stickyKey: Type.Object(
      {
        header: Type.String({
          pattern: HEADER_NAME_PATTERN,
          maxLength: 128,
          description: "Request header whose value keeps a caller on one variant, e.g. x-user-id.",
          examples: ["x-user-id"],
          [REASONS_KEYWORD]: { pattern: "must be a lowercase HTTP header name, e.g. x-user-id" },
        }),
      },
      { additionalProperties: false },
    ),
    canaryPercent: Type.Optional(canaryPercent({ default: 0 })),
    segments: Type.Optional(
      Type.Array(SegmentSpec, { maxItems: MAX_SEGMENTS, description: "Dimensions to count and gate per value, e.g. tenant tier." }),
    ),
    shadow: Type.Optional(ShadowSpec),
    output: Type.Optional(OutputSpec),
    models: Type.Optional(ModelsSpec),
    clusters: Type.Optional(ClustersSpec),
    // The release process (engine/spec-schema.ts): checked by parseEngineSpec, whose errors point inside
    // them and join the 400's details. Any of these keys makes the rollout managed by the engine.
    ...ENGINE_PROPERTIES,
  },
  { additionalProperties: false },
);
export type RolloutSpec = Static<typeof RolloutSpec>;

/** The engine keys of a rollout spec (ENGINE_SPEC_KEYS), left to parseEngineSpec. */
export function enginePart(spec: Record<string, unknown>): Record<string, unknown> | null {
  const part: Record<string, unknown> = {};
  for (const key of ENGINE_SPEC_KEYS) if (spec[key] !== undefined) part[key] = spec[key];
  return Object.keys(part).length > 0 ? part : null;
}

export const WeightChange = Type.Object(
  { canaryPercent: canaryPercent() },
  { additionalProperties: false },
);
export type WeightChange = Static<typeof WeightChange>;

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const IntervalView = Type.Object({ lower: Nullable(Type.Number()), upper: Nullable(Type.Number()) });
const LiveEvaluationView = Type.Object({
  at: Type.String({ format: "date-time" }),
  stage: Nullable(Type.Object({ index: Type.Integer(), name: Type.String() })),
  windowStartedAt: Nullable(Type.String({ format: "date-time" })),
  traffic: Nullable(Type.Object({ requestsPerSecond: Type.Number(), candidatePerSecond: Type.Number() })),
  observedCanaryPercent: Nullable(Type.Number({ description: "In a canary stage, the canary's real share of the path's requests over the stage's window, to set beside the set weight." })),
  secondsToDecision: Nullable(Type.Number({ description: "Expected seconds until the stage decides at the current traffic; null when it cannot be told (no traffic, an error, a review)." })),
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
      requirement: Nullable(Type.String({ description: "What this stage asks of the slice: pass, detect (enough samples to detect clear harm), none (can fail, does not hold)." })),
      scope: Nullable(Type.String({ description: "rollout: evidence since the rollout began; stage: this stage's window." })),
      unit: Type.String(),
      value: Nullable(Type.Number()),
      stableValue: Nullable(Type.Number()),
      interval: Nullable(IntervalView),
      comparison: Nullable(IntervalView),
      confidence: Nullable(Type.Number()),
      samples: Type.Number(),
      stableSamples: Type.Number(),
      needed: Nullable(Type.Object({ pass: Nullable(Type.Number()), detect: Nullable(Type.Number()) }, { description: "Candidate samples to reach a verdict, and to be able to detect clear harm." })),
      harm: Nullable(Type.Number()),
      threshold: Nullable(
        Type.Object(
          { kind: Type.String(), value: Type.Number(), tolerance: Type.Optional(Type.Number()) },
          { description: "The limit that decides (or the first not yet shown): maximum, minimum, maxDelta, minDelta or maxRatio, in the gate's display unit; tolerance: a latency gate's tolerance_ms." },
        ),
      ),
      reason: Type.String(),
    }),
  ),
});
const ForecastView = Type.Object({
  basis: Type.String({ description: "observed traffic, or expected traffic (the spec's expectedTraffic, before any is seen)" }),
  stages: Type.Array(Type.Object({ stage: Type.String(), seconds: Nullable(Type.Number()), limitedBy: Nullable(Type.String()), deadlineSeconds: Type.Number() })),
  warnings: Type.Array(Type.String()),
});

export const RolloutView = Type.Object({
  name: Type.String(),
  spec: SpecView,
  shadowPercent: Type.Number({ description: "Current share mirrored to the shadow (0 without a shadow, or after a rollback)." }),
  canaryPercent: Type.Number(),
  canaryBasisPoints: Type.Integer({ minimum: 0, maximum: 10000 }),
  configVersion: Type.Integer({ description: "Config version at which this rollout last changed." }),
  revision: Type.Integer({
    minimum: 1,
    description: "Changes on every write and whenever the engine moves the phase, stage or weights; also the ETag. Send it back in If-Match to refuse a write made on a stale view (412).",
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
    description: "The next step, in words, when it is up to someone (finalize after Succeeded, a review, resume, deleting an ended rollout); null while the engine moves it.",
  }),
  lastRollback: Type.Union([Type.Object({ at: Type.String({ format: "date-time" }), by: Type.String(), reason: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]),
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
  forecast: Type.Union([ForecastView, Type.Null()], {
    description: "Expected duration of the stages left (from the observed traffic, or before any from the spec's expectedTraffic); null when ended or unknown.",
  }),
});
export type RolloutView = Static<typeof RolloutView>;

export const RolloutList = Type.Object({ rollouts: Type.Array(RolloutView) });

export const RolloutNameParams = Type.Object({ name: Type.String({ maxLength: 253 }) });

/** Optional on every write to an existing rollout: the ETag (revision) it was read at. */
export const IfMatchHeaders = Type.Object({
  "if-match": Type.Optional(Type.String({ maxLength: 200, description: "ETag from a previous read (e.g. \"7\"), or *; a mismatch is a 412." })),
});

const Reason = Type.String({ minLength: 1, maxLength: 2000, description: "Why, for the record." });
/** The optional body of a command (rollback, pause, fail, ...): a POST without a body is fine. */
export const CommandBody = Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false, description: "Optional: a POST without a body is fine." });

export const ErrorBody = Type.Object({
  error: Type.String(),
  details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), reason: Type.String() }))),
});
