// `npm start -- --models models.yaml`: the models one Envoy fronts, each on its own path prefix with its own
// stable, canary and shadow servers (README "Many models behind one proxy"):
//
//   models:
//     - name: fraud-model                  # its clusters: fraud-model-stable, fraud-model-canary, fraud-model-shadow
//       pathPrefix: /v1/models/fraud-model
//       stable: http://127.0.0.1:9001
//       canary: http://127.0.0.1:9002
//       shadow: http://127.0.0.1:9003      # optional; default: the canary
//
// Errors name the file and the field (JSON pointer) with the reason; nothing starts on a bad file.
import { readFileSync } from "node:fs";
import { Type, type Static } from "@sinclair/typebox";
import { Ajv, type ErrorObject } from "ajv";
import { MAX_LISTED_ERRORS } from "../errors.ts";
import { checkValueShape, decodeUtf8, parseYamlBounded, YamlSyntaxError } from "../structured-text.ts";
import { parseUrlHostPort } from "../envoy/bootstrap.ts";
import type { ModelRoute } from "../envoy/models-bootstrap.ts";
import { PATH_PREFIX_PATTERN } from "../rollouts/patterns.ts";

/** A DNS label short enough that "<name>-stable" stays a valid cluster name in every form. */
const MODEL_NAME_PATTERN = "^[a-z0-9]([-a-z0-9]{0,54}[a-z0-9])?$";

const ModelEntry = Type.Object(
  {
    name: Type.String({ pattern: MODEL_NAME_PATTERN, description: "DNS label, at most 56 characters: the clusters are <name>-stable, -canary, -shadow." }),
    pathPrefix: Type.String({
      pattern: PATH_PREFIX_PATTERN,
      maxLength: 256,
      description: "Requests under this prefix go to this model; the longest matching prefix wins.",
    }),
    stable: Type.String({ description: "http://HOST:PORT (an IP address or a host name) of the stable model server." }),
    canary: Type.String({ description: "http://HOST:PORT (an IP address or a host name) of the canary model server." }),
    shadow: Type.Optional(Type.String({ description: "http://HOST:PORT (an IP address or a host name) of the shadow model server; default: the canary." })),
  },
  { additionalProperties: false },
);
const ModelsFileSchema = Type.Object({ models: Type.Array(ModelEntry, { minItems: 1, maxItems: 64 }) }, { additionalProperties: false });
type ModelsFileInput = Static<typeof ModelsFileSchema>;

export interface ModelEntry extends ModelRoute {
  /** The URLs as written, to print. */
  urls: { stable: string; canary: string; shadow: string | null };
}

const REASONS: Record<string, string> = {
  "/name": "must be a DNS label of at most 56 characters (lowercase letters, digits, '-')",
  "/pathPrefix": "must start with / and contain no whitespace",
};

function describe(error: ErrorObject): string {
  const path = error.instancePath || "(file)";
  if (error.keyword === "additionalProperties") return `${path}: unknown field '${(error.params as { additionalProperty: string }).additionalProperty}'`;
  if (error.keyword === "required") return `${path}: '${(error.params as { missingProperty: string }).missingProperty}' is required`;
  const field = /\/[a-zA-Z]+$/.exec(error.instancePath)?.[0] ?? "";
  return `${path}: ${(error.keyword === "pattern" && REASONS[field]) || error.message}`;
}

let validate: ReturnType<Ajv["compile"]> | null = null;

/** The models of a models file's text; throws an Error naming `source`, every bad field and why. */
export function parseModelsFile(text: string, source: string): ModelEntry[] {
  let raw: unknown;
  try {
    raw = parseYamlBounded(text);
    checkValueShape(raw);
  } catch (error) {
    throw new Error(`${source}: ${error instanceof YamlSyntaxError ? "not YAML: " : ""}${(error as Error).message}`);
  }
  validate ??= new Ajv({ allErrors: true }).compile(ModelsFileSchema);
  if (!validate(raw)) {
    const errors = validate.errors ?? [];
    const more = errors.length > MAX_LISTED_ERRORS ? `; and ${errors.length - MAX_LISTED_ERRORS} more errors, not listed` : "";
    throw new Error(`${source}: ${errors.slice(0, MAX_LISTED_ERRORS).map(describe).join("; ")}${more}`);
  }
  const problems: string[] = [];
  const models: ModelEntry[] = [];
  (raw as ModelsFileInput).models.forEach((m, i) => {
    const at = `/models/${i}`;
    const url = (field: "stable" | "canary" | "shadow", value: string) => {
      try {
        return parseUrlHostPort(value, `${at}/${field}`);
      } catch (error) {
        problems.push((error as Error).message);
        return { host: "127.0.0.1", port: 0 };
      }
    };
    const stable = url("stable", m.stable);
    const canary = url("canary", m.canary);
    const shadow = m.shadow === undefined ? undefined : url("shadow", m.shadow);
    const name = models.find((o) => o.name === m.name);
    if (name) problems.push(`${at}/name: ${m.name} is listed twice`);
    const prefix = models.find((o) => o.pathPrefix === m.pathPrefix);
    if (prefix) problems.push(`${at}/pathPrefix: ${m.pathPrefix} is also ${prefix.name}'s`);
    models.push({
      name: m.name,
      pathPrefix: m.pathPrefix,
      stable,
      canary,
      ...(shadow ? { shadow } : {}),
      urls: { stable: m.stable, canary: m.canary, shadow: m.shadow ?? null },
    });
  });
  if (problems.length > 0) throw new Error(`${source}: ${problems.join("; ")}`);
  return models;
}

export function readModelsFile(path: string): ModelEntry[] {
  let text: string;
  try {
    text = decodeUtf8(readFileSync(path));
  } catch (error) {
    throw new Error(`--models: cannot read ${path}: ${(error as Error).message}`);
  }
  return parseModelsFile(text, path);
}
