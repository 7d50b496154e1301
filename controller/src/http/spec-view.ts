// The whole spec of a rollout as accepted, as GET shows it: the routing part with its defaults filled in, and
// for a managed rollout the release part with the effective values the engine runs with (every stage with its
// own duration, requests and deadline). Stages are shown in the input form, so they can be sent back in a PUT.
import { Type, type Static } from "@sinclair/typebox";
import { finalizeOf } from "../engine/index.ts";
import type { Rollout } from "../rollouts/model.ts";
import { NormalizedModelsView } from "../rollouts/models.ts";
import { NormalizedOutputView } from "../rollouts/output.ts";
import { SegmentSpec } from "../rollouts/segments.ts";
import { ShadowSpec } from "../rollouts/shadow.ts";
import { redactUrls } from "../secrets.ts";
import { NotificationView, notificationView } from "./notification-view.ts";
import { ClustersSpec } from "../rollouts/clusters.ts";

const StageView = Type.Object({
  name: Type.String(),
  shadow: Type.Optional(Type.Literal(true)),
  canaryPercent: Type.Number(),
  shadowPercent: Type.Number(),
  minDurationSeconds: Type.Integer(),
  minRequests: Type.Integer(),
  deadlineSeconds: Type.Integer(),
  onDeadline: Type.String(),
});

const Loose = (description: string) => Type.Object({}, { additionalProperties: true, description });

export const SpecView = Type.Object({
  name: Type.String(),
  match: Type.Object({ pathPrefix: Type.String(), model: Type.Optional(Type.String()), maxBodyBytes: Type.Optional(Type.Integer()) }),
  modelRewrite: Type.Optional(
    Type.Object({ canary: Type.String(), canaryCluster: Type.Boolean() }, { description: "Only when the spec rewrites the canary's model." }),
  ),
  stickyKey: Type.Object({ header: Type.String() }),
  canaryPercent: Type.Number(),
  segments: Type.Array(SegmentSpec),
  clusters: Type.Optional(Type.Required(ClustersSpec, { description: "The Envoy clusters this rollout steers; only when the spec names them." })),
  shadow: Type.Union([ShadowSpec, Type.Null()]),
  output: NormalizedOutputView,
  models: Type.Union([NormalizedModelsView, Type.Null()], { description: "The two models' versions and where answers state theirs; null when not declared." }),
  owner: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  rollbackCondition: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  changeKind: Type.Optional(Type.String()),
  impact: Type.Optional(Type.String()),
  stages: Type.Optional(Type.Array(StageView, { description: "Every stage with its effective values (stageDefaults and the built-in defaults applied)." })),
  stageDefaults: Type.Optional(Loose("As given, with the effective segmentTrafficShare.")),
  promotion_gates: Type.Optional(Loose("As accepted; a webhook gate's url redacted.")),
  statistics: Type.Optional(Type.Object({ falseAlarmRate: Type.Number() })),
  expectedTraffic: Type.Optional(
    Type.Object(
      { requestsPerSecond: Type.Number(), smallestSegmentShare: Type.Optional(Type.Number()) },
      { description: "As given: the traffic the forecast assumes before any is seen." },
    ),
  ),
  trafficMix: Type.Optional(Type.Object({ check: Type.Boolean(), holdOnMismatch: Type.Boolean(), alpha: Type.Number(), minDifference: Type.Number() })),
  finalize: Type.Optional(
    Type.Object({
      webhook: Type.Optional(
        Type.Object({
          url: Type.String({ description: "Redacted (scheme, host, fingerprint): a PUT sending it back keeps the URL." }),
          timeoutMs: Type.Integer(),
        }),
      ),
      verifyPercent: Type.Number(),
      verifyAnswers: Type.Integer(),
      deadlineSeconds: Type.Integer(),
    }),
  ),
  notifications: Type.Optional(NotificationView),
});
export type SpecView = Static<typeof SpecView>;

export function specView(rollout: Rollout): SpecView {
  const { release, ...routing } = rollout.spec;
  const base: SpecView = { ...routing, models: routing.models ?? null };
  const engine = rollout.engine;
  if (engine === null) return base;
  const spec = engine.state.spec;
  const finalize = finalizeOf(spec);
  const given = (release ?? {}) as { stageDefaults?: Record<string, unknown>; promotion_gates?: Record<string, unknown> };
  return {
    ...base,
    owner: spec.owner,
    rollbackCondition: spec.rollbackCondition,
    changeKind: spec.changeKind,
    impact: spec.impact,
    stages: spec.stages.map((s) => ({
      name: s.name,
      ...(s.kind === "shadow" ? { shadow: true as const } : {}),
      canaryPercent: s.canaryPercent,
      shadowPercent: s.shadowPercent,
      minDurationSeconds: s.minDurationSeconds,
      minRequests: s.minRequests,
      deadlineSeconds: s.deadlineSeconds,
      onDeadline: s.onDeadline,
    })),
    stageDefaults: { ...(given.stageDefaults ?? {}), segmentTrafficShare: spec.segmentTrafficShare },
    // Webhook gates' URLs are secrets (tokens): redacted, as everywhere else they are shown.
    promotion_gates: redactUrls(given.promotion_gates ?? {}),
    statistics: { falseAlarmRate: spec.falseAlarmRate },
    ...(spec.expectedTraffic
      ? {
          expectedTraffic: {
            requestsPerSecond: spec.expectedTraffic.requestsPerSecond,
            ...(spec.expectedTraffic.smallestSegmentShare !== null ? { smallestSegmentShare: spec.expectedTraffic.smallestSegmentShare } : {}),
          },
        }
      : {}),
    trafficMix: spec.trafficMix,
    finalize: {
      ...(finalize.webhook ? { webhook: redactUrls(finalize.webhook) } : {}),
      verifyPercent: finalize.verifyPercent,
      verifyAnswers: finalize.verifyAnswers,
      deadlineSeconds: finalize.deadlineSeconds,
    },
    ...(spec.notifications ? { notifications: notificationView(spec.notifications) } : {}),
  };
}
