/**
 * Whether a rollout spec would be accepted, and every reason it would not: the one check behind both
 * POST /v1/rollouts and `modelroll lint` (which runs it offline), so the two cannot disagree.
 * Pure apart from compiling the schema once; no store, no server.
 */
import { Ajv, type Options as AjvOptions, type ValidateFunction } from "ajv";
import type { Policy } from "../engine/index.ts";
import { capDetails, REASONS_KEYWORD, schemaErrorDetails, summarizeDetails, type ErrorDetail } from "../errors.ts";
import { checkOutput } from "./output.ts";
import { RolloutSpec } from "./schemas.ts";
import { checkSegments } from "./segments.ts";
import { engineSpecErrors } from "./accept.ts";
import { checkModels } from "./models.ts";
import { checkClusters } from "./clusters.ts";
import { checkModelRoute } from "./model-route.ts";
import { checkLlmGateSources } from "./tools.ts";

/** The app's ajv settings (buildApp passes them to Fastify), so every schema is judged alike. */
export const AJV_OPTIONS = {
  // Report every bad field at once, not the first one.
  allErrors: true,
  // Fastify's defaults would drop unknown fields silently (a typo'd "canaryPrecent" would be
  // accepted and ignored) and turn "5" into 5; a release tool must reject both.
  removeAdditional: false,
  coerceTypes: false,
  useDefaults: true,
  // parentSchema in errors, to read the human reasons the schemas carry.
  verbose: true,
  // multipleOf: 0.01 on floats (0.07 / 0.01 = 7.000000000000001) needs a tolerance.
  multipleOfPrecision: 9,
  keywords: [REASONS_KEYWORD],
} satisfies AjvOptions;

type SpecValidation = { ok: true; spec: RolloutSpec } | { ok: false; errors: ErrorDetail[] };

let compiled: ValidateFunction | null = null;

function schemaCheck(): ValidateFunction {
  // Fastify's compiler adds these two to whatever it is given; the same here, so errors come out alike.
  if (compiled === null) compiled = new Ajv({ addUsedSchema: false, ...AJV_OPTIONS }).compile(RolloutSpec);
  return compiled;
}

/**
 * Every problem with a rollout spec, each with its JSON pointer and reason, in the order the API lists them:
 * the schema's errors (then the engine part's, so one answer lists everything), or, for a spec of the right
 * shape, the checks the schema cannot express (segments, output schema, the release process and policy).
 * Defaults are filled in place, as the route's validation does (canaryPercent: 0).
 */
export function validateRolloutSpec(spec: unknown, policy?: Partial<Policy>): SpecValidation {
  const validate = schemaCheck();
  const isObject = typeof spec === "object" && spec !== null && !Array.isArray(spec);
  if (!validate(spec)) {
    const engineErrors = isObject ? engineSpecErrors(spec as Record<string, unknown>, policy) : [];
    // The first errors converted and listed, with the count of the rest (structured-text.ts bounds how many there can be).
    return { ok: false, errors: schemaErrorDetails((validate.errors ?? []) as Parameters<typeof schemaErrorDetails>[0], engineErrors) };
  }
  const valid = spec as RolloutSpec;
  const errors = [
    ...checkSegments(valid.segments ?? []),
    ...checkOutput(valid.output).errors,
    ...checkModels(valid.models),
    ...checkClusters(valid),
    ...checkModelRoute(valid),
    ...checkLlmGateSources(valid),
    ...engineSpecErrors(valid as Record<string, unknown>, policy),
  ];
  return errors.length > 0 ? { ok: false, errors: capDetails(errors) } : { ok: true, spec: valid };
}

/** The details as the API's 400 message sums them up: "/path reason; /path reason" (the count of the rest last). */
export function summarizeErrors(errors: readonly ErrorDetail[]): string {
  return summarizeDetails(errors);
}
