/**
 * The archive: rollouts that left the live set (finalized, or deleted), by the id each got when archived.
 * Their view, decision history and report stay readable; a new rollout of the same name never inherits them.
 * GET /v1/rollouts?archived=true lists them.
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { REASONS_KEYWORD } from "../errors.ts";
import { archivedView, RolloutView } from "../http/rollout-view.ts";
import { ErrorBody } from "../http/schemas.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { History, historyOf, ReportQuery, sendReport } from "./routes.ts";

const ArchiveParams = Type.Object({
  id: Type.String({
    pattern: "^[1-9][0-9]{0,14}$",
    description: "The archive id (archived.id in the listing).",
    [REASONS_KEYWORD]: { pattern: "must be an archive id (a positive integer)" },
  }),
});
const tags = ["rollouts"];

export const archiveRoutes: FastifyPluginAsyncTypebox<{ store: RolloutStore }> = async (app, { store }) => {
  const subject = (request: { params: unknown }) => `archived rollout ${(request.params as { id?: unknown }).id}`;

  app.get(
    "/v1/archive/:id",
    {
      config: { subject },
      schema: { tags, summary: "One archived rollout, as it was when archived", params: ArchiveParams, response: { 200: RolloutView, 404: ErrorBody } },
    },
    async (request) => archivedView(store.archive.get(Number(request.params.id))),
  );

  app.get(
    "/v1/archive/:id/history",
    {
      config: { subject },
      schema: { tags, summary: "An archived rollout's decisions", params: ArchiveParams, response: { 200: History, 404: ErrorBody, 409: ErrorBody } },
    },
    async (request) => historyOf(store.archive.get(Number(request.params.id)).rollout),
  );

  app.get(
    "/v1/archive/:id/report",
    {
      config: { subject },
      schema: {
        tags,
        summary: "An archived rollout's postmortem record (JSON, or Markdown with ?format=markdown)",
        params: ArchiveParams,
        querystring: ReportQuery,
        response: { 200: Type.String({ description: "The report, as JSON or Markdown text" }), 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      const entry = store.archive.get(Number(request.params.id));
      return sendReport(request, reply, entry.rollout, { id: entry.id, at: entry.archivedAt, reason: entry.reason });
    },
  );
};
