import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";
import { YAML_CONTENT_TYPES } from "../http/body-parsers.ts";
import { ErrorBody, RolloutList, RolloutNameParams, RolloutSpec, RolloutView, WeightChange } from "./schemas.ts";
import { ShadowChange } from "./shadow.ts";
import { toBasisPoints, type Rollout, type RolloutStore } from "./store.ts";

export interface RolloutRoutesOptions {
  store: RolloutStore;
}

export function toView(rollout: Rollout): RolloutView {
  return {
    name: rollout.spec.name,
    spec: rollout.spec,
    canaryPercent: rollout.canaryPercent,
    canaryBasisPoints: toBasisPoints(rollout.canaryPercent),
    shadowPercent: rollout.shadowPercent,
    configVersion: rollout.configVersion,
    createdAt: rollout.createdAt.toISOString(),
    updatedAt: rollout.updatedAt.toISOString(),
    lastRollbackAt: rollout.lastRollbackAt?.toISOString() ?? null,
  };
}

/** For a request about an existing rollout: the name is in the path. */
export function rolloutFromPath(request: FastifyRequest): string {
  return `rollout ${(request.params as { name?: string }).name}`;
}

/** For a create: the name is in the body, possibly missing or invalid (kept short in messages). */
function rolloutFromBody(request: FastifyRequest): string {
  const name = (request.body as { name?: unknown } | undefined)?.name;
  if (typeof name !== "string" || name === "") return "rollout spec";
  return `rollout ${name.length > 63 ? name.slice(0, 63) + "..." : name}`;
}

const tags = ["rollouts"];

export const rolloutRoutes: FastifyPluginAsyncTypebox<RolloutRoutesOptions> = async (app, { store }) => {
  app.post(
    "/v1/rollouts",
    {
      config: { subject: rolloutFromBody },
      schema: {
        tags,
        summary: "Create a rollout (JSON or YAML body)",
        consumes: ["application/json", ...YAML_CONTENT_TYPES],
        body: RolloutSpec,
        response: { 201: RolloutView, 400: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      const rollout = store.create(request.body);
      return reply.code(201).send(toView(rollout));
    },
  );

  app.get(
    "/v1/rollouts",
    { schema: { tags, summary: "List rollouts, sorted by name", response: { 200: RolloutList } } },
    async () => ({ rollouts: store.list().map(toView) }),
  );

  app.get(
    "/v1/rollouts/:name",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Get one rollout",
        params: RolloutNameParams,
        response: { 200: RolloutView, 404: ErrorBody },
      },
    },
    async (request) => toView(store.get(request.params.name)),
  );

  app.put(
    "/v1/rollouts/:name/weight",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Set the canary's share of traffic",
        params: RolloutNameParams,
        body: WeightChange,
        response: { 200: RolloutView, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request) => toView(store.setCanaryPercent(request.params.name, request.body.canaryPercent)),
  );

  app.put(
    "/v1/rollouts/:name/shadow",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Set the share of requests mirrored to the shadow",
        params: RolloutNameParams,
        body: ShadowChange,
        response: { 200: RolloutView, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request) => toView(store.setShadowPercent(request.params.name, request.body.percent)),
  );

  app.post(
    "/v1/rollouts/:name/rollback",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Send all traffic back to stable and stop mirroring, at once",
        params: RolloutNameParams,
        response: { 200: RolloutView, 404: ErrorBody },
      },
    },
    async (request) => toView(store.rollback(request.params.name)),
  );

  app.delete(
    "/v1/rollouts/:name",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Delete a rollout (its traffic goes to stable)",
        params: RolloutNameParams,
        response: { 204: Type.Null({ description: "Deleted" }), 404: ErrorBody },
      },
    },
    async (request, reply) => {
      store.delete(request.params.name);
      return reply.code(204).send(null);
    },
  );
};
