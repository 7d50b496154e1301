import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { applyCommand } from "../engine/index.ts";
import { stageRef } from "../engine/state.ts";
import { liveEvaluation, rolloutForecast } from "../engine/view.ts";
import { ConflictError } from "../errors.ts";
import { actorOf } from "../http/actor.ts";
import { validationFailure } from "../http/error-handler.ts";
import { Type } from "@sinclair/typebox";
import { YAML_CONTENT_TYPES } from "../http/body-parsers.ts";
import { ErrorBody, IfMatchHeaders, RolloutList, RolloutNameParams, RolloutSpec, RolloutView, WeightChange } from "./schemas.ts";
import { ShadowChange } from "./shadow.ts";
import { engineSpecErrors, etagOf, toBasisPoints, type Rollout, type RolloutStore } from "./store.ts";

export interface RolloutRoutesOptions {
  store: RolloutStore;
  clock?: () => Date;
}

export function toView(rollout: Rollout): RolloutView {
  return {
    name: rollout.spec.name,
    spec: rollout.spec,
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
    evaluation: rollout.engine ? liveEvaluation(rollout.engine.lastEvaluation) : null,
    forecast: rollout.engine ? rolloutForecast(rollout.engine.state, rollout.engine.lastEvaluation) : null,
  };
}

/** The view of one rollout, with its revision as the ETag a later If-Match can send back. */
export function sendRollout(reply: FastifyReply, rollout: Rollout): RolloutView {
  void reply.header("etag", etagOf(rollout));
  return toView(rollout);
}

/** The If-Match header as one string (a repeated header is a list, as HTTP allows). */
export function ifMatchOf(request: FastifyRequest): string | undefined {
  const value = request.headers["if-match"];
  return Array.isArray(value) ? value.join(", ") : value;
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

export const rolloutRoutes: FastifyPluginAsyncTypebox<RolloutRoutesOptions> = async (app, { store, clock }) => {
  app.post(
    "/v1/rollouts",
    {
      config: { subject: rolloutFromBody },
      attachValidation: true,
      schema: {
        tags,
        summary: "Create a rollout (JSON or YAML body)",
        consumes: ["application/json", ...YAML_CONTENT_TYPES],
        body: RolloutSpec,
        response: { 201: RolloutView, 400: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      // attachValidation: a body failing the schema still gets its engine part checked, so one 400 lists every problem.
      if (request.validationError) {
        const body = request.body as unknown;
        const extra = typeof body === "object" && body !== null && !Array.isArray(body) ? engineSpecErrors(body as Record<string, unknown>, store.policy) : [];
        throw validationFailure(request, request.validationError as FastifyError, extra);
      }
      const rollout = store.create(request.body);
      return reply.code(201).send(sendRollout(reply, rollout));
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
    async (request, reply) => sendRollout(reply, store.get(request.params.name)),
  );

  app.put(
    "/v1/rollouts/:name/weight",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Set the canary's share of traffic",
        params: RolloutNameParams,
        headers: IfMatchHeaders,
        body: WeightChange,
        response: { 200: RolloutView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 412: ErrorBody },
      },
    },
    async (request, reply) => {
      store.expectRevision(request.params.name, ifMatchOf(request));
      return sendRollout(reply, store.setCanaryPercent(request.params.name, request.body.canaryPercent));
    },
  );

  app.put(
    "/v1/rollouts/:name/shadow",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Set the share of requests mirrored to the shadow",
        params: RolloutNameParams,
        headers: IfMatchHeaders,
        body: ShadowChange,
        response: { 200: RolloutView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 412: ErrorBody },
      },
    },
    async (request, reply) => {
      store.expectRevision(request.params.name, ifMatchOf(request));
      return sendRollout(reply, store.setShadowPercent(request.params.name, request.body.percent));
    },
  );

  app.post(
    "/v1/rollouts/:name/rollback",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Send all traffic back to stable and stop mirroring, at once",
        params: RolloutNameParams,
        headers: IfMatchHeaders,
        response: { 200: RolloutView, 404: ErrorBody, 409: ErrorBody, 412: ErrorBody },
      },
    },
    async (request, reply) => {
      const name = request.params.name;
      store.expectRevision(name, ifMatchOf(request));
      const rollout = store.get(name);
      if (rollout.engine) {
        // A managed rollout ends RolledBack through the engine, which records who did it; the rollback
        // action it returns is applied (pushed) by the store.
        const now = (clock ? clock() : new Date()).getTime();
        const result = applyCommand(rollout.engine.state, { type: "rollback", actor: actorOf(request) }, now, rollout.engine.lastEvaluation);
        if (result.ok) return sendRollout(reply, store.applyEngine(name, result, { command: true }));
        // Already ended: repeating a rollback with nothing routed to the candidate is harmless, as for a manual
        // rollout; anything else (a Succeeded rollout at 100%) is refused with the engine's reason.
        if (rollout.canaryPercent !== 0 || rollout.shadowPercent !== 0) throw new ConflictError(result.error);
      }
      return sendRollout(reply, store.rollback(name));
    },
  );

  app.delete(
    "/v1/rollouts/:name",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Delete a rollout (its traffic goes to stable)",
        params: RolloutNameParams,
        headers: IfMatchHeaders,
        response: { 204: Type.Null({ description: "Deleted" }), 404: ErrorBody, 412: ErrorBody },
      },
    },
    async (request, reply) => {
      store.expectRevision(request.params.name, ifMatchOf(request));
      store.delete(request.params.name);
      return reply.code(204).send(null);
    },
  );
};
