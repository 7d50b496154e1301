// A rollout spec file (YAML or JSON; JSON is YAML) as one value, or one line saying why it cannot be read.
// Pure: the text comes from the caller.
import { parseAllDocuments } from "yaml";

type SpecFile = { ok: true; spec: unknown } | { ok: false; error: string };

export function parseSpecFile(label: string, text: string): SpecFile {
  if (text.trim() === "") return { ok: false, error: `${label}: empty; expected a rollout spec in YAML or JSON` };
  const documents = parseAllDocuments(text, { prettyErrors: true });
  if (!Array.isArray(documents)) return { ok: false, error: `${label}: not a YAML or JSON document` };
  const used = documents.filter((d) => d.contents !== null || d.errors.length > 0);
  if (used.length > 1) return { ok: false, error: `${label}: ${used.length} documents; give one rollout spec per file` };
  const doc = used[0] ?? documents[0];
  if (doc === undefined) return { ok: false, error: `${label}: not a YAML or JSON document` };
  const [first] = doc.errors;
  if (first !== undefined) {
    const where = first.linePos?.[0] ? ` at line ${first.linePos[0].line}, column ${first.linePos[0].col}` : "";
    const headline = first.message.split("\n", 1)[0] ?? "";
    return { ok: false, error: `${label}: YAML/JSON syntax error${where}: ${headline.replace(/ at line \d+, column \d+:?$/, "")}` };
  }
  return { ok: true, spec: doc.toJS({ maxAliasCount: 100 }) };
}

/** The name a spec gives itself, when it has a usable one. */
export function specName(spec: unknown): string | null {
  const name = typeof spec === "object" && spec !== null ? (spec as { name?: unknown }).name : undefined;
  return typeof name === "string" && name !== "" ? name : null;
}
