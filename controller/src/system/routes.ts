import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { ControllerTelemetry } from "../telemetry.ts";

/** What this replica is and whether it can serve (system/replica.ts builds it). */
export interface ReplicaStatus {
  ready: boolean;
  role: "leader" | "follower";
  /** This replica's election identity; null without election (one controller). */
  identity: string | null;
  /** Who holds the Lease as last seen ("" released, null unknown or no election). */
  leader: string | null;
  /** The leadership term this replica acts in (leader) or last saw (follower); null without election. */
  term: number | null;
  /** Why it is not ready (empty when ready). */
  reasons: string[];
}

interface SystemRoutesOptions {
  telemetry: ControllerTelemetry;
  /** Default: one controller, always leader and ready. */
  replica?: () => ReplicaStatus;
}

const SOLE: ReplicaStatus = { ready: true, role: "leader", identity: null, leader: null, term: null, reasons: [] };

const ReplicaBody = Type.Object({
  ready: Type.Boolean(),
  role: Type.Union([Type.Literal("leader"), Type.Literal("follower")], {
    description: "Only the leader steps rollouts, sends notifications and pushes filter config.",
  }),
  identity: Type.Union([Type.String(), Type.Null()]),
  leader: Type.Union([Type.String(), Type.Null()]),
  term: Type.Union([Type.Integer(), Type.Null()]),
  reasons: Type.Array(Type.String()),
});

export const systemRoutes: FastifyPluginAsyncTypebox<SystemRoutesOptions> = async (app, { telemetry, replica = () => SOLE }) => {
  app.get(
    "/healthz",
    {
      config: { access: "open" },
      schema: {
        tags: ["system"],
        summary: "Liveness (the process answers; a follower is alive too: its role and readiness are /readyz)",
        response: { 200: Type.Object({ status: Type.Literal("ok") }) },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/readyz",
    {
      config: { access: "open" },
      schema: {
        tags: ["system"],
        summary: "Readiness: 200 when this replica can serve (a follower serves too), 503 when it cannot (lost its watch, cannot reach the API server)",
        response: { 200: ReplicaBody, 503: ReplicaBody },
      },
    },
    async (_request, reply) => {
      const status = replica();
      return reply.code(status.ready ? 200 : 503).send(status);
    },
  );

  app.get("/metrics", { config: { access: "open" }, schema: { hide: true } }, async (_request, reply) => {
    const text = await telemetry.registry.metrics();
    return reply.header("content-type", telemetry.registry.contentType).send(text);
  });

  app.get("/openapi.json", { config: { access: "open" }, schema: { hide: true } }, async () => app.swagger());
};
