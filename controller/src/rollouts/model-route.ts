// Rollouts chosen by the OpenAI `model` field of the request body (match.model), and canaries selected by
// rewriting it (modelRewrite): one /v1/chat/completions path carries many models, each with its own rollout, and
// a LoRA adapter canary is the same servers asked for another model name. The filter holds the request's headers
// until it has read the body's model (filter/model-route.ts), within match.maxBodyBytes.
import { Type, type Static } from "@sinclair/typebox";
import { REASONS_KEYWORD, type ErrorDetail } from "../errors.ts";
import type { NormalizedModels } from "./models.ts";

/** Written into the JSON body as is by the filter: printable, no space, quote or backslash. */
const MODEL_NAME_PATTERN = "^[!#-\\[\\]-~]{1,256}$";
/** Envoy buffers at most 1 MiB of a request by default (a 413 past it); the held body stays well below. */
export const MAX_MODEL_BODY_BYTES = 524_288;
export const DEFAULT_MODEL_BODY_BYTES = 65_536;

export const modelName = (description: string) =>
  Type.String({
    pattern: MODEL_NAME_PATTERN,
    maxLength: 256,
    description,
    examples: ["fraud-llm"],
    [REASONS_KEYWORD]: { pattern: "must be 1 to 256 printable characters without spaces, quotes or backslashes (a model name as clients send it)" },
  });

/** The parts of `match` about the model (beside pathPrefix, in schemas.ts). */
export const MatchModelProperties = {
  model: Type.Optional(
    modelName(
      "Only requests whose JSON body names this model (the OpenAI `model` field) belong to this rollout; other rollouts on the same path take other models.",
    ),
  ),
  maxBodyBytes: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_MODEL_BODY_BYTES,
      // No schema `default`: ajv would fill it in without a model (then refused); normalizeMatch sets 65536.
      description:
        "With model (default 65536): the request body is held up to this size to read its model; a larger one goes to stable (the path's rollout without a model, if any), counted as model_route_too_large.",
    }),
  ),
};

export const ModelRewriteSpec = Type.Object(
  {
    canary: modelName("The model name the canary's requests are sent with, e.g. a LoRA adapter served beside the stable model."),
    canaryCluster: Type.Optional(
      Type.Boolean({
        default: false,
        description: "Also send the canary's requests to the canary cluster. Default false: they go where stable's go, only the model name differs.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description: "Canary selected by rewriting the request's model (needs match.model): sticky per user and weighted like any canary.",
  },
);
export type ModelRewriteSpec = Static<typeof ModelRewriteSpec>;

export interface NormalizedModelRewrite {
  canary: string;
  canaryCluster: boolean;
}

interface MatchWithModel {
  pathPrefix: string;
  model?: string;
  maxBodyBytes?: number;
}

/** What the schema cannot say: the body limit and the rewrite need a model to match, and the rewrite names another model. */
export function checkModelRoute(spec: { match: MatchWithModel; modelRewrite?: ModelRewriteSpec }): ErrorDetail[] {
  const errors: ErrorDetail[] = [];
  const model = spec.match.model;
  if (spec.match.maxBodyBytes !== undefined && model === undefined) {
    errors.push({ path: "/match/maxBodyBytes", reason: "only applies with match.model: it bounds the body held to read the model" });
  }
  const rewrite = spec.modelRewrite;
  if (rewrite !== undefined && model === undefined) {
    errors.push({ path: "/modelRewrite", reason: "needs match.model: the rewrite replaces the model the rollout matches (e.g. match.model: fraud-llm)" });
  }
  if (rewrite !== undefined && rewrite.canary === model) {
    errors.push({ path: "/modelRewrite/canary", reason: `must differ from match.model (${model}): the canary would be the stable model` });
  }
  return errors;
}

export function normalizeMatch(match: MatchWithModel): MatchWithModel {
  if (match.model === undefined) return { pathPrefix: match.pathPrefix };
  return { pathPrefix: match.pathPrefix, model: match.model, maxBodyBytes: match.maxBodyBytes ?? DEFAULT_MODEL_BODY_BYTES };
}

export function normalizeModelRewrite(rewrite: ModelRewriteSpec | undefined): NormalizedModelRewrite | undefined {
  if (rewrite === undefined) return undefined;
  return { canary: rewrite.canary, canaryCluster: rewrite.canaryCluster ?? false };
}

/**
 * A rewrite declares the two models: when the spec has no `models`, answers are checked by their own `model`
 * field against match.model (stable) and the rewrite's name (canary), as a `models` section would.
 */
export function modelsOfRewrite(match: MatchWithModel, rewrite: ModelRewriteSpec | undefined): NormalizedModels | null {
  if (rewrite === undefined || match.model === undefined) return null;
  return { stable: match.model, canary: rewrite.canary, versionField: "model", versionHeader: null };
}

/** Two rollouts take the same requests: one path prefix, and the same model or neither naming one. */
export function sameRequests(a: MatchWithModel, b: MatchWithModel): boolean {
  return a.pathPrefix === b.pathPrefix && (a.model ?? null) === (b.model ?? null);
}

/** What the filter receives (filter/model-route.ts, ModelRouteConfig). */
export interface FilterModelRoute {
  name: string;
  maxBodyBytes: number;
  canaryModel?: string;
  canaryCluster: boolean;
}

export function toFilterModelRoute(match: MatchWithModel, rewrite: NormalizedModelRewrite | undefined): FilterModelRoute | undefined {
  if (match.model === undefined) return undefined;
  return {
    name: match.model,
    maxBodyBytes: match.maxBodyBytes ?? DEFAULT_MODEL_BODY_BYTES,
    ...(rewrite ? { canaryModel: rewrite.canary } : {}),
    canaryCluster: rewrite ? rewrite.canaryCluster : true,
  };
}

export const FilterModelRouteBody = Type.Object(
  { name: Type.String(), maxBodyBytes: Type.Integer(), canaryModel: Type.Optional(Type.String()), canaryCluster: Type.Boolean() },
  { description: "Matched by the request body's model; the canary's model rewrite (filter/model-route.ts)." },
);
