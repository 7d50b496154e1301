/**
 * The rollout spec as /openapi.json describes it: RolloutSpec with the release keys spelled out from the
 * engine's own schemas (engine/spec-schema.ts), every stage form and default included.
 *
 * Documentation only. The routes judge a body with validateRolloutSpec, where the release keys are `Unknown`
 * so that the engine reports their errors with pointers inside stages and gates (/stages/2/canaryPercent);
 * this schema reaches the document through the routes' swaggerTransform and never validates a request, so
 * what the API accepts, the defaults it fills in and its error messages stay exactly as they are.
 */
import type { SwaggerTransform } from "@fastify/swagger";
import { Type, type TObject, type TProperties, type TSchema } from "@sinclair/typebox";
import {
  CustomGate,
  DEFAULT_LATENCY_TOLERANCE_MS,
  DEFAULT_STAGES,
  EngineSpecInput,
  LatencyGate,
  PromotionGates,
  STAGE_DEFAULTS,
  StageDefaults,
  StageObject,
} from "../engine/index.ts";
import { ENGINE_PROPERTIES, RolloutSpec } from "./schemas.ts";

type Notes = Record<string, { default?: unknown; note?: string }>;

/** A copy of an object schema whose named properties carry a default and a note (Optional kept). */
function annotate<T extends TObject>(schema: T, notes: Notes, extra: Record<string, unknown> = {}): T {
  const properties: TProperties = {};
  for (const [key, property] of Object.entries(schema.properties)) {
    const n = notes[key];
    if (!n) {
      properties[key] = property;
      continue;
    }
    const description = [property.description, n.note].filter(Boolean).join(" ");
    properties[key] = { ...property, ...(n.default !== undefined ? { default: n.default } : {}), ...(description ? { description } : {}) } as TSchema;
  }
  return { ...schema, properties, ...extra } as T;
}

const timing = {
  minDurationSeconds: { default: STAGE_DEFAULTS.minDurationSeconds, note: "Four ticks of the default 5 s engine tick." },
  minRequests: { default: STAGE_DEFAULTS.minRequests },
  deadlineSeconds: { default: STAGE_DEFAULTS.deadlineSeconds },
  onDeadline: { default: STAGE_DEFAULTS.onDeadline },
} satisfies Notes;

const StageDefaultsDoc = annotate(
  StageDefaults,
  { ...timing, segmentTrafficShare: { default: STAGE_DEFAULTS.segmentTrafficShare } },
  { description: "Settings for every stage that does not set its own; what is not set here takes the built-in default shown." },
);

const fromDefaults = (key: keyof typeof timing) => ({
  default: timing[key].default,
  note: `Default: stageDefaults.${key}, else ${JSON.stringify(timing[key].default)}.`,
});

const StageObjectDoc = annotate(
  StageObject,
  {
    name: {},
    canaryPercent: { note: "Required unless shadow is true; 100 is the bake stage (all traffic on the new model)." },
    shadow: { default: false, note: "Needs the spec's shadow section (the mirror target); shadow stages come before every canary stage." },
    minDurationSeconds: fromDefaults("minDurationSeconds"),
    minRequests: fromDefaults("minRequests"),
    deadlineSeconds: fromDefaults("deadlineSeconds"),
    onDeadline: fromDefaults("onDeadline"),
  },
  {
    description:
      "A stage with its own settings: a canary stage ({canaryPercent: 25, minDurationSeconds: 60}) or a shadow stage ({shadow: true, shadowPercent: 20}).",
    examples: [
      { canaryPercent: 25, minDurationSeconds: 60, deadlineSeconds: 1800, onDeadline: "hold" },
      { shadow: true, shadowPercent: 20 },
    ],
  },
);

const StageInputDoc = Type.Union(
  [
    Type.Literal("shadow", {
      description: `A shadow stage: the new model answers mirrored copies of the shadow section's percent of requests (${STAGE_DEFAULTS.shadowPercent} when 0) and no client sees its answers. Same as {shadow: true}.`,
    }),
    Type.Number({
      exclusiveMinimum: 0,
      maximum: 100,
      description:
        "A canary stage: this percent of users (sticky by stickyKey) are answered by the new model; at most two decimals. Same as {canaryPercent: N}.",
    }),
    StageObjectDoc,
  ],
  { description: "One stage: 'shadow', a canary percent, or a stage object." },
);

// Gates: the engine's schemas, with the latency gate's tolerance default written in.
const LatencyGateDoc = annotate(LatencyGate, { tolerance_ms: { default: DEFAULT_LATENCY_TOLERANCE_MS } });
const PromotionGatesDoc = Type.Object(
  { ...PromotionGates.properties, latency_p95_ms: Type.Optional(LatencyGateDoc) },
  {
    additionalProperties: Type.Union([LatencyGateDoc, CustomGate]),
    description: `${PromotionGates.description} Gates are judged on every tick, overall and per segment value; only a Failed gate rolls back.`,
  },
);

const ReleaseProperties = {
  ...EngineSpecInput.properties,
  stages: Type.Optional(
    Type.Array(StageInputDoc, {
      minItems: 1,
      maxItems: 20,
      default: [...DEFAULT_STAGES],
      description:
        "Release stages, in order: weights only grow, the last is 100. Default: shadow, 1, 5, 25, 50, 100 (without a shadow section: 1, 5, 25, 50, 100). Each stage lasts at least minDurationSeconds and until its gates have the samples they need; past deadlineSeconds onDeadline applies.",
      examples: [["shadow", 10, { canaryPercent: 50, minDurationSeconds: 30 }, 100]],
    }),
  ),
  stageDefaults: Type.Optional(StageDefaultsDoc),
  promotion_gates: Type.Optional(PromotionGatesDoc),
};

/** The documented body of POST /v1/rollouts and PUT /v1/rollouts/{name}. */
export const RolloutSpecDoc = Type.Object(
  {
    ...Object.fromEntries(Object.entries(RolloutSpec.properties).filter(([key]) => !(key in ENGINE_PROPERTIES))),
    ...ReleaseProperties,
  },
  {
    additionalProperties: false,
    description:
      "A rollout. With any of owner, rollbackCondition, changeKind, impact, stages, stageDefaults, promotion_gates, statistics, expectedTraffic, trafficMix, finalize or notifications, the engine moves it through its stages (README, Engine-managed rollouts); without, its weight is set by hand.",
  },
);

/** @fastify/swagger's per-route transform: the route's body as documented (its validation is untouched). */
export const documentRolloutSpecBody: SwaggerTransform = ({ schema, url }) => ({ schema: { ...schema, body: RolloutSpecDoc }, url });
