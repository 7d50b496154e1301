/** GET /v1/rollouts/{name}/series: the rollout's telemetry history, merged into steps. */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { InvalidRequestError, REASONS_KEYWORD } from "../errors.ts";
import { ErrorBody, RolloutNameParams } from "../http/schemas.ts";
import { rolloutFromPath } from "../http/subject.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import type { SeriesRecorder } from "./recorder.ts";
import type { SeriesStore } from "./store.ts";
import { SeriesBody } from "./view.ts";

/** At most this many steps per answer; a smaller step asked for a longer range is widened. */
const MAX_POINTS = 1000;
const DEFAULT_POINTS = 240;

const Time = Type.String({
  maxLength: 40,
  description: "ISO 8601 date-time, or milliseconds since the epoch",
  examples: ["2026-11-30T11:00:00Z"],
});

const SeriesQuery = Type.Object(
  {
    from: Type.Optional(Time),
    to: Type.Optional(Time),
    step: Type.Optional(
      Type.String({
        pattern: "^[0-9]{1,5}(\\.[0-9]{1,3})?$",
        description: "Seconds per step, at least 1 (default: the range in about 240 steps, at least the snapshot interval)",
        [REASONS_KEYWORD]: { pattern: "must be a number of seconds, e.g. 5 or 0.5" },
      }),
    ),
    slices: Type.Optional(
      Type.String({
        maxLength: 2000,
        description: "overall (default), all, or a comma-separated list of slices (overall, dimension=value)",
      }),
    ),
  },
  { additionalProperties: false },
);

interface SeriesRoutesOptions {
  store: RolloutStore;
  series: SeriesStore;
  recorder: SeriesRecorder;
  clock?: () => Date;
}

function parseTime(value: string | undefined, what: string, name: string): number | null {
  if (value === undefined) return null;
  const ms = /^\d{1,15}$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new InvalidRequestError(`rollout ${name}: invalid query string: /${what} must be an ISO 8601 date-time or milliseconds since the epoch`, [
      { path: `/${what}`, reason: "must be an ISO 8601 date-time or milliseconds since the epoch" },
    ]);
  }
  return ms;
}

export const seriesRoutes: FastifyPluginAsyncTypebox<SeriesRoutesOptions> = async (app, { store, series, recorder, clock = () => new Date() }) => {
  app.get(
    "/v1/rollouts/:name/series",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags: ["rollouts"],
        summary: "Telemetry history: per step, variant and slice, traffic, errors, latency, output and shadow figures",
        description:
          "Snapshots are taken on every engine tick (and on a timer of the same period for manual rollouts) and kept in the " +
          "state file for retentionHours. Counts in a step are the sum of its snapshots, rates are computed from those sums; " +
          "latency quantiles are the snapshots' own, averaged weighted by their counts. Only this rollout's own history is " +
          "served (not an earlier rollout of the same name).",
        params: RolloutNameParams,
        querystring: SeriesQuery,
        response: { 200: SeriesBody, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request) => {
      const rollout = store.get(request.params.name);
      const name = rollout.spec.name;
      const created = rollout.createdAt.getTime();
      const to = parseTime(request.query.to, "to", name) ?? clock().getTime();
      // Rows after the creation only: an earlier rollout of the same name is not this one.
      const from = Math.max(parseTime(request.query.from, "from", name) ?? created - 1, created - 1);
      if (!(to > from)) {
        throw new InvalidRequestError(`rollout ${name}: invalid query string: /to must be after /from (and after the rollout's creation)`, [
          { path: "/to", reason: "must be after from" },
        ]);
      }
      const intervalMs = Math.max(1000, recorder.intervalMs);
      const fewest = Math.ceil((to - from) / MAX_POINTS);
      const asked =
        request.query.step !== undefined
          ? Math.max(1000, Number(request.query.step) * 1000)
          : Math.max(intervalMs, Math.ceil((to - from) / DEFAULT_POINTS / 1000) * 1000);
      const stepMs = Math.max(asked, fewest);
      const slicesParam = request.query.slices ?? "overall";
      const slices =
        slicesParam === "all"
          ? null
          : new Set(
              slicesParam
                .split(",")
                .map((s) => s.trim())
                .filter((s) => s !== ""),
            );
      return {
        rollout: name,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        stepSeconds: stepMs / 1000,
        retentionHours: series.retentionHours,
        intervalSeconds: recorder.intervalMs / 1000,
        points: series.query(name, { from, to, stepMs, slices }),
      };
    },
  );
};
