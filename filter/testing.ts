// Pure filter logic exported for unit tests through @assemblyscript/loader (build/filter-testing.wasm).
// Nothing here touches the host; Envoy runs build/filter.wasm (filter/main.ts).
import { parsePluginConfig, parseRolloutTable } from "./config";
import { parseJson, JsonKind } from "./json";
import { findModel, rewriteModel } from "./model-route";
import { judgeToolCall, parseTools, toolCallsOf } from "./tool-calls";
import { Problems } from "./config-fields";
import { OutputConfig } from "./config-model";
import { predictionText } from "./output";
import { classifyVersion, isCanaryMismatch, MODEL_NAMES, sameIdentityConfig, versionInDoc } from "./identity";
import { isCanary, matchRollout, stickyBucket } from "./routing";
import { parseContentLength, segmentValueIndex } from "./segments";
import { parseCompiledSchemaText } from "./schema";
import { validate, validateBody } from "./schema-validate";
import { streamKindOf, StreamReader } from "./llm-stream";
import { finishIndex } from "./llm-message";
import { REASON_NOT_JSON, REASON_TOO_DEEP, SCHEMA_RESULT_NAMES } from "./schema-results";

/** "" when the plugin config is accepted, else the error naming the field. */
export function pluginConfigError(text: string): string {
  const r = parsePluginConfig(text);
  return r.value === null ? r.error : "";
}

/** "ok <variantHeader> <controller cluster or -> <static rollout count or ->" or "error: ...". */
export function pluginConfigSummary(text: string): string {
  const r = parsePluginConfig(text);
  const c = r.value;
  if (c == null) return "error: " + r.error;
  const ctl = c.controller;
  const st = c.staticRollouts;
  return (
    "ok " +
    c.variantHeader +
    " " +
    (ctl === null ? "-" : ctl.cluster + "@" + ctl.authority + ctl.path + "/" + ctl.pollWaitSeconds.toString()) +
    " " +
    (st === null ? "-" : st.rollouts.length.toString())
  );
}

/** The static rollout table's version ("v<N>"), "-" without static rollouts, or "error: ...". */
export function staticTableVersion(text: string): string {
  const r = parsePluginConfig(text);
  const c = r.value;
  if (c == null) return "error: " + r.error;
  const st = c.staticRollouts;
  return st === null ? "-" : "v" + st.version.toString();
}

/** "v<version> <name>:<prefix>:<header>:<bp>,..." or "error: ...". */
export function rolloutTableSummary(text: string): string {
  const r = parseRolloutTable(text);
  const t = r.value;
  if (t == null) return "error: " + r.error;
  const parts = new Array<string>();
  for (let i = 0; i < t.rollouts.length; i++) {
    const x = t.rollouts[i];
    parts.push(x.name + ":" + x.pathPrefix + ":" + x.stickyHeader + ":" + x.canaryBasisPoints.toString());
  }
  return "v" + t.version.toString() + " " + t.epoch + " " + parts.join(",");
}

/** The name of the rollout the path matches under the given table, "" for none. */
export function matchedRollout(tableText: string, path: string): string {
  const r = parseRolloutTable(tableText);
  const t = r.value;
  if (t == null) return "error: " + r.error;
  const m = matchRollout(t.rollouts, path);
  return m === null ? "" : m.name;
}

export function bucketFor(rollout: string, key: string): u32 {
  return stickyBucket(rollout, key);
}

export function canaryAt(bucket: u32, basisPoints: u32): bool {
  return isCanary(bucket, basisPoints);
}

/** Buckets for keys "<prefix>0" .. "<prefix>{n-1}" in one call, so a test can hash 100k keys quickly. */
export function bucketHistogram(rollout: string, prefix: string, n: i32, bins: i32): Int32Array {
  const out = new Int32Array(bins);
  for (let i = 0; i < n; i++) {
    const b = stickyBucket(rollout, prefix + i.toString());
    out[<i32>((<u64>b * <u64>bins) / 10000)]++;
  }
  return out;
}

/** "kind" of a parsed JSON document or "error: ..." — exercises the parser on hostile input. */
export function jsonKind(text: string, maxDepth: i32): string {
  const r = parseJson(text, maxDepth);
  const v = r.value;
  if (v == null) return "error: " + r.error;
  const k = v.kind;
  if (k == JsonKind.Object) return "object";
  if (k == JsonKind.Array) return "array";
  if (k == JsonKind.String) return "string";
  if (k == JsonKind.Number) return "number";
  if (k == JsonKind.Bool) return "bool";
  return "null";
}

/** The segment value each dimension of the first rollout gives a request: "tier=pro,size=le_1024", or "error: ...". */
export function segmentValues(tableText: string, headerValue: string, path: string, contentLength: string): string {
  const r = parseRolloutTable(tableText);
  const t = r.value;
  if (t == null) return "error: " + r.error;
  if (t.rollouts.length == 0) return "error: no rollout";
  const segs = t.rollouts[0].segments;
  const parts = new Array<string>();
  for (let d = 0; d < segs.length; d++) {
    const k = segmentValueIndex(
      segs[d],
      headerValue == "<absent>" ? null : headerValue,
      path,
      parseContentLength(contentLength == "<absent>" ? null : contentLength),
    );
    parts.push(segs[d].name + "=" + (k < segs[d].values.length ? segs[d].values[k] : "other"));
  }
  return parts.join(",");
}

/** The value of a JSON number text as the parser reads it; NaN when the text is not a JSON number. */
export function jsonNumberValue(text: string): f64 {
  const r = parseJson(text, 1);
  const v = r.value;
  if (v == null || v.kind != JsonKind.Number) return NaN;
  return v.num;
}

/** "" when the compiled output schema is accepted, else the error naming the place. */
export function compiledSchemaError(compiledSchemaJson: string): string {
  return parseCompiledSchemaText(compiledSchemaJson).error;
}

/**
 * Validates a response body (bytes, as Envoy hands them over) against a compiled output schema:
 * "pass", "fail <reason> <pointer>", "not_json", "too_deep", or "schema_error: ...".
 */
export function validateDocumentBytes(compiledSchemaJson: string, body: ArrayBuffer, maxDepth: i32): string {
  const compiled = parseCompiledSchemaText(compiledSchemaJson);
  const schema = compiled.schema;
  if (schema === null) return "schema_error: " + compiled.error;
  const r = validateBody(schema, body, maxDepth);
  if (r.valid) return "pass";
  const reason = SCHEMA_RESULT_NAMES[r.result];
  if (r.result == REASON_NOT_JSON || r.result == REASON_TOO_DEEP) return reason;
  return "fail " + reason + " " + r.pointer;
}

/** validateDocumentBytes for text (UTF-8 encoded) and the data path's depth limit of 64. */
export function validateDocument(compiledSchemaJson: string, documentText: string): string {
  return validateDocumentBytes(compiledSchemaJson, String.UTF8.encode(documentText), 64);
}

/**
 * Model identity of the table's first rollout: the class ("stable", "canary", "other", "missing") of an answer
 * with this JSON body and this version header value ("" = no header); "none" without models; "error: ..." for a
 * table the filter refuses.
 */
export function identityOf(tableText: string, body: string, header: string): string {
  const r = parseRolloutTable(tableText);
  const t = r.value;
  if (t == null) return "error: " + r.error;
  if (t.rollouts.length == 0) return "error: no rollout";
  const models = t.rollouts[0].models;
  if (models === null) return "none";
  const version = models.header.length > 0 ? (header.length > 0 ? header : null) : versionInDoc(parseJson(body).value, models);
  return MODEL_NAMES[classifyVersion(models, version)] + (isCanaryMismatch(classifyVersion(models, version)) ? " mismatch" : "");
}

/** Whether a worker's identity fail-safe for the first rollout survives going from table a to table b. */
export function identityTripCarries(a: string, b: string): bool {
  const ra = parseRolloutTable(a).value;
  const rb = parseRolloutTable(b).value;
  if (ra === null || rb === null) return false;
  const x = ra.rollouts[0];
  const y = rb.rollouts[0];
  return sameIdentityConfig(x.models, y.models, x.canaryBasisPoints, y.canaryBasisPoints);
}

/** "<name>@<start>-<end>" of the body's top-level model string, or "none". */
export function modelOf(body: string): string {
  const span = findModel(String.UTF8.encode(body));
  return span === null ? "none" : span.name + "@" + span.start.toString() + "-" + span.end.toString();
}

/** The body with its model rewritten to `name`, or "none" when it has no model string. */
export function modelRewritten(body: string, name: string): string {
  const bytes = String.UTF8.encode(body);
  const span = findModel(bytes);
  return span === null ? "none" : String.UTF8.decode(rewriteModel(bytes, span, name));
}

/** Per tool call of an answer: "valid", "invalid_json", "schema_failed" or "unknown_tool", comma-separated; "error: ..." for bad tools. */
export function toolCallVerdicts(toolsJson: string, answer: string): string {
  const parsedTools = parseJson(toolsJson);
  const toolsDoc = parsedTools.value;
  if (toolsDoc === null) return "error: tools not JSON";
  const problems = new Problems(true);
  const tools = parseTools(toolsDoc, "tools.", problems);
  if (problems.count > 0) return "error: " + problems.join();
  const doc = parseJson(answer).value;
  if (doc === null) return "error: answer not JSON";
  const calls = toolCallsOf(doc);
  const names = ["valid", "invalid_json", "schema_failed", "unknown_tool"];
  const out = new Array<string>();
  for (let i = 0; i < calls.length; i++) out.push(names[judgeToolCall(calls[i], tools)]);
  return out.join(",");
}

/** The scalar at a dotted path (array parts by index), as predictionText tags it, or "none". */
export function predictionAt(path: string, answer: string): string {
  const doc = parseJson(answer).value;
  if (doc === null) return "none";
  const output = new OutputConfig();
  output.predictionField = path.split(".");
  const p = predictionText(doc, output);
  return p === null ? "none" : p;
}

/**
 * A streamed answer read by llm-stream.ts: `body` split before each byte offset in `splits` ("12,40"; "" = one
 * chunk), chunk i arriving (i + 1) ms after the request, kept text bounded by `limit`; with a compiled schema
 * ("" = none) the assembled message's verdict. Returns a JSON object text (test/unit/llm-stream.test.ts reads it).
 */
export function llmStream(kind: i32, body: ArrayBuffer, splits: string, limit: i32, compiledSchemaJson: string): string {
  const reader = new StreamReader(kind, limit);
  const offsets = new Array<i32>();
  if (splits.length > 0) {
    const parts = splits.split(",");
    for (let i = 0; i < parts.length; i++) offsets.push(I32.parseInt(parts[i]));
  }
  offsets.push(body.byteLength);
  const startNs: u64 = 1_000_000;
  let from = 0;
  for (let i = 0; i < offsets.length; i++) {
    const to = offsets[i];
    reader.feed(body.slice(from, to), startNs + <u64>(i + 1) * 1_000_000);
    from = to;
  }
  reader.end(startNs + <u64>(offsets.length + 1) * 1_000_000);
  const m = reader.message;
  const tools = new Array<string>();
  for (let i = 0; i < m.toolCalls.length; i++) {
    const c = m.toolCalls[i];
    tools.push('{"index":' + c.index.toString() + ',"id":' + quote(c.id) + ',"name":' + quote(c.name) + ',"arguments":' + quote(c.arguments()) + "}");
  }
  let verdict = "";
  if (compiledSchemaJson.length > 0) {
    const schema = parseCompiledSchemaText(compiledSchemaJson).schema;
    if (schema === null) verdict = "schema_error";
    else if (reader.malformed > 0) verdict = SCHEMA_RESULT_NAMES[REASON_NOT_JSON];
    else if (m.overflowed) verdict = "too_large";
    else verdict = SCHEMA_RESULT_NAMES[validate(schema, m.toDoc()).result];
  }
  return (
    '{"chunks":' +
    reader.chunks.toString() +
    ',"malformed":' +
    reader.malformed.toString() +
    ',"done":' +
    (reader.done ? "true" : "false") +
    ',"tokenChunks":' +
    reader.tokenChunks.toString() +
    ',"cutOff":' +
    (reader.cutOff ? "true" : "false") +
    ',"finish":' +
    quote(m.finishReason) +
    ',"finishIndex":' +
    finishIndex(m.finishReason).toString() +
    ',"ttftUs":' +
    reader.ttftUs(startNs).toString() +
    ',"tpotUs":' +
    reader.tpotUs().toString() +
    ',"model":' +
    quote(m.model) +
    ',"content":' +
    quote(m.content()) +
    ',"tools":[' +
    tools.join(",") +
    "]" +
    ',"promptTokens":' +
    (isNaN(m.promptTokens) ? "null" : m.promptTokens.toString()) +
    ',"completionTokens":' +
    (isNaN(m.completionTokens) ? "null" : m.completionTokens.toString()) +
    ',"overflowed":' +
    (m.overflowed ? "true" : "false") +
    ',"verdict":' +
    quote(verdict) +
    "}"
  );
}

/** The stream kind a content-type names: 0 none, 1 SSE, 2 NDJSON. */
export function llmStreamKind(contentType: string): i32 {
  return streamKindOf(contentType);
}

function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c < 0x20) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += String.fromCharCode(c);
  }
  return out + '"';
}
