// Rollouts chosen by the OpenAI `model` field of the request body, and canaries selected by rewriting it.
// One path (`/v1/chat/completions`) carries many models; a rollout whose config has `model` matches only the
// requests naming that model. The filter then holds the request's headers (StopIteration) and buffers its body up to
// `maxBodyBytes`, reads the top-level `model` string, picks the rollout, and, for a canary request of a rollout
// with `canaryModel`, rewrites the field in the buffered body (content-length follows) before anything goes
// upstream. A body over the limit, not JSON or without a model string fails open: the path's rollout without a
// model (if any) or no rollout at all, which routes to stable; counted on every model rollout of the path:
//   modelroll.rollout.<r>.variant.stable.model_route_<too_large|unreadable|not_held|rewrite_failed>
// (rewrite_failed: the host refused the rewritten body, so the request went to stable as it was), and each canary
// request whose model was rewritten as modelroll.rollout.<r>.variant.canary.model_rewritten.
// The scanning and splicing here are pure.
import { defineMetric, MetricType } from "./sdk/host";
import { JsonKind, JsonValue, parseJsonBytes } from "./json";
import { isPrintableToken, objectAt, Problems } from "./config-fields";

/** Model routing of one rollout (config `model`). */
export class ModelRouteConfig {
  /** The requested model name this rollout matches, compared as written. */
  name: string = "";
  /** The request body is held up to this size to read the model; larger ones fail open (counted). */
  maxBodyBytes: u32 = 65536;
  /** A canary request's model is rewritten to this; "" for none. */
  canaryModel: string = "";
  /** A canary request goes to the canary cluster (variant header canary); false: to stable's, only the model differs. */
  canaryCluster: bool = true;
}

export const MODEL_ROUTE_TOO_LARGE: i32 = 0;
export const MODEL_ROUTE_UNREADABLE: i32 = 1;
export const MODEL_ROUTE_NOT_HELD: i32 = 2;
export const MODEL_ROUTE_REWRITE_FAILED: i32 = 3;
export const MODEL_ROUTE_NAMES: Array<string> = ["too_large", "unreadable", "not_held", "rewrite_failed"];

/** Envoy buffers at most 1 MiB of a request by default; the held body must stay well below it. */
export const MAX_MODEL_BODY_BYTES: f64 = 524288;

/** `{name, maxBodyBytes?, canaryModel?, canaryCluster?}`; problems are reported with their field path. */
export function parseModelRoute(v: JsonValue, p: string, problems: Problems): ModelRouteConfig | null {
  const reader = objectAt(v, p, problems);
  if (reader === null) return null;
  const before = problems.count;
  const m = new ModelRouteConfig();
  const name = reader.string("name", true);
  if (name !== null) {
    if (isModelName(name)) m.name = name;
    else reader.problem("name", "must be 1-256 printable characters without spaces, quotes or backslashes");
  }
  const limit = reader.integer("maxBodyBytes", 1, MAX_MODEL_BODY_BYTES);
  if (!isNaN(limit)) m.maxBodyBytes = <u32>limit;
  const canary = reader.string("canaryModel", false);
  if (canary !== null) {
    if (isModelName(canary)) m.canaryModel = canary;
    else reader.problem("canaryModel", "must be 1-256 printable characters without spaces, quotes or backslashes");
  }
  m.canaryCluster = reader.boolean("canaryCluster", m.canaryCluster);
  reader.finish();
  return problems.count == before ? m : null;
}

/** Written into a JSON string as is: no quote, no backslash, no control characters. */
function isModelName(s: string): bool {
  if (!isPrintableToken(s, 256)) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c) return false;
  }
  return true;
}

/** Where the top-level `model` string is in a request body: [start, end) spans the quotes. */
export class ModelSpan {
  constructor(
    public start: i32,
    public end: i32,
    public name: string,
  ) {}
}

/**
 * The top-level "model" member's string value (the last one when repeated, as JSON.parse reads it), or null when
 * the body is not a JSON object or has no model string. One pass; nested values are skipped, never parsed.
 */
export function findModel(body: ArrayBuffer): ModelSpan | null {
  const base = changetype<usize>(body);
  const n = body.byteLength;
  let i = skipSpace(base, 0, n);
  if (i >= n || load<u8>(base + i) != 0x7b) return null;
  i = skipSpace(base, i + 1, n);
  let found: ModelSpan | null = null;
  if (i < n && load<u8>(base + i) == 0x7d) return null;
  while (i < n) {
    if (load<u8>(base + i) != 0x22) return null;
    const keyEnd = skipString(base, i, n);
    if (keyEnd < 0) return null;
    const isModel = keyEnd - i == 7 && isModelKey(base + i + 1);
    i = skipSpace(base, keyEnd, n);
    if (i >= n || load<u8>(base + i) != 0x3a) return null;
    i = skipSpace(base, i + 1, n);
    if (i >= n) return null;
    const valueStart = i;
    const valueEnd = skipValue(base, i, n);
    if (valueEnd < 0) return null;
    if (isModel) {
      found = null;
      if (load<u8>(base + valueStart) == 0x22) {
        const name = decodeString(body, valueStart, valueEnd);
        if (name !== null) found = new ModelSpan(valueStart, valueEnd, name);
      }
    }
    i = skipSpace(base, valueEnd, n);
    if (i >= n) return null;
    const c = load<u8>(base + i);
    if (c == 0x7d) return skipSpace(base, i + 1, n) == n ? found : null;
    if (c != 0x2c) return null;
    i = skipSpace(base, i + 1, n);
  }
  return null;
}

/** The body with the model string at `span` replaced by `name` (a name isModelName accepts: written as is). */
export function rewriteModel(body: ArrayBuffer, span: ModelSpan, name: string): ArrayBuffer {
  const quoted = String.UTF8.encode('"' + name + '"');
  const tail = body.byteLength - span.end;
  const out = new ArrayBuffer(span.start + quoted.byteLength + tail);
  const o = changetype<usize>(out);
  const b = changetype<usize>(body);
  memory.copy(o, b, <usize>span.start);
  memory.copy(o + <usize>span.start, changetype<usize>(quoted), <usize>quoted.byteLength);
  memory.copy(o + <usize>(span.start + quoted.byteLength), b + <usize>span.end, <usize>tail);
  return out;
}

function isModelKey(p: usize): bool {
  return load<u8>(p) == 0x6d && load<u8>(p + 1) == 0x6f && load<u8>(p + 2) == 0x64 && load<u8>(p + 3) == 0x65 && load<u8>(p + 4) == 0x6c;
}

function skipSpace(base: usize, i: i32, n: i32): i32 {
  while (i < n) {
    const c = load<u8>(base + i);
    if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
    i++;
  }
  return i;
}

/** From an opening quote to just past the closing one; -1 when unterminated. */
function skipString(base: usize, i: i32, n: i32): i32 {
  i++;
  while (i < n) {
    const c = load<u8>(base + i);
    if (c == 0x5c) i += 2;
    else if (c == 0x22) return i + 1;
    else i++;
  }
  return -1;
}

/** Past one value (strings and brackets tracked, scalars up to a delimiter); -1 when the body ends first. */
function skipValue(base: usize, i: i32, n: i32): i32 {
  const c = load<u8>(base + i);
  if (c == 0x22) return skipString(base, i, n);
  if (c == 0x7b || c == 0x5b) {
    let depth = 0;
    while (i < n) {
      const d = load<u8>(base + i);
      if (d == 0x22) {
        i = skipString(base, i, n);
        if (i < 0) return -1;
        continue;
      }
      if (d == 0x7b || d == 0x5b) depth++;
      else if (d == 0x7d || d == 0x5d) {
        depth--;
        if (depth == 0) return i + 1;
      }
      i++;
    }
    return -1;
  }
  while (i < n) {
    const d = load<u8>(base + i);
    if (d == 0x2c || d == 0x7d || d == 0x5d || d == 0x20 || d == 0x09 || d == 0x0a || d == 0x0d) return i;
    i++;
  }
  return i;
}

/** The string value at [start, end) (quotes included), escapes decoded by the JSON parser; null when malformed. */
function decodeString(body: ArrayBuffer, start: i32, end: i32): string | null {
  const slice = body.slice(start, end);
  const parsed = parseJsonBytes(slice, 1);
  const v = parsed.value;
  if (v === null || v.kind != JsonKind.String) return null;
  return v.str;
}

/** Requests of a path's model rollouts that could not be routed by model, per reason. */
export class ModelRouteMetrics {
  failOpen: Array<u32> = [];
  rewritten: u32;
  constructor(rollout: string) {
    const base = "modelroll.rollout." + rollout + ".variant.";
    for (let i = 0; i < MODEL_ROUTE_NAMES.length; i++)
      this.failOpen.push(defineMetric(MetricType.Counter, base + "stable.model_route_" + MODEL_ROUTE_NAMES[i]));
    this.rewritten = defineMetric(MetricType.Counter, base + "canary.model_rewritten");
  }
}
