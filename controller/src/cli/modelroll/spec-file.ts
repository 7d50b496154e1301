// A rollout spec file (YAML or JSON; JSON is YAML) as one value, or one line saying why it cannot be read.
// Pure: the text comes from the caller.
// Read within the same bounds as an API body (structured-text.ts): a file that would crash the parser is an error.
import { checkValueShape, composeYaml, documentValue, TextShapeError, YamlSyntaxError } from "../../structured-text.ts";

type SpecFile = { ok: true; spec: unknown } | { ok: false; error: string };

export function parseSpecFile(label: string, text: string): SpecFile {
  if (text.trim() === "") return { ok: false, error: `${label}: empty; expected a rollout spec in YAML or JSON` };
  try {
    const documents = composeYaml(text, { single: false });
    const used = documents.filter((d) => d.contents !== null);
    if (used.length > 1) return { ok: false, error: `${label}: ${used.length} documents; give one rollout spec per file` };
    const doc = used[0] ?? documents[0];
    if (doc === undefined) return { ok: false, error: `${label}: not a YAML or JSON document` };
    const spec = documentValue(doc);
    checkValueShape(spec);
    return { ok: true, spec };
  } catch (error) {
    if (error instanceof YamlSyntaxError) return { ok: false, error: `${label}: YAML/JSON ${error.message}` };
    if (error instanceof TextShapeError) return { ok: false, error: `${label}: ${error.message}` };
    throw error;
  }
}

/** The name a spec gives itself, when it has a usable one. */
export function specName(spec: unknown): string | null {
  const name = typeof spec === "object" && spec !== null ? (spec as { name?: unknown }).name : undefined;
  return typeof name === "string" && name !== "" ? name : null;
}
