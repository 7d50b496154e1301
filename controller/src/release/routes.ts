/**
 * Manual actions on a rollout managed by the engine (promote, pause, resume, fail, undo, review), external
 * measurements (review scores, KPIs) and its decision history. Each goes through engine applyCommand();
 * a command that does not fit the rollout's phase is a 409 with the engine's message.
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type, type Static } from "@sinclair/typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { applyCommand, stageRef, type Command } from "../engine/index.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { actorOf } from "../http/actor.ts";
import { expectRevision, ifMatchOf } from "../http/etag.ts";
import { RolloutView, sendRollout } from "../http/rollout-view.ts";
import { CommandBody, ErrorBody, IfMatchHeaders, RolloutNameParams } from "../http/schemas.ts";
import { rolloutFromPath } from "../http/subject.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { refusedWhileHeld } from "../rollouts/upstream-check.ts";
import { buildReport, reportMarkdown } from "./report.ts";

interface ReleaseRoutesOptions {
  store: RolloutStore;
  clock?: () => Date;
}

const Reason = Type.String({ minLength: 1, maxLength: 2000, description: "Why, for the record." });
const ReviewBody = Type.Object({ approved: Type.Boolean(), reason: Type.Optional(Reason) }, { additionalProperties: false });
const MeasurementsBody = Type.Object(
  {
    metric: Type.String({ pattern: "^[a-z][a-z0-9_]{0,63}$", description: "The external metric a gate uses, e.g. human_review_score." }),
    variant: Type.Union([Type.Literal("stable"), Type.Literal("canary"), Type.Literal("shadow")]),
    values: Type.Array(Type.Number(), { minItems: 1, maxItems: 10000, description: "Observations, in the order made." }),
  },
  { additionalProperties: false },
);
const MeasurementsAccepted = Type.Object({ rollout: Type.String(), metric: Type.String(), variant: Type.String(), recorded: Type.Integer() });

// Decisions carry measurements with engine-defined shapes; documented loosely, serialized as is.
export const History = Type.Object({
  phase: Type.String(),
  stage: Type.Union([Type.Object({ index: Type.Integer(), name: Type.String() }), Type.Null()]),
  decisions: Type.Array(Type.Object({}, { additionalProperties: true })),
});

const tags = ["rollouts"];

export function managed(rollout: Rollout): NonNullable<Rollout["engine"]> {
  if (rollout.engine === null) throw notManaged(rollout);
  return rollout.engine;
}

function notManaged(rollout: Rollout): ConflictError {
  return new ConflictError(`rollout ${rollout.spec.name}: not managed by the engine (no stages/promotion_gates/owner)`);
}

/**
 * Runs an engine command on a managed rollout and applies it; a refusal is a 409, a stale If-Match a 412.
 * Check, run and apply happen in one synchronous turn, so no other write can land in between.
 */
function runCommand(store: RolloutStore, name: string, command: Command, now: number, ifMatch?: string): Rollout {
  expectRevision(store, name, ifMatch);
  const held = refusedWhileHeld(store.get(name), command.type);
  if (held) throw new ConflictError(held);
  const engine = managed(store.get(name));
  const result = applyCommand(engine.state, command, now, engine.lastEvaluation);
  if (!result.ok) throw new ConflictError(result.error);
  // External measurements arrive from automation all the time; they must not make operators' ETags stale.
  return store.applyEngine(name, result, { command: command.type !== "recordExternal" });
}

const SIMPLE_COMMANDS = {
  promote: "Move to the next stage now, whatever the gates say",
  pause: "Hold the current weights (no promotion, no deadline; a Failed gate still rolls back)",
  resume: "Resume a paused rollout",
  fail: "Give up on the rollout: all traffic to stable",
  undo: "At 100% (bake period, review, or Succeeded before finalize): go back to the old stable",
} as const;

const FinalizeBody = Type.Object(
  {
    reason: Type.Optional(Reason),
    verify: Type.Optional(
      Type.Boolean({
        default: true,
        description: "false: finalize at once without checking that stable answers the new version (the record says so).",
      }),
    ),
  },
  { additionalProperties: false, description: "Optional: a POST without a body is fine." },
);

export const releaseRoutes: FastifyPluginAsyncTypebox<ReleaseRoutesOptions> = async (app, { store, clock }) => {
  const now = () => (clock ? clock() : new Date()).getTime();

  for (const [type, summary] of Object.entries(SIMPLE_COMMANDS) as Array<[keyof typeof SIMPLE_COMMANDS, string]>) {
    app.post(
      `/v1/rollouts/:name/${type}`,
      {
        config: { subject: rolloutFromPath },
        // The body is optional: no body reads as {} (ajv would refuse undefined).
        preValidation: async (request) => {
          if (request.body === undefined || request.body === null) request.body = {};
        },
        schema: {
          tags,
          summary,
          params: RolloutNameParams,
          body: CommandBody,
          headers: IfMatchHeaders,
          response: { 200: RolloutView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 412: ErrorBody },
        },
      },
      async (request, reply) => {
        const command: Command = { type, actor: actorOf(request), reason: request.body?.reason };
        return sendRollout(reply, runCommand(store, request.params.name, command, now(), ifMatchOf(request)));
      },
    );
  }

  app.post(
    "/v1/rollouts/:name/finalize",
    {
      config: { subject: rolloutFromPath },
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
      schema: {
        tags,
        summary: "After Succeeded: stable now serves the new model. The controller verifies it, then routes all traffic to stable and archives the rollout",
        description:
          "With a version source (models.versionField or versionHeader) the rollout goes Finalizing: finalize.verifyPercent of traffic goes back to stable until it has answered the canary's version finalize.verifyAnswers times in a row (then Finalized: all traffic to stable, archived), or finalize.deadlineSeconds pass (back to Succeeded, saying what stable answered). Without one, or with verify: false, it is Finalized at once and the record says it was not verified.",
        params: RolloutNameParams,
        body: FinalizeBody,
        headers: IfMatchHeaders,
        response: { 200: RolloutView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 412: ErrorBody },
      },
    },
    async (request, reply) => {
      const command: Command = { type: "finalize", actor: actorOf(request), reason: request.body?.reason, verify: request.body?.verify };
      return sendRollout(reply, runCommand(store, request.params.name, command, now(), ifMatchOf(request)));
    },
  );

  app.post(
    "/v1/rollouts/:name/review",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Post the review a high-impact rollout waits for (approved: succeed; rejected: back to the old stable)",
        params: RolloutNameParams,
        body: ReviewBody,
        headers: IfMatchHeaders,
        response: { 200: RolloutView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 412: ErrorBody },
      },
    },
    async (request, reply) => {
      const command: Command = { type: "review", actor: actorOf(request), approved: request.body.approved, reason: request.body.reason };
      return sendRollout(reply, runCommand(store, request.params.name, command, now(), ifMatchOf(request)));
    },
  );

  app.post(
    "/v1/rollouts/:name/measurements",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "Post external measurements (review scores, business KPIs) for one variant",
        params: RolloutNameParams,
        body: MeasurementsBody,
        response: { 200: MeasurementsAccepted, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request) => {
      const { metric, variant, values } = request.body;
      runCommand(store, request.params.name, { type: "recordExternal", metric, variant, values, actor: actorOf(request) }, now());
      return { rollout: request.params.name, metric, variant, recorded: values.length };
    },
  );

  app.get(
    "/v1/rollouts/:name/history",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "The engine's phase, stage and every decision with the measurements behind it",
        params: RolloutNameParams,
        response: { 200: History, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request) => historyOf(live(store, request.params.name)),
  );

  app.get(
    "/v1/rollouts/:name/report",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags,
        summary: "The postmortem record: timeline, gate values per stage, segment table, why it ended so",
        description: "JSON by default; Markdown with ?format=markdown or Accept: text/markdown. Archived rollouts: /v1/archive/{id}/report.",
        params: RolloutNameParams,
        querystring: ReportQuery,
        // Sent as text: a JSON document (RolloutReport in release/report.ts) or Markdown.
        response: { 200: Type.String({ description: "The report, as JSON or Markdown text" }), 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => sendReport(request, reply, live(store, request.params.name)),
  );
};

export const ReportQuery = Type.Object(
  { format: Type.Optional(Type.Union([Type.Literal("json"), Type.Literal("markdown")])) },
  { additionalProperties: false },
);

/** A live rollout; when there is none by that name but archived ones, the 404 says where they are. */
function live(store: RolloutStore, name: string): Rollout {
  const found = store.find(name);
  if (found) return found;
  const archived = store.archive.list(name).at(-1);
  if (!archived) return store.get(name);
  throw new NotFoundError(
    `rollout ${name}: not found; archived as ${archived.id} (${archived.reason.slice(0, 120)}): GET /v1/archive/${archived.id}/report, /v1/archive/${archived.id}/history`,
  );
}

export function historyOf(rollout: Rollout): Static<typeof History> {
  const engine = managed(rollout);
  return { phase: engine.state.phase, stage: stageRef(engine.state), decisions: engine.decisions as unknown as Array<Record<string, unknown>> };
}

export function sendReport(request: FastifyRequest, reply: FastifyReply, rollout: Rollout, archived?: { id: number; at: Date; reason: string }): FastifyReply {
  const report = buildReport(rollout, archived, reply.server.upstreamLookup);
  if (report === null) throw notManaged(rollout);
  const format = (request.query as { format?: string }).format;
  const wantsMarkdown = format === "markdown" || (format === undefined && (request.headers.accept ?? "").includes("text/markdown"));
  if (wantsMarkdown) return reply.type("text/markdown; charset=utf-8").send(reportMarkdown(report));
  return reply.type("application/json; charset=utf-8").send(JSON.stringify(report));
}
