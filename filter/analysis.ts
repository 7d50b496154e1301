// Output analysis on the data path, for the primary's answers and the shadow's alike: whether an answer can be
// read (decided from its headers), its schema verdict, and the counters of one parsed answer.
import { getHeader, HeaderMap, incrementMetric, recordMetric } from "./sdk/host";
import { noteGarbage } from "./sdk/dispatch";
import { OutputConfig } from "./config-model";
import { JsonKind, JsonParseResult, JsonValue, parseJsonBytes } from "./json";
import {
  confidenceMilli,
  flagAt,
  isAnalyzableStatus,
  isJsonContentType,
  labelIndex,
  numberAt,
  UNANALYZED_COMPRESSED,
  UNANALYZED_ERROR_STATUS,
  UNANALYZED_NO_BODY,
  UNANALYZED_NOT_JSON_CONTENT_TYPE,
  UNANALYZED_TOO_LARGE,
} from "./output";
import { validate } from "./schema-validate";
import { StreamReader } from "./llm-stream";
import { finishIndex } from "./llm-message";
import { REASON_NOT_JSON, REASON_TOO_DEEP } from "./schema-results";
import { parseContentLength } from "./segments";
import { VariantMetrics } from "./stats";
import { countToolCalls, ToolMetrics, toolCallsOf } from "./tool-calls";

/** unreadableReason: the answer can be read. */
export const READABLE: i32 = -1;
/** schemaVerdict: the rollout has no output schema. */
export const NO_SCHEMA: i32 = -1;

/** Answers nest at most this deep; deeper ones are too_deep. */
const MAX_ANSWER_DEPTH: i32 = 64;

/**
 * Why an answer cannot be read (UNANALYZED_*), or READABLE. Only a successful answer is a model output; an error
 * (Envoy's local replies included) counts as an error only. `size` is the body's size when known, or -1 to take it
 * from the content-length header (read only when the other checks pass).
 */
export function unreadableReason(status: i32, hasBody: bool, headers: HeaderMap, size: i64, limit: u32): i32 {
  if (!isAnalyzableStatus(status)) return UNANALYZED_ERROR_STATUS;
  if (!hasBody) return UNANALYZED_NO_BODY;
  if (getHeader(headers, "content-encoding") !== null) return UNANALYZED_COMPRESSED;
  if (!isJsonContentType(getHeader(headers, "content-type"))) return UNANALYZED_NOT_JSON_CONTENT_TYPE;
  const bytes = size >= 0 ? size : parseContentLength(getHeader(headers, "content-length"));
  if (bytes > <i64>limit) return UNANALYZED_TOO_LARGE;
  return READABLE;
}

/** Parses an answer once for everyone who reads it; the tree is garbage right after. */
export function parseAnswer(body: ArrayBuffer): JsonParseResult {
  const parsed = parseJsonBytes(body, MAX_ANSWER_DEPTH);
  // About what a parse tree of this body weighs (a value object, key strings and arrays per few bytes).
  noteGarbage(<usize>body.byteLength * 16);
  return parsed;
}

/** The answer's schema verdict: an index into SCHEMA_RESULT_NAMES, or NO_SCHEMA. */
export function schemaVerdict(output: OutputConfig, parsed: JsonParseResult): i32 {
  const schema = output.schema;
  if (schema === null) return NO_SCHEMA;
  const doc = parsed.value;
  if (doc === null) return parsed.tooDeep ? REASON_TOO_DEEP : REASON_NOT_JSON;
  return validate(schema, doc).result;
}

/** The schema verdict of a document the filter assembled (a streamed answer's message), or NO_SCHEMA. */
export function docVerdict(output: OutputConfig, doc: JsonValue): i32 {
  const schema = output.schema;
  return schema === null ? NO_SCHEMA : validate(schema, doc).result;
}

/** A streamed answer's own counts: chunks, cut off, malformed, TTFT from `startNs`, TPOT, finish reason. */
export function recordStream(slices: Array<VariantMetrics>, reader: StreamReader, startNs: u64): void {
  const ttft = reader.ttftUs(startNs);
  const tpot = reader.tpotUs();
  const finish = finishIndex(reader.message.finishReason);
  const cutOff = reader.cutOff;
  for (let i = 0; i < slices.length; i++) {
    const o = slices[i].output;
    if (o === null) continue;
    const m = o.stream;
    incrementMetric(m.streams);
    if (reader.chunks > 0) incrementMetric(m.chunks, reader.chunks);
    if (cutOff) incrementMetric(m.cutOff);
    if (reader.malformed > 0) incrementMetric(m.malformed);
    if (ttft >= 0) recordMetric(m.ttftUs, <u64>ttft);
    if (tpot >= 0) recordMetric(m.tpotUs, <u64>tpot);
    if (finish >= 0) incrementMetric(m.finish[finish]);
  }
}

/** A plain (not streamed) answer's finish reason, from choices[0].finish_reason when it has one; -1 otherwise. */
function plainFinish(doc: JsonValue): i32 {
  const choices = doc.get("choices");
  if (choices === null || choices.kind != JsonKind.Array || choices.items.length == 0) return -1;
  const finish = choices.items[0].get("finish_reason");
  return finish !== null && finish.kind == JsonKind.String ? finishIndex(finish.str) : -1;
}

/** Counted in every slice that has output metrics (all of a rollout's slices do when it analyzes answers, none otherwise). */
export function countUnanalyzed(slices: Array<VariantMetrics>, reason: i32): void {
  for (let i = 0; i < slices.length; i++) {
    const m = slices[i].output;
    if (m !== null) incrementMetric(m.unanalyzed[reason]);
  }
}

/** Schema verdict, label, confidence and LLM fields of one parsed answer (doc null: not JSON), counted in every slice. */
export function recordAnalysis(slices: Array<VariantMetrics>, output: OutputConfig, doc: JsonValue | null, verdict: i32, streamed: bool = false): void {
  const label = labelIndex(doc, output);
  let confidence: i64 = -1;
  let promptTokens: f64 = NaN;
  let completionTokens: f64 = NaN;
  let citation = false;
  let abstained = false;
  let fallback = false;
  if (doc !== null) {
    confidence = confidenceMilli(doc, output);
    promptTokens = numberAt(doc, output.promptTokensField);
    completionTokens = numberAt(doc, output.completionTokensField);
    citation = flagAt(doc, output.citationField);
    abstained = flagAt(doc, output.abstainedField);
    fallback = flagAt(doc, output.fallbackField);
  }
  // A stream's finish reason is counted with the stream (recordStream).
  const finish = doc !== null && !streamed ? plainFinish(doc) : -1;
  const isLlm = !isNaN(promptTokens) || !isNaN(completionTokens);
  for (let i = 0; i < slices.length; i++) {
    const m = slices[i].output;
    if (m === null) continue;
    if (verdict != NO_SCHEMA && verdict < m.schema.length) incrementMetric(m.schema[verdict]);
    incrementMetric(m.labels[label]);
    if (confidence >= 0) recordMetric(m.confidenceMilli, <u64>confidence);
    if (isLlm) incrementMetric(m.llmOutputs);
    if (!isNaN(promptTokens) && promptTokens >= 0) recordMetric(m.promptTokens, <u64>promptTokens);
    if (!isNaN(completionTokens) && completionTokens >= 0) recordMetric(m.completionTokens, <u64>completionTokens);
    if (citation) incrementMetric(m.citationPresent);
    if (abstained) incrementMetric(m.abstained);
    if (fallback) incrementMetric(m.fallbackUsed);
    if (finish >= 0) incrementMetric(m.stream.finish[finish]);
  }
  if (doc !== null && output.tools.length > 0) countToolCalls(toolCallsOf(doc), output.tools, toolMetricsOf(slices));
}

/** The tool metrics of the slices (null where a slice has none). */
export function toolMetricsOf(slices: Array<VariantMetrics>): Array<ToolMetrics | null> {
  const out = new Array<ToolMetrics | null>(slices.length);
  for (let i = 0; i < slices.length; i++) {
    const m = slices[i].output;
    out[i] = m !== null ? m.tools : null;
  }
  return out;
}
