// Reading the model's JSON answer: the facts the stats and the shadow comparison need, extracted from one
// parse. Pure (no host calls); the filter runs it on every analyzed answer, exercised through real Envoy
// (test/e2e/output.test.ts) and through the fake host (test/unit/filter-host.test.ts).
import { OutputConfig } from "./config-model";
import { JsonKind, JsonValue } from "./json";

/** Why an answer was not analyzed; indexes into UNANALYZED_NAMES. */
export const UNANALYZED_TOO_LARGE: i32 = 0;
export const UNANALYZED_NOT_JSON_CONTENT_TYPE: i32 = 1;
export const UNANALYZED_COMPRESSED: i32 = 2;
export const UNANALYZED_NO_BODY: i32 = 3;
/** A status outside 2xx (an error, Envoy's own local reply, a shadow call without an answer): counted as an error, never validated. */
export const UNANALYZED_ERROR_STATUS: i32 = 4;
export const UNANALYZED_NAMES: Array<string> = ["too_large", "not_json_content_type", "compressed", "no_body", "error_status"];

/** Only successful answers are model outputs: schema validation and output analysis read 2xx answers alone. */
export function isAnalyzableStatus(status: i32): bool {
  return status >= 200 && status < 300;
}

/** A dotted path's value; a part of digits indexes an array (choices.0.message.content). */
export function lookup(doc: JsonValue, path: Array<string>): JsonValue | null {
  let cur: JsonValue | null = doc;
  for (let i = 0; i < path.length && cur !== null; i++) cur = cur.kind == JsonKind.Array ? itemAt(cur, path[i]) : cur.get(path[i]);
  return cur;
}

function itemAt(array: JsonValue, part: string): JsonValue | null {
  if (part.length == 0 || part.length > 9) return null;
  let index = 0;
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
    index = index * 10 + (c - 0x30);
  }
  return index < array.items.length ? array.items[index] : null;
}

/** The prediction as kind-tagged text, so "1" (string) and 1 (number) differ; null when absent or not a scalar. */
export function predictionText(doc: JsonValue, output: OutputConfig): string | null {
  const p = lookup(doc, output.predictionField);
  if (p === null) return null;
  if (p.kind == JsonKind.String) return "s:" + p.str;
  if (p.kind == JsonKind.Number) return "n:" + p.num.toString();
  if (p.kind == JsonKind.Bool) return p.bool ? "b:true" : "b:false";
  return null;
}

/** Index into output.labels; labels.length = "other" (a prediction not in the list); labels.length + 1 = "missing". */
export function labelIndex(doc: JsonValue | null, output: OutputConfig): i32 {
  const missing = output.labels.length + 1;
  if (doc === null) return missing;
  const p = lookup(doc, output.predictionField);
  if (p === null) return missing;
  let text = "";
  if (p.kind == JsonKind.String) text = p.str.toLowerCase();
  else if (p.kind == JsonKind.Number) text = p.num.toString();
  else if (p.kind == JsonKind.Bool) text = p.bool ? "true" : "false";
  else return missing;
  for (let i = 0; i < output.labels.length; i++) if (output.labels[i] == text) return i;
  return output.labels.length;
}

/** A finite number at the path, or NaN. */
export function numberAt(doc: JsonValue, path: Array<string> | null): f64 {
  if (path === null) return NaN;
  const v = lookup(doc, path);
  return v !== null && v.kind == JsonKind.Number && isFinite(v.num) ? v.num : NaN;
}

/**
 * Whether a flag field is set: true, a non-empty string, a non-zero number, a non-empty array or object
 * (so "citations": [..] counts as present). Absent, null, false, "", 0, [] and {} are not set.
 */
export function flagAt(doc: JsonValue, path: Array<string> | null): bool {
  if (path === null) return false;
  const v = lookup(doc, path);
  if (v === null) return false;
  if (v.kind == JsonKind.Bool) return v.bool;
  if (v.kind == JsonKind.String) return v.str.length > 0;
  if (v.kind == JsonKind.Number) return v.num != 0;
  if (v.kind == JsonKind.Array) return v.items.length > 0;
  if (v.kind == JsonKind.Object) return v.keys.length > 0;
  return false;
}

/** Confidence in thousandths, clamped to 0..1000 (a histogram records integers); -1 when absent. */
export function confidenceMilli(doc: JsonValue, output: OutputConfig): i64 {
  const c = numberAt(doc, output.confidenceField);
  if (isNaN(c)) return -1;
  const clamped = Math.min(Math.max(c, 0), 1);
  return <i64>Math.round(clamped * 1000);
}

/** content-type says JSON: application/json, application/problem+json, ...; parameters are ignored. */
export function isJsonContentType(value: string | null): bool {
  if (value === null) return false;
  let v = value.toLowerCase();
  const semicolon = v.indexOf(";");
  if (semicolon >= 0) v = v.substring(0, semicolon);
  v = v.trim();
  return v == "application/json" || (v.startsWith("application/") && v.endsWith("+json"));
}
