import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply } from "fastify";
import { Type } from "@sinclair/typebox";
import { ConflictError, REASONS_KEYWORD } from "../errors.ts";
import { ErrorBody } from "../http/schemas.ts";
import type { ControllerTelemetry } from "../telemetry.ts";
import type { LongPollDistributor } from "./long-poll.ts";
import type { FilterConfig } from "./projection.ts";
import { FilterModelRouteBody } from "../rollouts/model-route.ts";

const DEFAULT_WAIT_SECONDS = 20;
const MAX_WAIT_SECONDS = 60;

export const FilterConfigBody = Type.Object({
  epoch: Type.String(),
  version: Type.Integer(),
  rollouts: Type.Array(
    Type.Object({
      name: Type.String(),
      pathPrefix: Type.String(),
      stickyHeader: Type.String(),
      canaryBasisPoints: Type.Integer({ minimum: 0, maximum: 10000 }),
      segments: Type.Array(
        Type.Object({
          name: Type.String(),
          values: Type.Array(Type.String()),
          header: Type.Optional(Type.String()),
          prefixes: Type.Optional(Type.Array(Type.String())),
          bounds: Type.Optional(Type.Array(Type.Integer())),
        }),
      ),
      shadow: Type.Optional(
        Type.Object({
          basisPoints: Type.Integer({ minimum: 0, maximum: 10000 }),
          cluster: Type.String(),
          timeoutMs: Type.Integer(),
          maxBodyBytes: Type.Integer(),
          maxInFlight: Type.Integer(),
          noiseBasisPoints: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000 })),
          noiseCluster: Type.Optional(Type.String()),
        }),
      ),
      output: Type.Object({
        analyze: Type.Boolean(),
        maxBodyBytes: Type.Integer(),
        predictionField: Type.String(),
        confidenceField: Type.String(),
        labels: Type.Array(Type.String()),
        promptTokensField: Type.String(),
        completionTokensField: Type.String(),
        citationField: Type.Optional(Type.String()),
        abstainedField: Type.Optional(Type.String()),
        fallbackField: Type.Optional(Type.String()),
        schema: Type.Optional(Type.String({ description: "Compiled output schema (JSON text)." })),
        guard: Type.Boolean(),
        guardCluster: Type.String(),
        guardTimeoutMs: Type.Integer(),
        tools: Type.Optional(Type.Record(Type.String(), Type.String(), { description: "Tool name -> compiled arguments schema (JSON text)." })),
      }),
      models: Type.Optional(
        Type.Object(
          {
            stable: Type.String(),
            canary: Type.String(),
            versionField: Type.Optional(Type.String()),
            versionHeader: Type.Optional(Type.String()),
          },
          { description: "The declared versions and where answers state theirs: the filter checks every answer (filter/identity.ts)." },
        ),
      ),
      model: Type.Optional(FilterModelRouteBody),
    }),
  ),
});

// Query values arrive as strings and the app's ajv does not coerce (coercion would let a body's "5"
// pass as 5), so the numbers are checked as digit strings here.
const FilterConfigQuery = Type.Object({
  version: Type.Optional(
    Type.String({
      pattern: "^[0-9]{1,15}$",
      description: "Version the filter has.",
      [REASONS_KEYWORD]: { pattern: "must be a non-negative integer" },
    }),
  ),
  epoch: Type.Optional(Type.String({ maxLength: 64, description: "Epoch of the config the filter has." })),
  wait: Type.Optional(
    Type.String({
      pattern: "^[0-9]{1,6}(\\.[0-9]{1,3})?$",
      description: `Seconds to hold the request when nothing changed (default ${DEFAULT_WAIT_SECONDS}, at most ${MAX_WAIT_SECONDS}).`,
      [REASONS_KEYWORD]: { pattern: "must be a number of seconds, e.g. 20 or 0.5" },
    }),
  ),
});

/** How long to hold a poll, from its `wait` parameter (seconds, as validated by the query schema). */
export function holdMilliseconds(wait: string | undefined): number {
  const seconds = wait === undefined ? DEFAULT_WAIT_SECONDS : Number(wait);
  return Math.round(Math.min(MAX_WAIT_SECONDS, Math.max(0, seconds)) * 1000);
}

interface FilterConfigRoutesOptions {
  longPoll: LongPollDistributor;
  telemetry: ControllerTelemetry;
  /**
   * False with `--config-delivery istiod`: a poll (a request with `wait`) is refused with 409, so filters whose
   * WasmPlugin still names the controller keep their pluginConfig (and back off) instead of holding connections.
   * A read without `wait` still answers the config.
   */
  served?: boolean;
}

export const filterConfigRoutes: FastifyPluginAsyncTypebox<FilterConfigRoutesOptions> = async (app, { longPoll, telemetry, served = true }) => {
  // Serialized once per published config, however many filters fetch it: with thousands of rollouts the
  // config is megabytes, and every held poll is answered on each change.
  let serialized: { config: FilterConfig; body: string } | null = null;
  const push = (reply: FastifyReply) => {
    telemetry.configPushes.inc();
    const config = longPoll.config;
    if (serialized?.config !== config) {
      const serialize = reply.compileSerializationSchema(FilterConfigBody, "200") as unknown as (value: FilterConfig) => string;
      serialized = { config, body: serialize(config) };
    }
    return reply.code(200).header("cache-control", "no-store").type("application/json; charset=utf-8").send(serialized.body);
  };

  app.get(
    "/v1/filter-config",
    {
      config: { subject: () => "filter-config" },
      schema: {
        tags: ["filter"],
        summary: "Config for the Wasm filter (long-poll)",
        description:
          "Answers 200 at once when the caller's epoch or version differs from the controller's; otherwise holds " +
          "the request until the version changes (200) or `wait` seconds pass (304, empty body). With `--config-delivery istiod` " +
          "a request with `wait` is refused (409): the config reaches the filters through the WasmPlugin.",
        querystring: FilterConfigQuery,
        response: {
          200: FilterConfigBody,
          304: Type.Null({ description: "Nothing changed within `wait` seconds; empty body." }),
          400: ErrorBody,
          409: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { version, epoch, wait } = request.query;
      if (!served && wait !== undefined) {
        throw new ConflictError(
          "filter config: the long-poll is off (--config-delivery istiod): the filters get their rollouts from the WasmPlugin's pluginConfig through istiod; remove pluginConfig.controller from the WasmPlugin, or run the controller with --config-delivery both",
        );
      }
      // A different epoch means another controller run: its version numbers say nothing about ours.
      const current = longPoll.config;
      if (version === undefined || epoch !== current.epoch || Number(version) !== current.version) {
        return push(reply);
      }
      const clientGone = new AbortController();
      const onClose = () => clientGone.abort();
      reply.raw.once("close", onClose);
      try {
        const outcome = await longPoll.waitForChange(Number(version), holdMilliseconds(wait), clientGone.signal);
        if (outcome === "changed") return push(reply);
        // Timeout, shutdown, or a caller that left: "nothing new" is true in every case.
        return reply.code(304).header("cache-control", "no-store").send(null);
      } finally {
        reply.raw.off("close", onClose);
      }
    },
  );
};
