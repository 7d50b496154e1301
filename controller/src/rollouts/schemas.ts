import { Type, type Static } from "@sinclair/typebox";
import { REASONS_KEYWORD } from "../errors.ts";

import { HEADER_NAME_PATTERN, PATH_PREFIX_PATTERN, ROLLOUT_NAME_PATTERN } from "./patterns.ts";
import { MAX_SEGMENTS, SegmentSpec } from "./segments.ts";
import { NormalizedOutputView, OutputSpec } from "./output.ts";
import { ShadowSpec } from "./shadow.ts";

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
  },
  { additionalProperties: false },
);
export type RolloutSpec = Static<typeof RolloutSpec>;

export const WeightChange = Type.Object(
  { canaryPercent: canaryPercent() },
  { additionalProperties: false },
);
export type WeightChange = Static<typeof WeightChange>;

export const RolloutView = Type.Object({
  name: Type.String(),
  spec: Type.Object({
    name: Type.String(),
    match: Type.Object({ pathPrefix: Type.String() }),
    stickyKey: Type.Object({ header: Type.String() }),
    canaryPercent: Type.Number(),
    segments: Type.Array(SegmentSpec),
    shadow: Type.Union([ShadowSpec, Type.Null()]),
    output: NormalizedOutputView,
  }),
  shadowPercent: Type.Number({ description: "Current share mirrored to the shadow (0 without a shadow, or after a rollback)." }),
  canaryPercent: Type.Number(),
  canaryBasisPoints: Type.Integer({ minimum: 0, maximum: 10000 }),
  configVersion: Type.Integer({ description: "Config version at which this rollout last changed." }),
  createdAt: Type.String({ format: "date-time" }),
  updatedAt: Type.String({ format: "date-time" }),
  lastRollbackAt: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
});
export type RolloutView = Static<typeof RolloutView>;

export const RolloutList = Type.Object({ rollouts: Type.Array(RolloutView) });

export const RolloutNameParams = Type.Object({ name: Type.String({ maxLength: 253 }) });

export const ErrorBody = Type.Object({
  error: Type.String(),
  details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), reason: Type.String() }))),
});
