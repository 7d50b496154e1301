/**
 * The rollout resource: create (POST), list, read, apply a changed spec (PUT), weights, shadow share,
 * rollback and delete. Engine commands, history and reports are release/routes.ts; stats, stats/routes.ts.
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyError } from "fastify";
import { applyCommand, isClosed } from "../engine/index.ts";
import { ConflictError, InvalidRequestError, REASONS_KEYWORD } from "../errors.ts";
import { applySpec } from "../rollouts/apply.ts";
import type { StatsBaseline } from "../rollouts/model.ts";
import { RolloutSpec, WeightChange } from "../rollouts/schemas.ts";
import { ShadowChange } from "../rollouts/shadow.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { summarizeErrors, validateRolloutSpec } from "../rollouts/validate.ts";
import { actorOf } from "./actor.ts";
import { YAML_CONTENT_TYPES } from "./body-parsers.ts";
import { expectRevision, ifMatchOf } from "./etag.ts";
import { validationFailure } from "./error-handler.ts";
import { archivedView, RolloutList, RolloutView, sendRollout } from "./rollout-view.ts";
import type { Static } from "@sinclair/typebox";
import { cachedList, MAX_PAGE } from "./rollout-list.ts";
import { CommandBody, ErrorBody, IfMatchHeaders, RolloutNameParams } from "./schemas.ts";
import { rolloutFromBody, rolloutFromPath } from "./subject.ts";
import { restoreRedacted } from "../secrets.ts";
import { documentRolloutSpecBody } from "../rollouts/spec-doc.ts";

interface RolloutRoutesOptions {
  store: RolloutStore;
  clock?: () => Date;
  /** Reads what Envoy has counted under a name, right before a rollout of that name is created (stats/baseline.ts). */
  statsBaseline?: (name: string) => Promise<StatsBaseline>;
}

const tags = ["rollouts"];

export const rolloutRoutes: FastifyPluginAsyncTypebox<RolloutRoutesOptions> = async (app, { store, clock, statsBaseline }) => {
  const listBody = cachedList(store, app.modelroll.envoyUpstreams);

  app.post(
    "/v1/rollouts",
    {
      config: { subject: rolloutFromBody, swaggerTransform: documentRolloutSpecBody },
      // The body schema is for the OpenAPI document (spec-doc.ts spells out the release keys there); the handler checks with validateRolloutSpec, as `modelroll lint` does.
      validatorCompiler: () => () => true,
      schema: {
        tags,
        summary: "Create a rollout (JSON or YAML body)",
        consumes: ["application/json", ...YAML_CONTENT_TYPES],
        body: RolloutSpec,
        response: { 201: RolloutView, 400: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      const checked = validateRolloutSpec(request.body, store.policy);
      if (!checked.ok) throw new InvalidRequestError(`${rolloutFromBody(request)}: invalid request body: ${summarizeErrors(checked.errors)}`, checked.errors);
      // Read before the commit: no filter counts for this rollout yet, so whatever the name shows is an earlier one's.
      const baseline = statsBaseline && !store.find(checked.spec.name) ? await statsBaseline(checked.spec.name) : undefined;
      const rollout = store.create(checked.spec, { statsBaseline: baseline });
      return reply.code(201).send(sendRollout(reply, rollout));
    },
  );

  app.get(
    "/v1/rollouts",
    {
      schema: {
        tags,
        summary: "List rollouts, sorted by name; ?archived=true lists the archived ones (finalized or deleted), oldest first",
        querystring: Type.Object(
          {
            limit: Type.Optional(
              Type.String({
                pattern: "^([1-9][0-9]{0,2}|1000)$",
                description: `At most this many rollouts (1..${MAX_PAGE}); the answer's continue token fetches the next page.`,
                [REASONS_KEYWORD]: { pattern: `must be an integer 1..${MAX_PAGE}` },
              }),
            ),
            continue: Type.Optional(Type.String({ maxLength: 400, description: "The continue token of the previous page." })),
            archived: Type.Optional(
              Type.Union([Type.Literal("true"), Type.Literal("false")], {
                description: "true: the archive instead of the live rollouts; each carries archived.id for /v1/archive/{id}",
              }),
            ),
            name: Type.Optional(Type.String({ maxLength: 63, description: "With archived=true: only the archived rollouts of this name." })),
          },
          { additionalProperties: false },
        ),
        response: { 200: RolloutList, 304: Type.Null({ description: "If-None-Match named the list's current ETag: nothing changed." }) },
      },
    },
    async (request, reply) => {
      const { limit, archived, name } = request.query;
      if (archived === "true") {
        if (limit !== undefined || request.query.continue !== undefined)
          throw new InvalidRequestError("rollout list: limit and continue page the live rollouts, not the archive");
        return { rollouts: store.archive.list(name).map(archivedView) };
      }
      // Already serialized by the view's own schema (rollout-list.ts); Fastify sends JSON text or bytes as they are.
      const { body, etag } = listBody(reply, limit === undefined ? undefined : Number(limit), request.query.continue);
      if (etag !== null) {
        void reply.header("etag", etag);
        // No body at all: `null` would go out as content-length 4, which keep-alive clients then wait for.
        if (request.headers["if-none-match"] === etag) return reply.code(304).send(undefined as unknown as null);
      }
      return reply.type("application/json; charset=utf-8").send(body as unknown as Static<typeof RolloutList>);
    },
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
      expectRevision(store, request.params.name, ifMatchOf(request));
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
      expectRevision(store, request.params.name, ifMatchOf(request));
      return sendRollout(reply, store.setShadowPercent(request.params.name, request.body.percent));
    },
  );

  app.put(
    "/v1/rollouts/:name",
    {
      config: { subject: rolloutFromPath, swaggerTransform: documentRolloutSpecBody },
      attachValidation: true,
      schema: {
        tags,
        summary: "Apply a changed spec (JSON or YAML): what may change mid-rollout changes, the rest is refused with the field and why",
        description:
          "The body is a whole spec, as for create. May change: owner, rollbackCondition, promotion_gates, statistics, trafficMix, finalize, notifications, stage durations, requests and deadlines, stages not yet started, shadow timeoutMs/maxBodyBytes/maxInFlight. May not (409, each with its pointer): name, match, stickyKey, segments, models, output, shadow presence/cluster/percent, changeKind, impact, the weights of stages already started. The same spec again changes nothing (same revision).",
        consumes: ["application/json", ...YAML_CONTENT_TYPES],
        params: RolloutNameParams,
        headers: IfMatchHeaders,
        body: RolloutSpec,
        response: { 200: RolloutView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 412: ErrorBody },
      },
    },
    async (request, reply) => {
      // A bad If-Match header is refused as any route refuses it; the body is judged as for create (validateRolloutSpec).
      const invalid = request.validationError as (FastifyError & { validationContext?: string }) | undefined;
      if (invalid && invalid.validationContext !== "body") throw validationFailure(request, invalid, []);
      // A spec read back from GET carries its webhook URLs redacted: those stand for the URLs the rollout has.
      const body = restoreRedacted(request.body, store.find(request.params.name)?.spec.release ?? null);
      const checked = validateRolloutSpec(body, store.policy);
      if (!checked.ok)
        throw new InvalidRequestError(`rollout ${request.params.name}: invalid request body: ${summarizeErrors(checked.errors)}`, checked.errors);
      const name = request.params.name;
      expectRevision(store, name, ifMatchOf(request));
      const now = (clock ? clock() : new Date()).getTime();
      return sendRollout(reply, applySpec(store, name, checked.spec, actorOf(request), now));
    },
  );

  app.post(
    "/v1/rollouts/:name/rollback",
    {
      config: { subject: rolloutFromPath },
      // The body is optional: no body reads as {} (ajv would refuse undefined).
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
      schema: {
        tags,
        summary: 'Send all traffic back to stable and stop mirroring, at once; optional {"reason"}. Repeated with nothing changed since, a no-op',
        params: RolloutNameParams,
        headers: IfMatchHeaders,
        body: CommandBody,
        response: { 200: RolloutView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 412: ErrorBody },
      },
    },
    async (request, reply) => {
      const name = request.params.name;
      expectRevision(store, name, ifMatchOf(request));
      const rollout = store.get(name);
      const actor = actorOf(request);
      const reason = request.body?.reason ?? null;
      if (rollout.engine) {
        // Already ended with nothing routed to the candidate: nothing to do, nothing recorded, same revision.
        if (isClosed(rollout.engine.state.phase) && rollout.canaryPercent === 0 && rollout.shadowPercent === 0) return sendRollout(reply, rollout);
        // A managed rollout ends RolledBack through the engine, which records who did it and why; the
        // rollback action it returns is applied (pushed) by the store. After Succeeded it goes back to the old stable.
        const now = (clock ? clock() : new Date()).getTime();
        const result = applyCommand(rollout.engine.state, { type: "rollback", actor, reason: reason ?? undefined }, now, rollout.engine.lastEvaluation);
        if (!result.ok) throw new ConflictError(result.error);
        return sendRollout(reply, store.applyEngine(name, result, { command: true }));
      }
      return sendRollout(reply, store.rollback(name, { by: actor, reason }));
    },
  );

  app.delete(
    "/v1/rollouts/:name",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Delete a rollout: its traffic goes to stable, its path is free; it is archived (report and history stay readable)",
        params: RolloutNameParams,
        querystring: Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })) }, { additionalProperties: false }),
        headers: IfMatchHeaders,
        response: { 204: Type.Null({ description: "Deleted (archived: GET /v1/rollouts?archived=true)" }), 404: ErrorBody, 412: ErrorBody },
      },
    },
    async (request, reply) => {
      expectRevision(store, request.params.name, ifMatchOf(request));
      const entry = store.delete(request.params.name, { by: actorOf(request), reason: request.query.reason ?? null });
      return reply.code(204).header("x-archived-id", String(entry.id)).send(null);
    },
  );
};
