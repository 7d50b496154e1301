/**
 * GET /v1/notifications: what the outbox holds, newest first: each event and target with its delivery state
 * (pending with the next attempt and the last error, sent, or dropped and why). Target URLs are redacted.
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { REASONS_KEYWORD } from "../errors.ts";
import { ErrorBody } from "../http/schemas.ts";
import type { NotificationOutbox } from "./outbox.ts";

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const DeliveryView = Type.Object({
  seq: Type.Integer({ description: "Order in the outbox; each target's events are delivered in this order." }),
  id: Type.String({ description: "The event id receivers deduplicate on (also the x-modelroll-event-id header)." }),
  type: Type.String({ description: "rollout.started, rollout.rolled_back, ..." }),
  rollout: Type.String(),
  target: Type.Object({ name: Type.String(), format: Type.String(), url: Type.String({ description: "Redacted: scheme, host and a fingerprint." }) }),
  state: Type.Union([Type.Literal("pending"), Type.Literal("sent"), Type.Literal("dropped")]),
  attempts: Type.Integer(),
  createdAt: Type.String({ format: "date-time" }),
  nextAttemptAt: Nullable(Type.String({ format: "date-time" })),
  lastError: Nullable(Type.String()),
  dropReason: Nullable(Type.String({ description: "queue_full, expired or rejected" })),
  doneAt: Nullable(Type.String({ format: "date-time" })),
  event: Type.Object({}, { additionalProperties: true, description: "The payload a webhook target receives (README, Notifications)." }),
});

const Query = Type.Object(
  {
    rollout: Type.Optional(Type.String({ maxLength: 63 })),
    state: Type.Optional(Type.Union([Type.Literal("pending"), Type.Literal("sent"), Type.Literal("dropped")])),
    limit: Type.Optional(
      Type.String({
        pattern: "^(1000|[1-9][0-9]{0,2})$",
        description: "At most this many (1 to 1000, default 100).",
        [REASONS_KEYWORD]: { pattern: "must be a whole number from 1 to 1000" },
      }),
    ),
  },
  { additionalProperties: false },
);

export const notificationRoutes: FastifyPluginAsyncTypebox<{ outbox: NotificationOutbox }> = async (app, { outbox }) => {
  app.get(
    "/v1/notifications",
    {
      schema: {
        tags: ["rollouts"],
        summary: "Notification deliveries, newest first (?rollout, ?state=pending|sent|dropped, ?limit)",
        querystring: Query,
        response: { 200: Type.Object({ deliveries: Type.Array(DeliveryView) }), 400: ErrorBody },
      },
    },
    async (request) => ({
      deliveries: outbox.list({ rollout: request.query.rollout, state: request.query.state, limit: Number(request.query.limit ?? "100") }),
    }),
  );
};
