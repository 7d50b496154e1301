/**
 * A rollout spec as accepted: every check the schema cannot make (segments, output schema, models, the
 * engine part in the context the rest of the spec gives it), and the normalized form the store keeps.
 * Create (POST) and apply (PUT) accept a spec the same way.
 */
import { parseEngineSpec, type ParseResult, type Policy } from "../engine/index.ts";
import { capDetails, InvalidRequestError, summarizeDetails, type ErrorDetail } from "../errors.ts";
import type { NormalizedSpec } from "./model.ts";
import { checkModels, modelIdentity, normalizeModels, type ModelsSpec } from "./models.ts";
import { checkOutput, normalizeOutput } from "./output.ts";
import { enginePart, type RolloutSpec } from "./schemas.ts";
import { checkSegments } from "./segments.ts";
import { normalizeShadow } from "./shadow.ts";
import { checkClusters, normalizeClusters } from "./clusters.ts";
import { checkLlmGateSources } from "./tools.ts";
import { checkModelRoute, modelsOfRewrite, normalizeMatch, normalizeModelRewrite, type ModelRewriteSpec } from "./model-route.ts";

interface AcceptedSpec {
  normalized: NormalizedSpec;
  /** The engine part parsed (null: a manual rollout). */
  engine: ParseResult | null;
}

/**
 * The engine part of a rollout spec, parsed in the context the rest of the spec gives it (output schema,
 * shadow, models); null for a manual rollout (no engine key).
 */
export function parseRolloutEngine(spec: Record<string, unknown>, policy: Partial<Policy> | undefined): ParseResult | null {
  const part = enginePart(spec);
  if (part === null) return null;
  const output = spec.output as { schema?: unknown } | undefined;
  const shadow = spec.shadow as { percent?: unknown } | undefined;
  const models = spec.models as ModelsSpec | undefined;
  const wellFormed = typeof models === "object" && models !== null && typeof models.stable === "string" && typeof models.canary === "string";
  // A model rewrite declares the two models when `models` does not (model-route.ts).
  const match = spec.match as { pathPrefix: string; model?: unknown } | undefined;
  const rewrite = spec.modelRewrite as ModelRewriteSpec | undefined;
  const rewritten =
    !wellFormed && typeof match?.model === "string" && typeof rewrite?.canary === "string"
      ? modelsOfRewrite({ pathPrefix: match.pathPrefix, model: match.model }, rewrite)
      : null;
  return parseEngineSpec(part, {
    hasOutputSchema: output?.schema !== undefined,
    hasShadow: shadow !== undefined,
    shadowPercent: typeof shadow?.percent === "number" && shadow.percent > 0 ? shadow.percent : undefined,
    policy,
    models: wellFormed ? modelIdentity(normalizeModels(models)) : modelIdentity(rewritten),
  });
}

/**
 * Errors of the engine part of a rollout spec, pointers from the spec root; empty for a manual rollout.
 * Also refuses a starting canaryPercent on a managed rollout: its stages set the weights.
 */
export function engineSpecErrors(spec: Record<string, unknown>, policy?: Partial<Policy>): ErrorDetail[] {
  return engineErrorsOf(spec, parseRolloutEngine(spec, policy));
}

function engineErrorsOf(spec: Record<string, unknown>, parsed: ParseResult | null): ErrorDetail[] {
  if (parsed === null) return [];
  const errors = parsed.ok ? [] : [...parsed.errors];
  if (typeof spec.canaryPercent === "number" && spec.canaryPercent !== 0) {
    errors.push({ path: "/canaryPercent", reason: "must be 0 or absent for a rollout managed by the engine (its stages set the weights)" });
  }
  return errors;
}

/** Normalizes a schema-valid spec; throws a 400 listing every problem the schema could not see. */
export function acceptSpec(spec: RolloutSpec, policy: Partial<Policy> | undefined): AcceptedSpec {
  const outputCheck = checkOutput(spec.output);
  const raw = spec as Record<string, unknown>;
  const clusters = normalizeClusters(spec.clusters);
  const modelRewrite = normalizeModelRewrite(spec.modelRewrite);
  const normalized: NormalizedSpec = {
    name: spec.name,
    match: normalizeMatch(spec.match),
    stickyKey: { header: spec.stickyKey.header },
    canaryPercent: spec.canaryPercent ?? 0,
    segments: spec.segments ?? [],
    ...(clusters ? { clusters } : {}),
    shadow: normalizeShadow(spec.shadow, clusters?.shadow, clusters?.stable),
    output: normalizeOutput(spec.output, outputCheck.compiled, clusters?.stable),
    models: normalizeModels(spec.models) ?? modelsOfRewrite(spec.match, spec.modelRewrite),
    ...(modelRewrite ? { modelRewrite } : {}),
    release: enginePart(raw),
  };
  const engine = parseRolloutEngine(raw, policy);
  const problems = [
    ...checkSegments(normalized.segments),
    ...outputCheck.errors,
    ...checkModels(spec.models),
    ...checkClusters(spec),
    ...checkModelRoute(spec),
    ...checkLlmGateSources(spec),
    ...engineErrorsOf(raw, engine),
  ];
  if (problems.length > 0) {
    throw new InvalidRequestError(`rollout ${normalized.name}: invalid request body: ${summarizeDetails(capDetails(problems))}`, problems);
  }
  return { normalized, engine };
}

/** A spec saved before models and the release part were kept reads with neither. */
export function upgradeSpec(spec: NormalizedSpec): NormalizedSpec {
  return { ...spec, models: spec.models ?? null, release: spec.release ?? null };
}
