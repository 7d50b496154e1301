// The filter's stat names. One scheme; Envoy's stats_tags (deploy/envoy) turn the dotted parts into labels:
//   modelroll.rollout.<rollout>.variant.<variant>[.seg.<dimension>.<value>].requests
//   modelroll.rollout.<rollout>.variant.<variant>[.seg.<dimension>.<value>].class.<2xx|3xx|4xx|5xx|local>.responses
//   modelroll.rollout.<rollout>.variant.<variant>[.seg.<dimension>.<value>].latency_us   (histogram, microseconds)
//   modelroll.config.<updates|fetch_failures|rejected>                 (filter-wide)
//   modelroll.config.contexts, modelroll.config.version_sum, modelroll.config.slot.<k>.contexts   (gauges, below)
// Without the seg part a stat covers all of the variant's traffic; with it, one value of one dimension.
// Envoy stores them as wasmcustom.<name>; /stats/prometheus prints e.g.
//   modelroll_requests{modelroll_rollout="fraud-model",modelroll_variant="canary"} 42
import { addToGauge, defineMetric, incrementMetric, MetricType } from "./sdk/host";
import { OutputConfig, SegmentConfig, ShadowConfig } from "./config-model";
import { UNANALYZED_NAMES } from "./output";
import { IdentityMetrics } from "./identity";
import { SCHEMA_RESULT_NAMES } from "./schema-results";
import { ToolMetrics } from "./tool-calls";
import { ModelRouteMetrics } from "./model-route";
import { NoiseMetrics } from "./noise";
import { FINISH_NAMES } from "./llm-message";

export const VARIANT_STABLE: i32 = 0;
export const VARIANT_CANARY: i32 = 1;
export const VARIANT_NAMES: Array<string> = ["stable", "canary"];

export const CLASS_2XX: i32 = 0;
export const CLASS_3XX: i32 = 1;
export const CLASS_4XX: i32 = 2;
export const CLASS_5XX: i32 = 3;
export const CLASS_LOCAL: i32 = 4;
export const CLASS_NAMES: Array<string> = ["2xx", "3xx", "4xx", "5xx", "local"];

/** Status class of a response that came from the upstream; 1xx never reaches here as a final status. */
export function statusClass(status: i32): i32 {
  if (status >= 200 && status < 300) return CLASS_2XX;
  if (status >= 300 && status < 400) return CLASS_3XX;
  if (status >= 400 && status < 500) return CLASS_4XX;
  return CLASS_5XX;
}

/** The metric ids for one slice of traffic: a variant overall, or a variant within one segment value. */
export class VariantMetrics {
  requests: u32;
  responses: Array<u32> = new Array<u32>(5);
  latencyUs: u32;
  /** Defined only for rollouts that analyze answers. */
  output: OutputMetrics | null = null;
  constructor(base: string, output: OutputConfig | null = null) {
    if (output !== null && output.analyze) this.output = new OutputMetrics(base, output.labels, output.schema !== null, output.tools.length > 0);
    this.requests = defineMetric(MetricType.Counter, base + "requests");
    for (let c = 0; c < CLASS_NAMES.length; c++) {
      this.responses[c] = defineMetric(MetricType.Counter, base + "class." + CLASS_NAMES[c] + ".responses");
    }
    this.latencyUs = defineMetric(MetricType.Histogram, base + "latency_us");
  }
}

/**
 * Output analysis for one slice (a variant overall, a variant within one segment value, or the shadow):
 *   schema.<SCHEMA_RESULT_NAMES>.outputs   (schema-results.ts: valid, then each failure reason)
 *   unanalyzed.<too_large|not_json_content_type|compressed|no_body|error_status>.outputs   (error_status: not 2xx)
 *   label.<label|other|missing>.predictions, confidence_milli (histogram, thousandths)
 *   prompt_tokens, completion_tokens (histograms), llm_outputs, citation_present, abstained, fallback_used
 *   guard_replaced, guard_failed, guard_skipped, guard_unreadable, guard_release_failed   (canary output guard)
 *   streamed answers (StreamMetrics): streams, stream_chunks, stream_cut_off, stream_malformed, ttft_latency_us,
 *   tpot_latency_us (histograms, microseconds), finish_<stop|length|tool_calls|content_filter|other>
 */
export class OutputMetrics {
  schema: Array<u32> = [];
  unanalyzed: Array<u32> = [];
  labels: Array<u32> = [];
  confidenceMilli: u32;
  promptTokens: u32;
  completionTokens: u32;
  llmOutputs: u32;
  citationPresent: u32;
  abstained: u32;
  fallbackUsed: u32;
  /** Canary output guard: answers replaced by stable's, guard wanted but could not (fetch failed), not applicable. */
  guardReplaced: u32;
  guardFailed: u32;
  guardSkipped: u32;
  /** A held answer Envoy would not hand over: released unjudged. */
  guardUnreadable: u32;
  /** Stable's answer came back but the host refused to act for the held answer's stream (in Envoy: it was gone). */
  guardReleaseFailed: u32;
  /** Present when the rollout declares tools (tool-calls.ts). */
  tools: ToolMetrics | null = null;
  stream: StreamMetrics;
  constructor(base: string, labels: Array<string>, withSchema: bool, withTools: bool = false) {
    if (withTools) this.tools = new ToolMetrics(base);
    this.stream = new StreamMetrics(base);
    if (withSchema) {
      for (let i = 0; i < SCHEMA_RESULT_NAMES.length; i++)
        this.schema.push(defineMetric(MetricType.Counter, base + "schema." + SCHEMA_RESULT_NAMES[i] + ".outputs"));
    }
    for (let i = 0; i < UNANALYZED_NAMES.length; i++)
      this.unanalyzed.push(defineMetric(MetricType.Counter, base + "unanalyzed." + UNANALYZED_NAMES[i] + ".outputs"));
    for (let i = 0; i < labels.length; i++) this.labels.push(defineMetric(MetricType.Counter, base + "label." + labels[i] + ".predictions"));
    this.labels.push(defineMetric(MetricType.Counter, base + "label.other.predictions"));
    this.labels.push(defineMetric(MetricType.Counter, base + "label.missing.predictions"));
    this.confidenceMilli = defineMetric(MetricType.Histogram, base + "confidence_milli");
    this.promptTokens = defineMetric(MetricType.Histogram, base + "prompt_tokens");
    this.completionTokens = defineMetric(MetricType.Histogram, base + "completion_tokens");
    this.llmOutputs = defineMetric(MetricType.Counter, base + "llm_outputs");
    this.citationPresent = defineMetric(MetricType.Counter, base + "citation_present");
    this.abstained = defineMetric(MetricType.Counter, base + "abstained");
    this.fallbackUsed = defineMetric(MetricType.Counter, base + "fallback_used");
    this.guardReplaced = defineMetric(MetricType.Counter, base + "guard_replaced");
    this.guardFailed = defineMetric(MetricType.Counter, base + "guard_failed");
    this.guardSkipped = defineMetric(MetricType.Counter, base + "guard_skipped");
    this.guardUnreadable = defineMetric(MetricType.Counter, base + "guard_unreadable");
    this.guardReleaseFailed = defineMetric(MetricType.Counter, base + "guard_release_failed");
  }
}

/**
 * LLM answers (llm-stream.ts reads the streamed ones as they pass):
 *   streams            streamed answers read (SSE or NDJSON)
 *   stream_chunks      their chunks
 *   stream_cut_off     streams that ended without a finish reason, without [DONE] (SSE), or went away before the end
 *   stream_malformed   streams with a chunk that was not JSON of a chunk shape
 *   ttft_latency_us    request -> first chunk with content or a tool-call piece (histogram, microseconds; the
 *                      name ends in latency_us for the latency buckets)
 *   tpot_latency_us    per stream: first to last token over the tokens after the first (usage's
 *                      completion_tokens when given, else the chunks with tokens)
 *   finish_<reason>    answers by finish reason (streamed, and plain ones with choices[0].finish_reason)
 */
export class StreamMetrics {
  streams: u32;
  chunks: u32;
  cutOff: u32;
  malformed: u32;
  ttftUs: u32;
  tpotUs: u32;
  finish: Array<u32> = [];
  constructor(base: string) {
    this.streams = defineMetric(MetricType.Counter, base + "streams");
    this.chunks = defineMetric(MetricType.Counter, base + "stream_chunks");
    this.cutOff = defineMetric(MetricType.Counter, base + "stream_cut_off");
    this.malformed = defineMetric(MetricType.Counter, base + "stream_malformed");
    this.ttftUs = defineMetric(MetricType.Histogram, base + "ttft_latency_us");
    this.tpotUs = defineMetric(MetricType.Histogram, base + "tpot_latency_us");
    for (let i = 0; i < FINISH_NAMES.length; i++) this.finish.push(defineMetric(MetricType.Counter, base + "finish_" + FINISH_NAMES[i]));
  }
}

/**
 * Shadow traffic for one slice (overall or one segment value), under variant "shadow":
 *   requests, class.<c>.responses, latency_us   the mirrored calls and the shadow's answers (local = no answer);
 *                                               latency_us: request complete (call dispatched) -> whole answer in
 *   primary_latency_us                          the primary's answers to the same requests, timed the same way
 *                                               (request complete -> whole answer), for a like-for-like latency gate
 *   dropped, skipped_large_body                 requests not mirrored: in-flight cap, body over the limit
 *   host_refused                                requests not mirrored because a host call failed (the request's
 *                                               headers or body unreadable, or the call not makeable by the root)
 *   status_match | status_mismatch              primary and shadow status equal or not
 *   prediction_agree | prediction_disagree | prediction_missing
 *   confidence_delta_milli                      histogram of |primary - shadow| confidence, in thousandths
 *   incomplete                                  the client stream ended before the primary answer was complete
 */
export class ShadowMetrics {
  calls: VariantMetrics;
  dropped: u32;
  skippedLargeBody: u32;
  hostRefused: u32;
  statusMatch: u32;
  statusMismatch: u32;
  prediction: Array<u32> = new Array<u32>(3);
  confidenceDeltaMilli: u32;
  incomplete: u32;
  primaryLatencyUs: u32;
  /** Present when some mirrored requests are also sent to stable again (noise.ts). */
  noise: NoiseMetrics | null = null;
  constructor(base: string, output: OutputConfig, withNoise: bool = false) {
    if (withNoise) this.noise = new NoiseMetrics(base);
    this.calls = new VariantMetrics(base, output);
    this.primaryLatencyUs = defineMetric(MetricType.Histogram, base + "primary_latency_us");
    this.dropped = defineMetric(MetricType.Counter, base + "dropped");
    this.skippedLargeBody = defineMetric(MetricType.Counter, base + "skipped_large_body");
    this.hostRefused = defineMetric(MetricType.Counter, base + "host_refused");
    this.statusMatch = defineMetric(MetricType.Counter, base + "status_match");
    this.statusMismatch = defineMetric(MetricType.Counter, base + "status_mismatch");
    this.prediction[0] = defineMetric(MetricType.Counter, base + "prediction_agree");
    this.prediction[1] = defineMetric(MetricType.Counter, base + "prediction_disagree");
    this.prediction[2] = defineMetric(MetricType.Counter, base + "prediction_missing");
    this.confidenceDeltaMilli = defineMetric(MetricType.Histogram, base + "confidence_delta_milli");
    this.incomplete = defineMetric(MetricType.Counter, base + "incomplete");
  }
}

/**
 * All metric ids of a rollout: variants[v] overall, and segments[d][k][v] for dimension d, value index k
 * (the last k is "other"). Defined once per rollout config, never on the request path.
 */
export class RolloutMetrics {
  variants: Array<VariantMetrics> = new Array<VariantMetrics>(2);
  segments: Array<Array<Array<VariantMetrics>>> = [];
  /** Present when the rollout mirrors traffic: [0] overall, then one per (dimension, value) in slice order. */
  shadow: Array<ShadowMetrics> = [];
  shadowSegments: Array<Array<ShadowMetrics>> = [];
  /** Present when the rollout declares models with a version source (identity.ts). */
  identity: IdentityMetrics | null = null;
  /** Present when the rollout is matched by the request's model (model-route.ts). */
  modelRoute: ModelRouteMetrics | null = null;
  constructor(rollout: string, segments: Array<SegmentConfig>, shadow: ShadowConfig | null, output: OutputConfig, withIdentity: bool = false) {
    if (withIdentity) this.identity = new IdentityMetrics(rollout);
    for (let v = 0; v < 2; v++) {
      this.variants[v] = new VariantMetrics("modelroll.rollout." + rollout + ".variant." + VARIANT_NAMES[v] + ".", output);
    }
    for (let d = 0; d < segments.length; d++) {
      const seg = segments[d];
      const perValue = new Array<Array<VariantMetrics>>();
      for (let k = 0; k <= seg.values.length; k++) {
        const value = k < seg.values.length ? seg.values[k] : "other";
        const perVariant = new Array<VariantMetrics>(2);
        for (let v = 0; v < 2; v++) {
          perVariant[v] = new VariantMetrics("modelroll.rollout." + rollout + ".variant." + VARIANT_NAMES[v] + ".seg." + seg.name + "." + value + ".", output);
        }
        perValue.push(perVariant);
      }
      this.segments.push(perValue);
    }
    if (shadow !== null) this.defineShadow(rollout, segments, output, shadow.noiseBasisPoints > 0);
  }

  private defineShadow(rollout: string, segments: Array<SegmentConfig>, output: OutputConfig, noise: bool): void {
    this.shadow.push(new ShadowMetrics("modelroll.rollout." + rollout + ".variant.shadow.", output, noise));
    for (let d = 0; d < segments.length; d++) {
      const seg = segments[d];
      const perValue = new Array<ShadowMetrics>();
      for (let k = 0; k <= seg.values.length; k++) {
        const value = k < seg.values.length ? seg.values[k] : "other";
        perValue.push(new ShadowMetrics("modelroll.rollout." + rollout + ".variant.shadow.seg." + seg.name + "." + value + ".", output, noise));
      }
      this.shadowSegments.push(perValue);
    }
  }
}

/** Ring size of the version slots (metrics/envoy-series.ts CONFIG_VERSION_SLOTS must say the same). */
export const CONFIG_VERSION_SLOTS: i64 = 16;

/**
 * The config version each root context runs, so the controller can tell "every worker of this Envoy runs
 * version >= V". Envoy keeps ONE gauge per name for all the worker VMs of a plugin: a set() would be the last
 * writer's value and hide a lagging worker, so every VM only adds and subtracts its own part:
 *   modelroll.config.contexts              root contexts alive (+1 when it joins: at its first tick when it
 *                                          polls the controller, else when configured; -1 when deleted)
 *   modelroll.config.slot.<v mod 16>.contexts   root contexts running version v (moved on each new table)
 *   modelroll.config.version_sum           the sum of those versions
 * The controller knows the newest version C; a slot k then means the newest v <= C with v mod 16 = k, and the
 * sum proves it: it equals the decoded sum only when no context is 16 or more versions behind
 * (metrics/config-versions.ts). Contexts without a table yet are the contexts not in any slot. Bounded: 18
 * gauges per Envoy whatever the number of versions (a gauge per version would grow without end).
 */
export class FilterMetrics {
  configUpdates: u32 = defineMetric(MetricType.Counter, "modelroll.config.updates");
  configFetchFailures: u32 = defineMetric(MetricType.Counter, "modelroll.config.fetch_failures");
  configRejected: u32 = defineMetric(MetricType.Counter, "modelroll.config.rejected");
  configContexts: u32 = defineMetric(MetricType.Gauge, "modelroll.config.contexts");
  configVersionSum: u32 = defineMetric(MetricType.Gauge, "modelroll.config.version_sum");
  configSlots: Array<u32> = defineSlots();
}

function defineSlots(): Array<u32> {
  const out = new Array<u32>();
  for (let k: i64 = 0; k < CONFIG_VERSION_SLOTS; k++) out.push(defineMetric(MetricType.Gauge, "modelroll.config.slot." + k.toString() + ".contexts"));
  return out;
}

/**
 * One root context's part of the version gauges: counted once it joins (stats.ts FilterMetrics says when),
 * moved with each table it applies, removed when Envoy deletes it. A table applied before joining is
 * remembered and counted at the join.
 */
export class VersionReport {
  /** The version of the table in force; -1: none yet. */
  private version: i64 = -1;
  private joined: bool = false;
  constructor(private metrics: FilterMetrics) {}

  join(): void {
    if (this.joined) return;
    this.joined = true;
    addToGauge(this.metrics.configContexts, 1);
    this.add(this.version, 1);
  }

  runs(version: i64): void {
    if (version == this.version || version < 0) return;
    if (this.joined) this.add(this.version, -1);
    this.version = version;
    if (this.joined) this.add(version, 1);
  }

  leave(): void {
    if (!this.joined) return;
    this.joined = false;
    this.add(this.version, -1);
    addToGauge(this.metrics.configContexts, -1);
  }

  /** sign +1: count the context at version v; -1: take it away. Nothing for "no table". */
  private add(v: i64, sign: i64): void {
    if (v < 0) return;
    addToGauge(this.metrics.configSlots[<i32>(v % CONFIG_VERSION_SLOTS)], sign);
    addToGauge(this.metrics.configVersionSum, sign * v);
  }
}

/**
 * Adds one to a counter in every slice of a request (its variant overall, then one per segment value). `id` names
 * the counter: it returns that counter's metric id in a slice, e.g. `(m: ShadowMetrics): u32 => m.dropped`.
 */
export function countEach<T>(slices: Array<T>, id: (slice: T) => u32): void {
  for (let i = 0; i < slices.length; i++) incrementMetric(id(slices[i]));
}

/** The output metrics of the slices; empty when the rollout does not analyze answers (none are defined then). */
export function outputMetricsOf(slices: Array<VariantMetrics>): Array<OutputMetrics> {
  const out = new Array<OutputMetrics>();
  for (let i = 0; i < slices.length; i++) {
    const m = slices[i].output;
    if (m !== null) out.push(m);
  }
  return out;
}
