import { Type, type Static } from "@sinclair/typebox";
import { REASONS_KEYWORD } from "../errors.ts";

import { HEADER_NAME_PATTERN, PATH_PREFIX_PATTERN, ROLLOUT_NAME_PATTERN } from "./patterns.ts";
import { MAX_SEGMENTS, SegmentSpec } from "./segments.ts";
import { OutputSpec } from "./output.ts";
import { ShadowSpec } from "./shadow.ts";
import { ModelsSpec } from "./models.ts";
import { ClustersSpec } from "./clusters.ts";
import { MatchModelProperties, ModelRewriteSpec } from "./model-route.ts";
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
  statistics: engineKey(
    "{ falseAlarmRate, harmMultiple }: bound on wrongly rolling back a good candidate; how clear a harm early stages must be able to detect.",
  ),
  expectedTraffic: engineKey(
    "{ requestsPerSecond, smallestSegmentShare }: the traffic expected, for per-stage duration estimates and deadline warnings before any traffic is seen.",
  ),
  trafficMix: engineKey("{ check, holdOnMismatch, alpha, minDifference }: canary vs stable segment mix."),
  finalize: engineKey(
    "{ webhook: { url, timeoutMs }, verifyPercent, verifyAnswers, deadlineSeconds }: after Succeeded, how stable comes to serve the new model and how that is verified.",
  ),
  notifications: engineKey(
    "{ targets: [{ name, format: webhook|slack|teams, url, events, timeoutMs }], controllerTargets, gateErrorAfterSeconds }: who is told about the rollout's events; schema NotificationsInput under components.",
  ),
};

export { HEADER_NAME_PATTERN, PATH_PREFIX_PATTERN, ROLLOUT_NAME_PATTERN };

const RolloutName = Type.String({
  pattern: ROLLOUT_NAME_PATTERN,
  maxLength: 63,
  description: "DNS label: lowercase letters, digits and '-', 1 to 63 characters.",
  examples: ["fraud-model"],
  [REASONS_KEYWORD]: {
    pattern: "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit (no dots)",
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
        ...MatchModelProperties,
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
    segments: Type.Optional(Type.Array(SegmentSpec, { maxItems: MAX_SEGMENTS, description: "Dimensions to count and gate per value, e.g. tenant tier." })),
    shadow: Type.Optional(ShadowSpec),
    output: Type.Optional(OutputSpec),
    models: Type.Optional(ModelsSpec),
    clusters: Type.Optional(ClustersSpec),
    modelRewrite: Type.Optional(ModelRewriteSpec),
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

export const WeightChange = Type.Object({ canaryPercent: canaryPercent() }, { additionalProperties: false });
export type WeightChange = Static<typeof WeightChange>;
