// Pure parsing of the two configs the filter receives into typed objects:
//  - the plugin configuration from Envoy's bootstrap / WasmPlugin (static; unknown keys are typos and refused),
//  - the rollout table from the controller's long-poll (dynamic; unknown keys are ignored so an
//    older filter keeps working with a newer controller).
// Errors name the field: "rollouts[2].canaryBasisPoints: must be an integer 0..10000".
import { JsonKind, JsonValue, parseJson } from "./json";
import { parseCompiledSchemaText, SchemaNode } from "./schema";
import { ModelsConfig, parseModels } from "./identity";

export const SEGMENT_HEADER: i32 = 0;
export const SEGMENT_PATH: i32 = 1;
export const SEGMENT_SIZE: i32 = 2;

/**
 * One segment dimension. Its value for a request is one of `values`, or "other" (always the last index,
 * values.length), so a client cannot create new stat names.
 *  - header: the lowercased header value if listed;
 *  - path:   the value of the longest matching prefix (prefixes[i] -> values[i]);
 *  - size:   content-length <= bounds[i] -> values[i]; above the last bound -> values[bounds.length].
 */
export class SegmentConfig {
  name: string = "";
  kind: i32 = SEGMENT_HEADER;
  header: string = "";
  values: Array<string> = [];
  prefixes: Array<string> = [];
  bounds: Array<i64> = [];
}

/** Mirroring of sampled requests to a shadow model, and how its answer is compared with the primary's. */
export class ShadowConfig {
  /** Sampled share in basis points, sticky by the rollout's key (a sampled user is always mirrored). */
  basisPoints: u32 = 0;
  /** Envoy cluster the mirrored requests go to. */
  cluster: string = "shadow";
  timeoutMs: u32 = 1000;
  /** Request bodies larger than this are not mirrored (counted); response bodies larger are not compared. */
  maxBodyBytes: u32 = 65536;
  /** Mirrored calls in flight per Envoy worker; beyond it requests are not mirrored (counted). */
  maxInFlight: u32 = 64;
}

/**
 * What the filter reads from the model's JSON answers. Paths are dotted, e.g. "usage.prompt_tokens".
 * `analyze` turns on per-answer analysis (label distribution, confidence, LLM fields, schema); without it
 * answers are read only for shadow comparison.
 */
export class OutputConfig {
  analyze: bool = false;
  maxBodyBytes: u32 = 65536;
  predictionField: Array<string> = ["prediction"];
  confidenceField: Array<string> = ["confidence"];
  /** Bounded label set for the prediction distribution; anything else counts as "other". */
  labels: Array<string> = [];
  promptTokensField: Array<string> = ["usage", "prompt_tokens"];
  completionTokensField: Array<string> = ["usage", "completion_tokens"];
  citationField: Array<string> | null = null;
  abstainedField: Array<string> | null = null;
  fallbackField: Array<string> | null = null;
  /** The compiled output schema (sent as JSON text, parsed here once per config), or null. */
  schema: SchemaNode | null = null;
  /** Canary output guard: a canary answer failing the schema is replaced by the stable model's answer. */
  guard: bool = false;
  /** Where the guard fetches the stable answer from. */
  guardCluster: string = "stable";
  guardTimeoutMs: u32 = 2000;
}

export class RolloutConfig {
  name: string = "";
  pathPrefix: string = "";
  stickyHeader: string = "";
  canaryBasisPoints: u32 = 0;
  segments: Array<SegmentConfig> = [];
  shadow: ShadowConfig | null = null;
  output: OutputConfig = new OutputConfig();
  /** The declared models and where answers state their version (identity.ts); null: not checked. */
  models: ModelsConfig | null = null;
}

export class RolloutTable {
  epoch: string = "";
  version: i64 = 0;
  rollouts: Array<RolloutConfig> = [];
}

export class ControllerConfig {
  cluster: string = "";
  authority: string = "";
  path: string = "/v1/filter-config";
  pollWaitSeconds: u32 = 20;
  /** Bearer token for the config long-poll (the controller's read-only filter token); empty: none sent. */
  token: string = "";
}

export class PluginConfig {
  variantHeader: string = "x-rollout-variant";
  responseVariantHeader: string = "x-rollout-variant";
  controller: ControllerConfig | null = null;
  /**
   * The host honours StopIteration from header callbacks (Envoy's allow_on_headers_stop_iteration). Without
   * it Envoy would stop delivering the body after a headers stop, so the output guard stays off.
   */
  headersStopIteration: bool = false;
  /** Rollouts given statically (e.g. through Istio's pluginConfig); replaced by the controller's once it answers. */
  staticRollouts: RolloutTable | null = null;
}

export class ParseResult<T> {
  constructor(public value: T | null, public error: string) {}
}

function isLowerToken(s: string): bool {
  if (s.length == 0 || s.length > 128) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e;
    if (!ok) return false;
  }
  return true;
}

/** Segment names and values become parts of stat names: a-z, 0-9, '_' and '-', no dots. */
export function isStatToken(s: string): bool {
  if (s.length == 0 || s.length > 32) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f;
    if (!ok) return false;
  }
  return true;
}

/** DNS-label rollout names: they are embedded in Envoy stat names, so no dots. */
export function isRolloutName(s: string): bool {
  if (s.length == 0 || s.length > 63) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || (c == 0x2d && i > 0 && i < s.length - 1);
    if (!ok) return false;
  }
  return true;
}

function stringField(obj: JsonValue, key: string, path: string, required: bool, out: Array<string>): string | null {
  const v = obj.get(key);
  if (v === null) {
    if (required) out.push(path + key + ": is required");
    return null;
  }
  if (v.kind != JsonKind.String) {
    out.push(path + key + ": must be a string");
    return null;
  }
  return v.str;
}

function integerField(obj: JsonValue, key: string, path: string, min: f64, max: f64, out: Array<string>): f64 {
  const v = obj.get(key);
  if (v === null) return NaN;
  if (v.kind != JsonKind.Number || !isFinite(v.num) || Math.floor(v.num) != v.num || v.num < min || v.num > max) {
    out.push(path + key + ": must be an integer " + (<i64>min).toString() + ".." + (<i64>max).toString());
    return NaN;
  }
  return v.num;
}

/** The boolean at `key`, or null when absent (a non-boolean is reported). */
function boolField(obj: JsonValue, key: string, path: string, out: Array<string>): JsonValue | null {
  const v = obj.get(key);
  if (v === null) return null;
  if (v.kind != JsonKind.Bool) {
    out.push(path + key + ": must be a boolean");
    return null;
  }
  return v;
}

function rejectUnknownKeys(obj: JsonValue, allowed: Array<string>, path: string, out: Array<string>): void {
  for (let i = 0; i < obj.keys.length; i++) {
    if (!allowed.includes(obj.keys[i])) out.push(path + obj.keys[i] + ": unknown field");
  }
}

function parseRollout(v: JsonValue, path: string, out: Array<string>): RolloutConfig | null {
  if (v.kind != JsonKind.Object) {
    out.push(path + ": must be an object");
    return null;
  }
  const before = out.length;
  const r = new RolloutConfig();
  const p = path + ".";
  const name = stringField(v, "name", p, true, out);
  if (name !== null) {
    if (isRolloutName(name)) r.name = name;
    else out.push(p + "name: must be a DNS label (a-z, 0-9, '-', at most 63)");
  }
  const prefix = stringField(v, "pathPrefix", p, true, out);
  if (prefix !== null) {
    if (prefix.length > 0 && prefix.charCodeAt(0) == 0x2f) r.pathPrefix = prefix;
    else out.push(p + "pathPrefix: must start with '/'");
  }
  const sticky = stringField(v, "stickyHeader", p, true, out);
  if (sticky !== null) {
    if (isLowerToken(sticky)) r.stickyHeader = sticky;
    else out.push(p + "stickyHeader: must be a lowercase header name");
  }
  const bp = integerField(v, "canaryBasisPoints", p, 0, 10000, out);
  if (!isNaN(bp)) r.canaryBasisPoints = <u32>bp;
  const segments = v.get("segments");
  if (segments !== null) r.segments = parseSegments(segments, p + "segments", out);
  const shadow = v.get("shadow");
  if (shadow !== null) r.shadow = parseShadow(shadow, p + "shadow.", out);
  const output = v.get("output");
  if (output !== null) {
    const parsed = parseOutput(output, p + "output.", out);
    if (parsed !== null) r.output = parsed;
  }
  const models = v.get("models");
  if (models !== null) r.models = parseModels(models, p + "models.", out);
  return out.length == before ? r : null;
}

function optionalFieldPath(v: JsonValue, key: string, path: string, out: Array<string>): Array<string> | null {
  if (!v.has(key)) return null;
  return fieldPath(v, key, path, out, []);
}

function parseOutput(v: JsonValue, p: string, out: Array<string>): OutputConfig | null {
  if (v.kind != JsonKind.Object) {
    out.push(p + ": must be an object");
    return null;
  }
  const o = new OutputConfig();
  const analyze = boolField(v, "analyze", p, out);
  if (analyze !== null) o.analyze = analyze.bool;
  const maxBody = integerField(v, "maxBodyBytes", p, 0, 16777216, out);
  if (!isNaN(maxBody)) o.maxBodyBytes = <u32>maxBody;
  o.predictionField = fieldPath(v, "predictionField", p, out, o.predictionField);
  o.confidenceField = fieldPath(v, "confidenceField", p, out, o.confidenceField);
  o.promptTokensField = fieldPath(v, "promptTokensField", p, out, o.promptTokensField);
  o.completionTokensField = fieldPath(v, "completionTokensField", p, out, o.completionTokensField);
  o.citationField = optionalFieldPath(v, "citationField", p, out);
  o.abstainedField = optionalFieldPath(v, "abstainedField", p, out);
  o.fallbackField = optionalFieldPath(v, "fallbackField", p, out);
  const labels = v.get("labels");
  if (labels !== null) {
    o.labels = stringList(labels, p + "labels", out);
    if (o.labels.length > 32) out.push(p + "labels: at most 32");
    for (let i = 0; i < o.labels.length; i++) {
      if (!isStatToken(o.labels[i]) || o.labels[i] == "other" || o.labels[i] == "missing") {
        out.push(p + "labels[" + i.toString() + "]: must be 1-32 of a-z 0-9 _ - and not 'other' or 'missing'");
      }
    }
  }
  const guard = boolField(v, "guard", p, out);
  if (guard !== null) o.guard = guard.bool;
  const guardCluster = stringField(v, "guardCluster", p, false, out);
  if (guardCluster !== null) {
    if (guardCluster.length > 0) o.guardCluster = guardCluster;
    else out.push(p + "guardCluster: must not be empty");
  }
  const guardTimeout = integerField(v, "guardTimeoutMs", p, 1, 60000, out);
  if (!isNaN(guardTimeout)) o.guardTimeoutMs = <u32>guardTimeout;
  const schemaText = stringField(v, "schema", p, false, out);
  if (schemaText !== null) {
    const compiled = parseCompiledSchemaText(schemaText);
    if (compiled.ok) o.schema = compiled.schema;
    else out.push(p + "schema: " + compiled.error);
  }
  if (o.guard && o.schema === null) out.push(p + "guard: needs a schema to judge answers by");
  return o;
}

function fieldPath(v: JsonValue, key: string, path: string, out: Array<string>, fallback: Array<string>): Array<string> {
  const text = stringField(v, key, path, false, out);
  if (text === null) return fallback;
  const parts = text.split(".");
  for (let i = 0; i < parts.length; i++) {
    if (parts[i].length == 0) {
      out.push(path + key + ": must be a dotted path like output.label");
      return fallback;
    }
  }
  return parts;
}

function parseShadow(v: JsonValue, p: string, out: Array<string>): ShadowConfig | null {
  if (v.kind != JsonKind.Object) {
    out.push(p + ": must be an object");
    return null;
  }
  const s = new ShadowConfig();
  const bp = integerField(v, "basisPoints", p, 0, 10000, out);
  if (!isNaN(bp)) s.basisPoints = <u32>bp;
  const cluster = stringField(v, "cluster", p, false, out);
  if (cluster !== null) {
    if (cluster.length > 0) s.cluster = cluster;
    else out.push(p + "cluster: must not be empty");
  }
  // A timeout of 0 means "none" to Envoy: never allow it.
  const timeout = integerField(v, "timeoutMs", p, 1, 60000, out);
  if (!isNaN(timeout)) s.timeoutMs = <u32>timeout;
  const maxBody = integerField(v, "maxBodyBytes", p, 0, 16777216, out);
  if (!isNaN(maxBody)) s.maxBodyBytes = <u32>maxBody;
  const maxInFlight = integerField(v, "maxInFlight", p, 1, 10000, out);
  if (!isNaN(maxInFlight)) s.maxInFlight = <u32>maxInFlight;
  return s;
}

const MAX_SEGMENTS = 4;
const MAX_SEGMENT_VALUES = 16;

function stringList(v: JsonValue | null, path: string, out: Array<string>): Array<string> {
  const list = new Array<string>();
  if (v === null) { out.push(path + ": is required"); return list; }
  if (v.kind != JsonKind.Array) { out.push(path + ": must be an array"); return list; }
  for (let i = 0; i < v.items.length; i++) {
    const item = v.items[i];
    if (item.kind != JsonKind.String) out.push(path + "[" + i.toString() + "]: must be a string");
    else list.push(item.str);
  }
  return list;
}

function parseSegments(v: JsonValue, path: string, out: Array<string>): Array<SegmentConfig> {
  const list = new Array<SegmentConfig>();
  if (v.kind != JsonKind.Array) { out.push(path + ": must be an array"); return list; }
  if (v.items.length > MAX_SEGMENTS) { out.push(path + ": at most " + MAX_SEGMENTS.toString() + " dimensions"); return list; }
  for (let i = 0; i < v.items.length; i++) {
    const item = v.items[i];
    const p = path + "[" + i.toString() + "].";
    if (item.kind != JsonKind.Object) { out.push(p + ": must be an object"); continue; }
    const seg = new SegmentConfig();
    const name = stringField(item, "name", p, true, out);
    if (name !== null) {
      if (isStatToken(name)) seg.name = name;
      else out.push(p + "name: must be 1-32 of a-z 0-9 _ -");
    }
    seg.values = stringList(item.get("values"), p + "values", out);
    if (seg.values.length == 0 || seg.values.length > MAX_SEGMENT_VALUES) out.push(p + "values: must have 1.." + MAX_SEGMENT_VALUES.toString() + " entries");
    for (let j = 0; j < seg.values.length; j++) {
      if (!isStatToken(seg.values[j]) || seg.values[j] == "other") out.push(p + "values[" + j.toString() + "]: must be 1-32 of a-z 0-9 _ - and not 'other'");
    }
    const header = stringField(item, "header", p, false, out);
    const prefixes = item.get("prefixes");
    const bounds = item.get("bounds");
    const sources = (header !== null ? 1 : 0) + (prefixes !== null ? 1 : 0) + (bounds !== null ? 1 : 0);
    if (sources != 1) out.push(p + ": needs exactly one of header, prefixes, bounds");
    if (header !== null) {
      seg.kind = SEGMENT_HEADER;
      if (isLowerToken(header)) seg.header = header;
      else out.push(p + "header: must be a lowercase header name");
    } else if (prefixes !== null) {
      seg.kind = SEGMENT_PATH;
      seg.prefixes = stringList(prefixes, p + "prefixes", out);
      if (seg.prefixes.length != seg.values.length) out.push(p + "prefixes: must pair with values one to one");
    } else if (bounds !== null) {
      seg.kind = SEGMENT_SIZE;
      if (bounds.kind != JsonKind.Array) {
        out.push(p + "bounds: must be an array");
      } else {
        let boundsValid = bounds.items.length > 0;
        for (let j = 0; j < bounds.items.length; j++) {
          const b = bounds.items[j];
          if (b.kind != JsonKind.Number || !isFinite(b.num) || Math.floor(b.num) != b.num || b.num < 0 || (j > 0 && b.num <= <f64>seg.bounds[j - 1])) {
            out.push(p + "bounds[" + j.toString() + "]: must be an ascending non-negative integer");
            boundsValid = false;
            break;
          }
          seg.bounds.push(<i64>b.num);
        }
        if (bounds.items.length == 0) out.push(p + "bounds: must not be empty");
        // Only meaningful once the bounds themselves are right.
        if (boundsValid && seg.values.length != seg.bounds.length + 1) out.push(p + "values: a size dimension has one value per bound plus one above the last");
      }
    }
    for (let j = 0; j < list.length; j++) if (list[j].name == seg.name) out.push(p + "name: duplicate dimension " + seg.name);
    list.push(seg);
  }
  return list;
}

function parseRolloutList(v: JsonValue | null, path: string, out: Array<string>): Array<RolloutConfig> {
  const list = new Array<RolloutConfig>();
  if (v === null) {
    out.push(path + ": is required");
    return list;
  }
  if (v.kind != JsonKind.Array) {
    out.push(path + ": must be an array");
    return list;
  }
  for (let i = 0; i < v.items.length; i++) {
    const r = parseRollout(v.items[i], path + "[" + i.toString() + "]", out);
    if (r === null) continue;
    for (let j = 0; j < list.length; j++) {
      if (list[j].name == r.name) out.push(path + "[" + i.toString() + "].name: duplicate rollout " + r.name);
    }
    list.push(r);
  }
  return list;
}

/** The controller's answer: `{ epoch, version, rollouts: [...] }`. */
export function parseRolloutTable(text: string): ParseResult<RolloutTable> {
  const parsed = parseJson(text, 16);
  if (!parsed.ok) return new ParseResult<RolloutTable>(null, "not JSON: " + parsed.error + " at byte " + parsed.offset.toString());
  const root = parsed.value!;
  if (root.kind != JsonKind.Object) return new ParseResult<RolloutTable>(null, "must be a JSON object");
  const errors = new Array<string>();
  const table = new RolloutTable();
  const epoch = stringField(root, "epoch", "", false, errors);
  if (epoch !== null) table.epoch = epoch;
  const version = integerField(root, "version", "", 0, 9007199254740991, errors);
  if (isNaN(version)) {
    if (!root.has("version")) errors.push("version: is required");
  } else {
    table.version = <i64>version;
  }
  table.rollouts = parseRolloutList(root.get("rollouts"), "rollouts", errors);
  if (errors.length > 0) return new ParseResult<RolloutTable>(null, errors.join("; "));
  return new ParseResult<RolloutTable>(table, "");
}

/** The plugin configuration from Envoy; an empty string means all defaults and no controller. */
export function parsePluginConfig(text: string): ParseResult<PluginConfig> {
  const config = new PluginConfig();
  if (text.trim().length == 0) return new ParseResult<PluginConfig>(config, "");
  const parsed = parseJson(text, 16);
  if (!parsed.ok) return new ParseResult<PluginConfig>(null, "not JSON: " + parsed.error + " at byte " + parsed.offset.toString());
  const root = parsed.value!;
  if (root.kind != JsonKind.Object) return new ParseResult<PluginConfig>(null, "must be a JSON object");
  const errors = new Array<string>();
  rejectUnknownKeys(root, ["variantHeader", "responseVariantHeader", "controller", "rollouts", "headersStopIteration"], "", errors);
  const stopIteration = boolField(root, "headersStopIteration", "", errors);
  if (stopIteration !== null) config.headersStopIteration = stopIteration.bool;

  const variant = stringField(root, "variantHeader", "", false, errors);
  if (variant !== null) {
    if (isLowerToken(variant)) config.variantHeader = variant;
    else errors.push("variantHeader: must be a lowercase header name");
  }
  const responseVariant = stringField(root, "responseVariantHeader", "", false, errors);
  if (responseVariant !== null) {
    if (isLowerToken(responseVariant)) config.responseVariantHeader = responseVariant;
    else errors.push("responseVariantHeader: must be a lowercase header name");
  }

  const ctl = root.get("controller");
  if (ctl !== null) {
    if (ctl.kind != JsonKind.Object) {
      errors.push("controller: must be an object");
    } else {
      rejectUnknownKeys(ctl, ["cluster", "authority", "path", "pollWaitSeconds", "token"], "controller.", errors);
      const c = new ControllerConfig();
      const cluster = stringField(ctl, "cluster", "controller.", true, errors);
      if (cluster !== null) {
        if (cluster.length > 0) c.cluster = cluster;
        else errors.push("controller.cluster: must not be empty");
      }
      const authority = stringField(ctl, "authority", "controller.", true, errors);
      if (authority !== null) {
        if (authority.length > 0) c.authority = authority;
        else errors.push("controller.authority: must not be empty");
      }
      const path = stringField(ctl, "path", "controller.", false, errors);
      if (path !== null) {
        if (path.length > 0 && path.charCodeAt(0) == 0x2f && !path.includes("?")) c.path = path;
        else errors.push("controller.path: must start with '/' and have no query");
      }
      const wait = integerField(ctl, "pollWaitSeconds", "controller.", 1, 60, errors);
      if (!isNaN(wait)) c.pollWaitSeconds = <u32>wait;
      const token = stringField(ctl, "token", "controller.", false, errors);
      if (token !== null) {
        if (isTokenText(token)) c.token = token;
        else errors.push("controller.token: must be 1-256 printable ASCII characters without spaces");
      }
      config.controller = c;
    }
  }

  if (root.has("rollouts")) {
    const table = new RolloutTable();
    table.epoch = "static";
    table.rollouts = parseRolloutList(root.get("rollouts"), "rollouts", errors);
    config.staticRollouts = table;
  }
  if (errors.length > 0) return new ParseResult<PluginConfig>(null, errors.join("; "));
  return new ParseResult<PluginConfig>(config, "");
}

/** A bearer token goes into a header value as is: printable ASCII, no spaces, bounded. */
function isTokenText(token: string): bool {
  if (token.length == 0 || token.length > 256) return false;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}
