// The identity of the two models a rollout is about: their version labels, and where an answer states its
// version (a dotted path into the JSON body, or a response header). The filter compares every answer's
// version with the declared ones (filter/identity.ts); the engine acts on a canary that answers another model
// and verifies finalize by the versions stable answers.
import { Type, type Static } from "@sinclair/typebox";
import { REASONS_KEYWORD, type ErrorDetail } from "../errors.ts";
import type { ModelIdentity } from "../engine/index.ts";
import { HEADER_NAME_PATTERN } from "./patterns.ts";

const VERSION_PATTERN = "^[A-Za-z0-9._:+@/-]{1,128}$";
const versionLabel = (description: string) =>
  Type.String({
    pattern: VERSION_PATTERN,
    maxLength: 128,
    description,
    examples: ["v2"],
    [REASONS_KEYWORD]: { pattern: "must be 1 to 128 of letters, digits and . _ : + @ / - (a model version as the model states it)" },
  });

export const ModelsSpec = Type.Object(
  {
    stable: versionLabel("Version the stable model answers with, e.g. v1."),
    canary: versionLabel("Version the new (canary) model answers with, e.g. v2."),
    versionField: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
        maxLength: 128,
        description: "Dotted path of the version in the JSON answer, e.g. model_version or meta.model.version.",
        [REASONS_KEYWORD]: { pattern: "must be a dotted path into the JSON answer, e.g. model_version or meta.version" },
      }),
    ),
    versionHeader: Type.Optional(
      Type.String({
        pattern: HEADER_NAME_PATTERN,
        maxLength: 128,
        description: "Response header stating the version, e.g. x-model-version (read without parsing the body).",
        [REASONS_KEYWORD]: { pattern: "must be a lowercase HTTP header name, e.g. x-model-version" },
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      "The two models' identity. With versionField or versionHeader every answer's version is checked: a canary answering another model is rolled back (and the filter stops routing to it), and finalize verifies that stable answers the canary's version.",
  },
);
export type ModelsSpec = Static<typeof ModelsSpec>;

export interface NormalizedModels {
  stable: string;
  canary: string;
  versionField: string | null;
  versionHeader: string | null;
}

export const NormalizedModelsView = Type.Object({
  stable: Type.String(),
  canary: Type.String(),
  versionField: Type.Union([Type.String(), Type.Null()]),
  versionHeader: Type.Union([Type.String(), Type.Null()]),
});

export function checkModels(models: ModelsSpec | undefined): ErrorDetail[] {
  if (models === undefined) return [];
  const errors: ErrorDetail[] = [];
  if (models.stable === models.canary) {
    errors.push({ path: "/models/canary", reason: `must differ from models.stable (${models.stable}): answers could not tell the two models apart` });
  }
  if (models.versionField !== undefined && models.versionHeader !== undefined) {
    errors.push({ path: "/models/versionHeader", reason: "give one version source: versionField (in the JSON answer) or versionHeader, not both" });
  }
  return errors;
}

export function normalizeModels(models: ModelsSpec | undefined): NormalizedModels | null {
  if (models === undefined) return null;
  return { stable: models.stable, canary: models.canary, versionField: models.versionField ?? null, versionHeader: models.versionHeader ?? null };
}

/** What the engine needs: the labels, and in words where answers state their version (null: nowhere). */
export function modelIdentity(models: NormalizedModels | null): ModelIdentity | null {
  if (models === null) return null;
  const source = models.versionHeader !== null ? `header ${models.versionHeader}` : models.versionField !== null ? `body field ${models.versionField}` : null;
  return { stable: models.stable, canary: models.canary, source };
}

/** What the filter receives (filter/identity.ts): only when answers can be checked. */
export interface FilterModels {
  stable: string;
  canary: string;
  versionField?: string;
  versionHeader?: string;
}

export function toFilterModels(models: NormalizedModels | null): FilterModels | undefined {
  if (models === null || (models.versionField === null && models.versionHeader === null)) return undefined;
  return {
    stable: models.stable,
    canary: models.canary,
    ...(models.versionField !== null ? { versionField: models.versionField } : {}),
    ...(models.versionHeader !== null ? { versionHeader: models.versionHeader } : {}),
  };
}
