/**
 * POST /v1/rollouts/{name}/accept-upstreams: the operator's answer to a rollout held because its stable or
 * canary upstream changed (rollouts/upstreams.ts). Rolling it back is the other answer (the usual rollback).
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { actorOf } from "../http/actor.ts";
import { expectRevision, ifMatchOf } from "../http/etag.ts";
import { RolloutView, sendRollout } from "../http/rollout-view.ts";
import { CommandBody, ErrorBody, IfMatchHeaders, RolloutNameParams } from "../http/schemas.ts";
import { rolloutFromPath } from "../http/subject.ts";
import type { UpstreamGuard } from "./upstream-guard.ts";

export const upstreamRoutes: FastifyPluginAsyncTypebox<{ guard: UpstreamGuard }> = async (app, { guard }) => {
  app.post(
    "/v1/rollouts/:name/accept-upstreams",
    {
      config: { subject: rolloutFromPath },
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
      schema: {
        tags: ["rollouts"],
        summary: "A rollout held because its stable or canary upstream changed: take what its clusters reach now as its upstreams",
        description:
          "A manual rollout gets its weights back; a release still running starts again from its first stage (its evidence was about the old upstreams). Refused (409) for a release that has ended: no stage would test the new canary (roll it back, then create a new rollout), and for a rollout that is not held.",
        params: RolloutNameParams,
        body: CommandBody,
        headers: IfMatchHeaders,
        response: { 200: RolloutView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 412: ErrorBody },
      },
    },
    async (request, reply) => {
      expectRevision(guard.store, request.params.name, ifMatchOf(request));
      return sendRollout(reply, await guard.accept(request.params.name, actorOf(request), request.body?.reason ?? null));
    },
  );
};
