// Parsing one rollout (and a list of them) into a RolloutConfig: the same shape from the controller's table and
// from the plugin configuration's static `rollouts`. Which of the two it is only changes whether unknown members
// are refused (Problems.strict, see config-fields.ts). A new field is one more read here and one more member of
// the class in config-model.ts.
import { JsonKind, JsonValue } from "./json";
import { parseCompiledSchemaText } from "./schema";
import { parseModels } from "./identity";
import { parseModelRoute } from "./model-route";
import { parseTools } from "./tool-calls";
import { isLowerToken, isRolloutName, isStatToken, objectAt, ObjectReader, Problems, stringListAt } from "./config-fields";
import { OutputConfig, RolloutConfig, SEGMENT_HEADER, SEGMENT_PATH, SEGMENT_SIZE, SegmentConfig, ShadowConfig } from "./config-model";

const MAX_SEGMENTS = 4;
const MAX_SEGMENT_VALUES = 16;

/** `rollouts`: an array of rollouts with distinct names; invalid entries are reported and left out. */
export function parseRolloutList(v: JsonValue | null, path: string, problems: Problems): Array<RolloutConfig> {
  const list = new Array<RolloutConfig>();
  if (v === null) {
    problems.add(path + ": is required");
    return list;
  }
  if (v.kind != JsonKind.Array) {
    problems.add(path + ": must be an array");
    return list;
  }
  for (let i = 0; i < v.items.length; i++) {
    const r = parseRollout(v.items[i], path + "[" + i.toString() + "]", problems);
    if (r === null) continue;
    for (let j = 0; j < list.length; j++) {
      if (list[j].name == r.name) problems.add(path + "[" + i.toString() + "].name: duplicate rollout " + r.name);
    }
    list.push(r);
  }
  return list;
}

function parseRollout(v: JsonValue, path: string, problems: Problems): RolloutConfig | null {
  const reader = objectAt(v, path + ".", problems, path);
  if (reader === null) return null;
  const before = problems.count;
  const r = new RolloutConfig();
  const name = reader.string("name", true);
  if (name !== null) {
    if (isRolloutName(name)) r.name = name;
    else reader.problem("name", "must be a DNS label (a-z, 0-9, '-', at most 63)");
  }
  const prefix = reader.string("pathPrefix", true);
  if (prefix !== null) {
    if (prefix.length > 0 && prefix.charCodeAt(0) == 0x2f) r.pathPrefix = prefix;
    else reader.problem("pathPrefix", "must start with '/'");
  }
  const sticky = reader.string("stickyHeader", true);
  if (sticky !== null) {
    if (isLowerToken(sticky)) r.stickyHeader = sticky;
    else reader.problem("stickyHeader", "must be a lowercase header name");
  }
  const bp = reader.integer("canaryBasisPoints", 0, 10000);
  if (!isNaN(bp)) r.canaryBasisPoints = <u32>bp;
  const segments = reader.get("segments");
  if (segments !== null) r.segments = parseSegments(segments, reader.path + "segments", problems);
  const shadow = reader.get("shadow");
  if (shadow !== null) r.shadow = parseShadow(shadow, reader.path + "shadow.", problems);
  const output = reader.get("output");
  if (output !== null) {
    const parsed = parseOutput(output, reader.path + "output.", problems);
    if (parsed !== null) r.output = parsed;
  }
  const models = reader.get("models");
  if (models !== null) r.models = parseModels(models, reader.path + "models.", problems);
  const model = reader.get("model");
  if (model !== null) r.model = parseModelRoute(model, reader.path + "model.", problems);
  reader.finish();
  return problems.count == before ? r : null;
}

function parseOutput(v: JsonValue, path: string, problems: Problems): OutputConfig | null {
  const reader = objectAt(v, path, problems);
  if (reader === null) return null;
  const o = new OutputConfig();
  o.analyze = reader.boolean("analyze", o.analyze);
  const maxBody = reader.integer("maxBodyBytes", 0, 16777216);
  if (!isNaN(maxBody)) o.maxBodyBytes = <u32>maxBody;
  o.predictionField = reader.fieldPath("predictionField", o.predictionField);
  o.confidenceField = reader.fieldPath("confidenceField", o.confidenceField);
  o.promptTokensField = reader.fieldPath("promptTokensField", o.promptTokensField);
  o.completionTokensField = reader.fieldPath("completionTokensField", o.completionTokensField);
  o.citationField = reader.optionalFieldPath("citationField");
  o.abstainedField = reader.optionalFieldPath("abstainedField");
  o.fallbackField = reader.optionalFieldPath("fallbackField");
  if (reader.has("labels")) {
    o.labels = reader.stringList("labels");
    if (o.labels.length > 32) reader.problem("labels", "at most 32");
    for (let i = 0; i < o.labels.length; i++) {
      if (!isStatToken(o.labels[i]) || o.labels[i] == "other" || o.labels[i] == "missing") {
        reader.problem("labels[" + i.toString() + "]", "must be 1-32 of a-z 0-9 _ - and not 'other' or 'missing'");
      }
    }
  }
  o.guard = reader.boolean("guard", o.guard);
  const guardCluster = reader.string("guardCluster", false);
  if (guardCluster !== null) {
    if (guardCluster.length > 0) o.guardCluster = guardCluster;
    else reader.problem("guardCluster", "must not be empty");
  }
  const guardTimeout = reader.integer("guardTimeoutMs", 1, 60000);
  if (!isNaN(guardTimeout)) o.guardTimeoutMs = <u32>guardTimeout;
  const schemaText = reader.string("schema", false);
  if (schemaText !== null) {
    const compiled = parseCompiledSchemaText(schemaText);
    if (compiled.ok) o.schema = compiled.schema;
    else reader.problem("schema", compiled.error);
  }
  if (o.guard && o.schema === null) reader.problem("guard", "needs a schema to judge answers by");
  const tools = reader.get("tools");
  if (tools !== null) o.tools = parseTools(tools, reader.path + "tools.", problems);
  reader.finish();
  return o;
}

function parseShadow(v: JsonValue, path: string, problems: Problems): ShadowConfig | null {
  const reader = objectAt(v, path, problems);
  if (reader === null) return null;
  const s = new ShadowConfig();
  const bp = reader.integer("basisPoints", 0, 10000);
  if (!isNaN(bp)) s.basisPoints = <u32>bp;
  const cluster = reader.string("cluster", false);
  if (cluster !== null) {
    if (cluster.length > 0) s.cluster = cluster;
    else reader.problem("cluster", "must not be empty");
  }
  // A timeout of 0 means "none" to Envoy: never allow it.
  const timeout = reader.integer("timeoutMs", 1, 60000);
  if (!isNaN(timeout)) s.timeoutMs = <u32>timeout;
  const maxBody = reader.integer("maxBodyBytes", 0, 16777216);
  if (!isNaN(maxBody)) s.maxBodyBytes = <u32>maxBody;
  const maxInFlight = reader.integer("maxInFlight", 1, 10000);
  if (!isNaN(maxInFlight)) s.maxInFlight = <u32>maxInFlight;
  const noise = reader.integer("noiseBasisPoints", 0, 10000);
  if (!isNaN(noise)) s.noiseBasisPoints = <u32>noise;
  const noiseCluster = reader.string("noiseCluster", false);
  if (noiseCluster !== null) {
    if (noiseCluster.length > 0) s.noiseCluster = noiseCluster;
    else reader.problem("noiseCluster", "must not be empty");
  }
  reader.finish();
  return s;
}

function parseSegments(v: JsonValue, path: string, problems: Problems): Array<SegmentConfig> {
  const list = new Array<SegmentConfig>();
  if (v.kind != JsonKind.Array) {
    problems.add(path + ": must be an array");
    return list;
  }
  if (v.items.length > MAX_SEGMENTS) {
    problems.add(path + ": at most " + MAX_SEGMENTS.toString() + " dimensions");
    return list;
  }
  for (let i = 0; i < v.items.length; i++) {
    const reader = objectAt(v.items[i], path + "[" + i.toString() + "].", problems);
    if (reader === null) continue;
    const seg = parseSegment(reader);
    for (let j = 0; j < list.length; j++) if (list[j].name == seg.name) reader.problem("name", "duplicate dimension " + seg.name);
    list.push(seg);
  }
  return list;
}

function parseSegment(reader: ObjectReader): SegmentConfig {
  const seg = new SegmentConfig();
  const p = reader.path;
  const problems = reader.problems;
  const name = reader.string("name", true);
  if (name !== null) {
    if (isStatToken(name)) seg.name = name;
    else reader.problem("name", "must be 1-32 of a-z 0-9 _ -");
  }
  seg.values = reader.stringList("values");
  if (seg.values.length == 0 || seg.values.length > MAX_SEGMENT_VALUES) reader.problem("values", "must have 1.." + MAX_SEGMENT_VALUES.toString() + " entries");
  for (let j = 0; j < seg.values.length; j++) {
    if (!isStatToken(seg.values[j]) || seg.values[j] == "other") reader.problem("values[" + j.toString() + "]", "must be 1-32 of a-z 0-9 _ - and not 'other'");
  }
  const header = reader.string("header", false);
  const prefixes = reader.get("prefixes");
  const bounds = reader.get("bounds");
  const sources = (header !== null ? 1 : 0) + (prefixes !== null ? 1 : 0) + (bounds !== null ? 1 : 0);
  if (sources != 1) problems.add(p + ": needs exactly one of header, prefixes, bounds");
  if (header !== null) {
    seg.kind = SEGMENT_HEADER;
    if (isLowerToken(header)) seg.header = header;
    else reader.problem("header", "must be a lowercase header name");
  } else if (prefixes !== null) {
    seg.kind = SEGMENT_PATH;
    seg.prefixes = stringListAt(prefixes, p + "prefixes", problems);
    if (seg.prefixes.length != seg.values.length) reader.problem("prefixes", "must pair with values one to one");
  } else if (bounds !== null) {
    seg.kind = SEGMENT_SIZE;
    parseBounds(reader, bounds, seg);
  }
  reader.finish();
  return seg;
}

function parseBounds(reader: ObjectReader, bounds: JsonValue, seg: SegmentConfig): void {
  if (bounds.kind != JsonKind.Array) {
    reader.problem("bounds", "must be an array");
    return;
  }
  let boundsValid = bounds.items.length > 0;
  for (let j = 0; j < bounds.items.length; j++) {
    const b = bounds.items[j];
    if (b.kind != JsonKind.Number || !isFinite(b.num) || Math.floor(b.num) != b.num || b.num < 0 || (j > 0 && b.num <= <f64>seg.bounds[j - 1])) {
      reader.problem("bounds[" + j.toString() + "]", "must be an ascending non-negative integer");
      boundsValid = false;
      break;
    }
    seg.bounds.push(<i64>b.num);
  }
  if (bounds.items.length == 0) reader.problem("bounds", "must not be empty");
  // Only meaningful once the bounds themselves are right.
  if (boundsValid && seg.values.length != seg.bounds.length + 1) reader.problem("values", "a size dimension has one value per bound plus one above the last");
}
