// The HTTP filter: the root context owns the configs and the controller long-poll; each stream gets
// only the rollout it matched, its variant and its start time.
import {
  Buffer, continueResponse, getBuffer, getHeader, getHeaderPairs, getProperty, httpCall, HeaderMap, HeaderPairs,
  incrementMetric, log, LogLevel, nowNanos, recordMetric, removeHeader, replaceHeader, setBuffer, setEffectiveContext,
  setTickPeriodMs,
} from "./sdk/host";
import { DataStatus, findStream, HeadersStatus, noteGarbage, RootContextBase, StreamContextBase } from "./sdk/dispatch";
import { AnswerSummary, BodyCopy, confidenceDeltaMilli, predictionOutcome, summarizeAnswer } from "./shadow";
import {
  confidenceMilli, flagAt, isAnalyzableStatus, isJsonContentType, labelIndex, numberAt, UNANALYZED_COMPRESSED,
  UNANALYZED_ERROR_STATUS, UNANALYZED_NO_BODY, UNANALYZED_NOT_JSON_CONTENT_TYPE, UNANALYZED_TOO_LARGE,
} from "./output";
import { JsonValue, parseJsonBytes } from "./json";
import { validate } from "./schema-validate";
import {
  OutputConfig, parsePluginConfig, parseRolloutTable, PluginConfig, RolloutConfig, RolloutTable, SEGMENT_HEADER, SEGMENT_SIZE,
  ShadowConfig,
} from "./config";
import { isCanary, matchRollout, RandomBuckets, stickyBucket } from "./routing";
import { classifyVersion, isCanaryMismatch, MODEL_NAMES, sameIdentityConfig, versionInDoc } from "./identity";
import { parseContentLength, segmentValueIndex } from "./segments";
import {
  CLASS_LOCAL, FilterMetrics, RolloutMetrics, SCHEMA_RESULT_NAMES, ShadowMetrics, statusClass, VARIANT_CANARY, VARIANT_NAMES,
  VARIANT_STABLE, VariantMetrics,
} from "./stats";

const TICK_MS: u32 = 100;
const BACKOFF_MIN_MS: u64 = 250;
const BACKOFF_MAX_MS: u64 = 5000;
const MS: u64 = 1_000_000;

/** A rollout as the data path uses it: its config plus its metric ids, defined once. */
export class ActiveRollout {
  /** Identity fail-safe: this worker saw the canary answer another model; its canary share goes to stable. */
  tripped: bool = false;
  constructor(public config: RolloutConfig, public metrics: RolloutMetrics) {}
}

/** The rollouts in force, with their configs in a parallel array for matching without allocation per request. */
class ActiveSet {
  rollouts: Array<ActiveRollout> = [];
  configs: Array<RolloutConfig> = [];

  find(path: string): ActiveRollout | null {
    const match = matchRollout(this.configs, path);
    if (match === null) return null;
    for (let i = 0; i < this.rollouts.length; i++) if (this.rollouts[i].config === match) return this.rollouts[i];
    return null;
  }
}

// Metric ids belong to the VM, not to one root context: Envoy keeps every definition for the VM's lifetime, and
// each pluginConfig change (Istio's ECDS push) configures a new root on the same VM. Defining the metrics again
// per root added Envoy-side entries on every update (measured with bench/ecds-memory.ts).
const vmRolloutMetrics = new Map<string, RolloutMetrics>();
let vmFilterMetrics: FilterMetrics | null = null;

function filterMetricsOfVm(): FilterMetrics {
  let m = vmFilterMetrics;
  if (m === null) {
    m = new FilterMetrics();
    vmFilterMetrics = m;
  }
  return m;
}

export class ModelrollRoot extends RootContextBase {
  plugin: PluginConfig = new PluginConfig();
  // No config yet means no rollout matches, so every request goes to stable.
  active: ActiveSet = new ActiveSet();
  table: RolloutTable | null = null;
  metricsByRollout: Map<string, RolloutMetrics> = vmRolloutMetrics;
  filterMetrics: FilterMetrics | null = null;
  random: RandomBuckets = new RandomBuckets(0);

  pollToken: u32 = 0;
  nextPollAtNs: u64 = 0;
  backoffMs: u64 = BACKOFF_MIN_MS;

  /** Mirrored calls in flight on this worker, by call token. */
  shadowCalls: Map<u32, ShadowExchange> = new Map();
  /** Output-guard calls in flight: token -> the id of the stream whose answer they may replace. */
  guardCalls: Map<u32, u32> = new Map();

  onConfigure(size: u32): bool {
    let text = "";
    if (size > 0) {
      const bytes = getBuffer(Buffer.PluginConfiguration, 0, size);
      if (bytes === null) {
        log(LogLevel.Error, "modelroll: could not read the plugin configuration; refusing it");
        return false;
      }
      text = String.UTF8.decode(bytes);
    }
    const parsed = parsePluginConfig(text);
    if (parsed.value === null) {
      log(LogLevel.Error, "modelroll: plugin configuration refused: " + parsed.error);
      return false;
    }
    this.plugin = parsed.value!;
    this.filterMetrics = filterMetricsOfVm();
    this.random = new RandomBuckets(nowNanos() ^ (<u64>this.id << 32));
    const staticTable = this.plugin.staticRollouts;
    if (staticTable !== null) this.apply(staticTable);
    if (this.plugin.controller !== null) {
      // Fail-open: without a tick the filter still routes with the static/last config, it just never updates.
      if (!setTickPeriodMs(TICK_MS)) log(LogLevel.Error, "modelroll: could not set the tick period; config will not update");
      this.startPoll();
    }
    return true;
  }

  apply(table: RolloutTable): void {
    const next = new ActiveSet();
    for (let i = 0; i < table.rollouts.length; i++) {
      const r = table.rollouts[i];
      // Metrics are defined when a rollout (or its set of segments) first appears, never on the request path.
      const key = metricsKey(r);
      if (!this.metricsByRollout.has(key)) this.metricsByRollout.set(key, new RolloutMetrics(r.name, r.segments, r.shadow !== null, r.output, r.models !== null));
      next.rollouts.push(new ActiveRollout(r, this.metricsByRollout.get(key)));
      next.configs.push(r);
    }
    carryIdentityTrips(this.active, next);
    this.active = next;
    this.table = table;
  }

  onTick(): void {
    if (this.plugin.controller === null || this.pollToken != 0) return;
    if (nowNanos() >= this.nextPollAtNs) this.startPoll();
  }

  startPoll(): void {
    const ctl = this.plugin.controller!;
    let path = ctl.path + "?wait=" + ctl.pollWaitSeconds.toString();
    const table = this.table;
    if (table !== null && table.epoch != "static") {
      path += "&version=" + table.version.toString() + "&epoch=" + table.epoch;
    }
    const names: string[] = [":method", ":path", ":authority", "accept"];
    const values: string[] = ["GET", path, ctl.authority, "application/json"];
    if (ctl.token.length > 0) {
      names.push("authorization");
      values.push("Bearer " + ctl.token);
    }
    const token = httpCall(ctl.cluster, names, values, null, (ctl.pollWaitSeconds + 5) * 1000);
    if (token == 0) {
      this.pollFailed("Envoy refused the call to cluster " + ctl.cluster);
      return;
    }
    this.pollToken = token;
  }

  pollFailed(reason: string): void {
    this.pollToken = 0;
    const m = this.filterMetrics;
    if (m !== null) incrementMetric(m.configFetchFailures);
    log(LogLevel.Debug, "modelroll: config fetch failed (" + reason + "); keeping the last config, retry in " + this.backoffMs.toString() + " ms");
    this.nextPollAtNs = nowNanos() + this.backoffMs * MS;
    this.backoffMs = this.backoffMs * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : this.backoffMs * 2;
  }

  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
    if (this.shadowCalls.has(token)) {
      const exchange = this.shadowCalls.get(token);
      this.shadowCalls.delete(token);
      exchange.shadowAnswered(headerCount, bodySize);
      return;
    }
    if (this.guardCalls.has(token)) {
      const streamId = this.guardCalls.get(token);
      this.guardCalls.delete(token);
      const stream = findStream(streamId);
      // The client may be gone: then there is no answer to replace and nothing may touch the stream.
      if (stream === null || !setEffectiveContext(streamId)) return;
      stream.onHttpCallResponse(token, headerCount, bodySize, trailerCount);
      setEffectiveContext(this.id);
      return;
    }
    if (token != this.pollToken) return;
    this.pollToken = 0;
    // Envoy reports a failed call (reset, timeout, no upstream) as a response without headers.
    if (headerCount == 0) { this.pollFailed("no response"); return; }
    const status = getHeader(HeaderMap.HttpCallResponseHeaders, ":status");
    if (status === null) { this.pollFailed("no status"); return; }
    if (status == "304") {
      this.backoffMs = BACKOFF_MIN_MS;
      this.startPoll();
      return;
    }
    if (status == "401" || status == "403") {
      // A wrong or missing filter token never fixes itself: say so where operators look.
      log(LogLevel.Error, "modelroll: the controller refused the filter's token (status " + status + "); keeping the last config");
    }
    if (status != "200") { this.pollFailed("status " + status); return; }
    const body = getBuffer(Buffer.HttpCallResponseBody, 0, bodySize);
    if (body === null) { this.pollFailed("unreadable body"); return; }
    const parsed = parseRolloutTable(String.UTF8.decode(body));
    if (parsed.value === null) {
      const m = this.filterMetrics;
      if (m !== null) incrementMetric(m.configRejected);
      log(LogLevel.Error, "modelroll: controller config refused, keeping the last good one: " + parsed.error);
      this.pollFailed("invalid config");
      return;
    }
    const table = parsed.value!;
    const current = this.table;
    if (current === null || current.epoch != table.epoch || current.version != table.version) {
      this.apply(table);
      const m = this.filterMetrics;
      if (m !== null) incrementMetric(m.configUpdates);
      log(LogLevel.Info, "modelroll: config version " + table.version.toString() + " applied (" + table.rollouts.length.toString() + " rollouts)");
    }
    this.backoffMs = BACKOFF_MIN_MS;
    this.startPoll();
  }

  createStream(id: u32): StreamContextBase {
    return new ModelrollStream(id, this);
  }
}

export class ModelrollStream extends StreamContextBase {
  rollout: ActiveRollout | null = null;
  variant: i32 = VARIANT_STABLE;
  startNs: u64 = 0;
  /** Where this request is counted: the variant overall, then its value in each segment dimension. */
  slices: Array<VariantMetrics> = [];
  /** Segment value index per dimension (the last index of a dimension is "other"). */
  segmentIndexes: Array<i32> = [];
  /** The request, copied as it passes, when a shadow call or the output guard may need to send it again. */
  requestCopy: RequestCopy | null = null;
  /** Set when this request is to be mirrored once its copy is complete. */
  shadowPending: ShadowPending | null = null;
  /** Canary output guard: wanted for this request; holding the answer; the call fetching stable's answer. */
  guardWanted: bool = false;
  guardHeld: bool = false;
  guardToken: u32 = 0;
  guardBufferedBytes: u32 = 0;
  /** The mirrored call this stream's primary answer is compared with. */
  exchange: ShadowExchange | null = null;
  /** The primary answer being copied (as it passes, never held) for analysis and/or the shadow comparison. */
  responseCopy: BodyCopy | null = null;
  /** The answer is not read, but the exchange still waits for its end: the paired latency is timed to it. */
  exchangeAwaitsEnd: bool = false;
  analyzing: bool = false;
  /** The rollout whose answer is being read (kept after onResponseHeaders clears `rollout`). */
  analyzedRollout: ActiveRollout | null = null;
  /** Set while the answer's version is still to be read from its body (identity.ts). */
  identityRollout: ActiveRollout | null = null;

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const root = changetype<ModelrollRoot>(this.root);
    const variantHeader = root.plugin.variantHeader;
    const path = getHeader(HeaderMap.RequestHeaders, ":path");
    let found: ActiveRollout | null = null;
    if (path !== null) found = root.active.find(path);
    if (found === null) {
      // Not ours: a client-sent variant header must not pick the canary route.
      removeHeader(HeaderMap.RequestHeaders, variantHeader);
      return HeadersStatus.Continue;
    }
    const rollout = changetype<ActiveRollout>(found);
    const key = getHeader(HeaderMap.RequestHeaders, rollout.config.stickyHeader);
    const bucket = key === null || key.length == 0 ? root.random.next() : stickyBucket(rollout.config.name, key);
    this.variant = isCanary(bucket, rollout.config.canaryBasisPoints) ? VARIANT_CANARY : VARIANT_STABLE;
    if (this.variant == VARIANT_CANARY && rollout.tripped) this.variant = identityFailsafe(rollout);
    // Changing a request header makes Envoy re-pick the route (ABI 0.2.1), so this decides the cluster.
    if (!replaceHeader(HeaderMap.RequestHeaders, variantHeader, VARIANT_NAMES[this.variant])) {
      // Fail-safe: if we cannot set our header, make sure no client value remains and count it as stable.
      removeHeader(HeaderMap.RequestHeaders, variantHeader);
      this.variant = VARIANT_STABLE;
    }
    this.rollout = rollout;
    this.startNs = nowNanos();
    this.segmentIndexes = segmentIndexesFor(rollout.config, path!);
    this.slices = variantSlices(rollout, this.variant, this.segmentIndexes);
    for (let i = 0; i < this.slices.length; i++) incrementMetric(this.slices[i].requests);
    const shadow = rollout.config.shadow;
    if (shadow !== null && shadow.basisPoints > 0) {
      const shadowBucket = key === null || key.length == 0 ? root.random.next() : stickyBucket(rollout.config.name + "#shadow", key);
      if (isCanary(shadowBucket, shadow.basisPoints)) {
        const slices = shadowSlices(rollout, this.segmentIndexes);
        if (<u32>root.shadowCalls.size >= shadow.maxInFlight) countAll(slices, SHADOW_DROPPED);
        else this.shadowPending = new ShadowPending(rollout, shadow, slices);
      }
    }
    const output = rollout.config.output;
    this.guardWanted = this.variant == VARIANT_CANARY && output.guard;
    if (this.guardWanted && !root.plugin.headersStopIteration) {
      // Holding headers would stall the stream on this host: never do it, count it.
      this.guardWanted = false;
      this.countGuard(GUARD_SKIPPED);
    }
    const pending = this.shadowPending;
    if (pending !== null || this.guardWanted) {
      const pairs = getHeaderPairs(HeaderMap.RequestHeaders);
      if (pairs === null) {
        // Fail-open: the request goes on, unmirrored and unguarded.
        this.shadowPending = null;
        return HeadersStatus.Continue;
      }
      let limit = this.guardWanted ? output.maxBodyBytes : 0;
      if (pending !== null && pending.config.maxBodyBytes > limit) limit = pending.config.maxBodyBytes;
      this.requestCopy = new RequestCopy(pairs, root.plugin.variantHeader, path!, <i32>limit);
      if (endOfStream) this.requestComplete(root);
    }
    return HeadersStatus.Continue;
  }

  requestComplete(root: ModelrollRoot): void {
    const copy = this.requestCopy!;
    copy.complete = true;
    const pending = this.shadowPending;
    if (pending === null) return;
    this.shadowPending = null;
    if (<u32>copy.body.size > pending.config.maxBodyBytes) countAll(pending.slices, SHADOW_SKIPPED_LARGE_BODY);
    else this.dispatchShadow(root, copy, pending);
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataStatus {
    const copy = this.requestCopy;
    if (copy === null || copy.complete) return DataStatus.Continue;
    // The request is never held: each chunk is copied as it passes.
    if (bodySize > 0) {
      const chunk = getBuffer(Buffer.HttpRequestBody, 0, bodySize);
      if (chunk === null) {
        this.requestCopy = null;
        this.shadowPending = null;
        return DataStatus.Continue;
      }
      copy.body.add(chunk);
    }
    if (copy.body.overflowed) {
      const pending = this.shadowPending;
      if (pending !== null) countAll(pending.slices, SHADOW_SKIPPED_LARGE_BODY);
      this.shadowPending = null;
      this.requestCopy = null; // the guard cannot send it again either
      return DataStatus.Continue;
    }
    if (endOfStream) this.requestComplete(changetype<ModelrollRoot>(this.root));
    return DataStatus.Continue;
  }

  dispatchShadow(root: ModelrollRoot, copy: RequestCopy, pending: ShadowPending): void {
    if (<u32>root.shadowCalls.size >= pending.config.maxInFlight) {
      countAll(pending.slices, SHADOW_DROPPED);
      return;
    }
    const names = copy.callHeaderNames("x-modelroll-shadow");
    const values = copy.callHeaderValues(pending.rollout.config.name);
    const body = copy.body.size > 0 ? copy.body.join() : null;
    // The call must belong to the root context so that it outlives this stream.
    if (!setEffectiveContext(root.id)) return;
    const token = httpCall(pending.config.cluster, names, values, body, pending.config.timeoutMs);
    setEffectiveContext(this.id);
    const exchange = new ShadowExchange(pending.config, pending.rollout.config.output, pending.slices, nowNanos());
    for (let i = 0; i < pending.slices.length; i++) incrementMetric(pending.slices[i].calls.requests);
    if (token == 0) {
      // Envoy refused (unknown cluster...): an answer-less shadow, counted as such.
      exchange.shadowAnswered(0, 0);
      return;
    }
    root.shadowCalls.set(token, exchange);
    this.exchange = exchange;
  }

  onResponseBody(bodySize: u32, endOfStream: bool): DataStatus {
    if (this.guardHeld) return this.guardedResponseBody(bodySize, endOfStream);
    if (this.exchangeAwaitsEnd) {
      if (endOfStream) this.primaryAnswerEnded(true);
      return DataStatus.Continue;
    }
    const copy = this.responseCopy;
    if (copy === null) return DataStatus.Continue;
    if (bodySize > 0 && !copy.overflowed) {
      const chunk = getBuffer(Buffer.HttpResponseBody, 0, bodySize);
      if (chunk !== null) copy.add(chunk);
    }
    if (!endOfStream) return DataStatus.Continue;
    this.responseCopy = null;
    const output = this.outputConfig();
    const exchange = this.exchange;
    if (copy.overflowed) {
      this.versionUnread();
      if (this.analyzing) countUnanalyzed(this.slices, UNANALYZED_TOO_LARGE);
      if (exchange !== null) exchange.primaryAnswered();
      return DataStatus.Continue;
    }
    this.readAnswer(copy.join(), output);
    return DataStatus.Continue;
  }

  /** Parses a complete answer once: analysis counters and the shadow comparison. Returns the schema verdict index (-1: no schema). */
  readAnswer(body: ArrayBuffer, output: OutputConfig): i32 {
    const parsed = parseJsonBytes(body, 64);
    noteGarbage(parseGarbageEstimate(body));
    const doc = parsed.value;
    const identity = this.identityRollout;
    if (identity !== null) {
      this.identityRollout = null;
      const models = identity.config.models;
      if (models !== null) noteVersion(identity, this.variant, versionInDoc(doc, models));
    }
    const verdict = output.schema !== null ? schemaResultIndex(output, doc, parsed.tooDeep) : -1;
    if (this.analyzing) recordAnalysis(this.slices, output, doc, verdict);
    const exchange = this.exchange;
    if (exchange !== null) {
      summarizeAnswer(doc, output, exchange.primary);
      exchange.primaryAnswered();
    }
    return verdict;
  }

  /** The canary's answer is held until complete; a schema failure sends the request to stable instead. */
  guardedResponseBody(bodySize: u32, endOfStream: bool): DataStatus {
    const output = this.outputConfig();
    if (bodySize > guardHoldLimit(output)) {
      // Too big to hold: release what is buffered and let the rest stream. Staying under the limit keeps
      // Envoy's own buffer limit (1 MiB by default, a 500 when exceeded) out of reach.
      this.guardHeld = false;
      this.countGuard(GUARD_SKIPPED);
      this.versionUnread();
      if (this.analyzing) countUnanalyzed(this.slices, UNANALYZED_TOO_LARGE);
      this.primaryAnswerEnded(endOfStream);
      return DataStatus.Continue;
    }
    if (!endOfStream) return DataStatus.StopIterationAndBuffer;
    this.guardHeld = false;
    // While buffering, the buffer holds the whole answer so far.
    const body = getBuffer(Buffer.HttpResponseBody, 0, bodySize);
    if (body === null) {
      // Fail-open: the answer goes out unread and unguarded; the comparison sees it without a prediction.
      this.primaryAnswerEnded(true);
      return DataStatus.Continue;
    }
    const verdict = this.readAnswer(body, output);
    if (verdict == 0) return DataStatus.Continue;
    const copy = this.requestCopy!;
    const names = copy.callHeaderNames("x-modelroll-guard");
    const values = copy.callHeaderValues("refetch");
    const token = httpCall(output.guardCluster, names, values, copy.body.size > 0 ? copy.body.join() : null, output.guardTimeoutMs);
    if (token == 0) {
      this.countGuard(GUARD_FAILED);
      return DataStatus.Continue;
    }
    this.guardToken = token;
    this.guardBufferedBytes = bodySize;
    changetype<ModelrollRoot>(this.root).guardCalls.set(token, this.id);
    return DataStatus.StopIterationAndBuffer;
  }

  /** Stable's answer for a guarded request: it replaces the canary's, or (no answer) the canary's goes out. */
  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
    if (token != this.guardToken) return;
    this.guardToken = 0;
    let status: string | null = null;
    let body: ArrayBuffer | null = null;
    if (headerCount > 0) status = getHeader(HeaderMap.HttpCallResponseHeaders, ":status");
    // Only a successful stable answer is a better answer; Envoy reports a refused connection as its own 503.
    if (status !== null && !changetype<string>(status).startsWith("2")) status = null;
    if (status !== null) body = getBuffer(Buffer.HttpCallResponseBody, 0, bodySize);
    if (status === null || body === null || !setBuffer(Buffer.HttpResponseBody, 0, this.guardBufferedBytes, changetype<ArrayBuffer>(body))) {
      this.countGuard(GUARD_FAILED);
      continueResponse();
      return;
    }
    replaceHeader(HeaderMap.ResponseHeaders, ":status", changetype<string>(status));
    replaceHeader(HeaderMap.ResponseHeaders, "content-length", changetype<ArrayBuffer>(body).byteLength.toString());
    const contentType = getHeader(HeaderMap.HttpCallResponseHeaders, "content-type");
    if (contentType !== null) replaceHeader(HeaderMap.ResponseHeaders, "content-type", contentType!);
    replaceHeader(HeaderMap.ResponseHeaders, "x-modelroll-guard", "replaced");
    this.countGuard(GUARD_REPLACED);
    continueResponse();
  }

  /** The answer's version could not be read from its body: counted as missing. */
  versionUnread(): void {
    const identity = this.identityRollout;
    if (identity === null) return;
    this.identityRollout = null;
    noteVersion(identity, this.variant, null);
  }

  countGuard(what: i32): void {
    for (let i = 0; i < this.slices.length; i++) {
      const m = this.slices[i].output;
      if (m !== null) incrementMetric(what == GUARD_REPLACED ? m.guardReplaced : what == GUARD_FAILED ? m.guardFailed : m.guardSkipped);
    }
  }

  outputConfig(): OutputConfig {
    return this.analyzedRollout !== null ? this.analyzedRollout!.config.output : new OutputConfig();
  }

  /**
   * The exchange learns the primary's answer is complete (nothing read from it) at the answer's end, so that
   * the primary is timed to the same event as the shadow call; until then it waits for the last chunk.
   */
  primaryAnswerEnded(endOfStream: bool): void {
    const exchange = this.exchange;
    if (exchange === null) return;
    this.exchangeAwaitsEnd = !endOfStream;
    if (endOfStream) exchange.primaryAnswered();
  }

  onDelete(): void {
    const exchange = this.exchange;
    if (exchange !== null && !exchange.primary.done) exchange.primaryAbandoned();
    this.exchange = null;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const rollout = this.rollout;
    if (rollout === null) return HeadersStatus.Continue;
    this.rollout = null; // count each stream's response once
    const root = changetype<ModelrollRoot>(this.root);
    const now = nowNanos();
    const latencyUs: u64 = this.startNs > 0 && now > this.startNs ? (now - this.startNs) / 1000 : 0;
    // Read once: the status class, and the shadow comparison, both need it.
    const statusText = getHeader(HeaderMap.ResponseHeaders, ":status");
    const status = statusText === null ? 0 : I32.parseInt(statusText);
    const cls = responseClass(statusText === null ? -1 : status);
    for (let i = 0; i < this.slices.length; i++) {
      const m = this.slices[i];
      if (latencyUs > 0) recordMetric(m.latencyUs, latencyUs);
      incrementMetric(m.responses[cls]);
    }
    replaceHeader(HeaderMap.ResponseHeaders, root.plugin.responseVariantHeader, VARIANT_NAMES[this.variant]);
    const exchange = this.exchange;
    if (exchange !== null) exchange.primary.status = status;
    const models = rollout.config.models;
    if (models !== null) {
      if (models.header.length > 0) noteVersion(rollout, this.variant, getHeader(HeaderMap.ResponseHeaders, models.header));
      else this.identityRollout = rollout;
    }
    const output = rollout.config.output;
    if (!output.analyze && exchange === null && this.identityRollout === null) return HeadersStatus.Continue;
    // Decide from the headers whether the answer can be read: the body is then copied as it passes. Only a
    // successful answer is a model output; an error (Envoy's local replies included) counts as an error only.
    let unreadable = -1;
    if (!isAnalyzableStatus(status)) unreadable = UNANALYZED_ERROR_STATUS;
    else if (endOfStream) unreadable = UNANALYZED_NO_BODY;
    else if (getHeader(HeaderMap.ResponseHeaders, "content-encoding") !== null) unreadable = UNANALYZED_COMPRESSED;
    else if (!isJsonContentType(getHeader(HeaderMap.ResponseHeaders, "content-type"))) unreadable = UNANALYZED_NOT_JSON_CONTENT_TYPE;
    else if (parseContentLength(getHeader(HeaderMap.ResponseHeaders, "content-length")) > <i64>output.maxBodyBytes) unreadable = UNANALYZED_TOO_LARGE;
    if (unreadable >= 0) {
      this.versionUnread();
      if (output.analyze) countUnanalyzed(this.slices, unreadable);
      this.primaryAnswerEnded(endOfStream);
      if (this.guardWanted) this.countGuard(GUARD_SKIPPED);
      return HeadersStatus.Continue;
    }
    this.analyzing = output.analyze;
    this.analyzedRollout = rollout;
    const copy = this.requestCopy;
    // Holding needs the complete request (to send it again); the answer's size is checked as it arrives.
    if (this.guardWanted) {
      if (copy !== null && copy.complete) {
        this.guardHeld = true;
        return HeadersStatus.StopIteration;
      }
      this.countGuard(GUARD_SKIPPED);
    }
    this.responseCopy = new BodyCopy(<i32>output.maxBodyBytes);
    return HeadersStatus.Continue;
  }
}

/** A request's method, path, headers and body, copied as it passes, to be sent again (shadow, guard). */
class RequestCopy {
  method: string = "GET";
  authority: string = "";
  names: Array<string> = [];
  values: Array<string> = [];
  body: BodyCopy;
  complete: bool = false;
  constructor(pairs: HeaderPairs, variantHeader: string, public path: string, maxBody: i32) {
    this.body = new BodyCopy(maxBody);
    for (let i = 0; i < pairs.names.length; i++) {
      const name = pairs.names[i];
      if (name == ":method") this.method = pairs.values[i];
      else if (name == ":authority") this.authority = pairs.values[i];
      else if (name.startsWith(":") || name == variantHeader || isHopByHop(name)) continue;
      else {
        this.names.push(name);
        this.values.push(pairs.values[i]);
      }
    }
  }

  /** Header names for the call: pseudo-headers, a marker header, then the copied ones. */
  callHeaderNames(marker: string): Array<string> {
    const names = [":method", ":path", ":authority", marker];
    for (let i = 0; i < this.names.length; i++) names.push(this.names[i]);
    return names;
  }

  callHeaderValues(markerValue: string): Array<string> {
    const values = [this.method, this.path, this.authority, markerValue];
    for (let i = 0; i < this.values.length; i++) values.push(this.values[i]);
    return values;
  }
}

/** A sampled request waiting for its copy to be complete before it is mirrored. */
class ShadowPending {
  constructor(public rollout: ActiveRollout, public config: ShadowConfig, public slices: Array<ShadowMetrics>) {}
}

/** The guard holds answers up to the analysis limit, and never near Envoy's default 1 MiB buffer limit. */
const GUARD_MAX_HOLD_BYTES: u32 = 960 * 1024;
function guardHoldLimit(output: OutputConfig): u32 {
  return output.maxBodyBytes < GUARD_MAX_HOLD_BYTES ? output.maxBodyBytes : GUARD_MAX_HOLD_BYTES;
}

const GUARD_REPLACED: i32 = 0;
const GUARD_FAILED: i32 = 1;
const GUARD_SKIPPED: i32 = 2;

/** One mirrored request: the primary's and the shadow's answers meet here, in either order. */
export class ShadowExchange {
  primary: AnswerSummary = new AnswerSummary();
  shadow: AnswerSummary = new AnswerSummary();
  abandoned: bool = false;
  constructor(public config: ShadowConfig, public output: OutputConfig, public slices: Array<ShadowMetrics>, public startNs: u64) {}

  /** Called when the primary's whole answer is in (read or not): its paired latency ends here. */
  primaryAnswered(): void {
    const p = this.primary;
    p.done = true;
    p.completeNs = nowNanos();
    p.latencyUs = p.completeNs > this.startNs ? (p.completeNs - this.startNs) / 1000 : 0;
    if (this.shadow.done) this.compare();
  }

  primaryAbandoned(): void {
    this.abandoned = true;
    if (this.shadow.done) countAll(this.slices, SHADOW_INCOMPLETE);
  }

  /** Runs in the root context; reads the call's response, never the (possibly gone) stream. */
  shadowAnswered(headerCount: u32, bodySize: u32): void {
    const s = this.shadow;
    s.done = true;
    s.completeNs = nowNanos();
    s.latencyUs = s.completeNs > this.startNs ? (s.completeNs - this.startNs) / 1000 : 0;
    let cls = CLASS_LOCAL;
    if (headerCount == 0) {
      s.failed = true;
      // No answer at all: an error like an Envoy local reply, never a model output.
      if (this.output.analyze) countUnanalyzed(shadowCallSlices(this.slices), UNANALYZED_ERROR_STATUS);
    } else {
      const status = getHeader(HeaderMap.HttpCallResponseHeaders, ":status");
      s.status = status === null ? 0 : I32.parseInt(status);
      if (s.status > 0) cls = statusClass(s.status);
      this.readShadowAnswer(bodySize);
    }
    for (let i = 0; i < this.slices.length; i++) {
      const m = this.slices[i].calls;
      incrementMetric(m.responses[cls]);
      if (!s.failed && s.latencyUs > 0) recordMetric(m.latencyUs, s.latencyUs);
    }
    if (this.primary.done) this.compare();
    else if (this.abandoned) countAll(this.slices, SHADOW_INCOMPLETE);
  }

  /** The shadow's answer, read like a primary one: only a 2xx JSON answer within the size limit is analyzed. */
  readShadowAnswer(bodySize: u32): void {
    const output = this.output;
    let unreadable = -1;
    if (!isAnalyzableStatus(this.shadow.status)) unreadable = UNANALYZED_ERROR_STATUS;
    else if (bodySize == 0) unreadable = UNANALYZED_NO_BODY;
    else if (getHeader(HeaderMap.HttpCallResponseHeaders, "content-encoding") !== null) unreadable = UNANALYZED_COMPRESSED;
    else if (!isJsonContentType(getHeader(HeaderMap.HttpCallResponseHeaders, "content-type"))) unreadable = UNANALYZED_NOT_JSON_CONTENT_TYPE;
    else if (bodySize > output.maxBodyBytes) unreadable = UNANALYZED_TOO_LARGE;
    if (unreadable >= 0) {
      if (output.analyze) countUnanalyzed(shadowCallSlices(this.slices), unreadable);
      return;
    }
    // Fail-open: an unreadable body leaves the answer without prediction (counted as missing by the comparison).
    const body = getBuffer(Buffer.HttpCallResponseBody, 0, bodySize);
    if (body === null) return;
    const parsed = parseJsonBytes(body, 64);
    noteGarbage(parseGarbageEstimate(body));
    summarizeAnswer(parsed.value, output, this.shadow);
    const verdict = output.schema !== null ? schemaResultIndex(output, parsed.value, parsed.tooDeep) : -1;
    if (output.analyze) recordAnalysis(shadowCallSlices(this.slices), output, parsed.value, verdict);
  }

  compare(): void {
    const outcome = predictionOutcome(this.primary, this.shadow);
    const delta = confidenceDeltaMilli(this.primary, this.shadow);
    const statusSame = !this.shadow.failed && this.primary.status == this.shadow.status;
    // The primary timed like the shadow call (same start, up to its whole answer), for the requests whose
    // shadow latency is recorded: a latency gate in a shadow stage compares these two.
    const pairedUs = this.shadow.failed ? 0 : this.primary.latencyUs;
    for (let i = 0; i < this.slices.length; i++) {
      const m = this.slices[i];
      if (pairedUs > 0) recordMetric(m.primaryLatencyUs, pairedUs);
      incrementMetric(statusSame ? m.statusMatch : m.statusMismatch);
      incrementMetric(m.prediction[outcome]);
      if (delta >= 0) recordMetric(m.confidenceDeltaMilli, <u64>delta);
    }
  }
}

function shadowCallSlices(slices: Array<ShadowMetrics>): Array<VariantMetrics> {
  const out = new Array<VariantMetrics>(slices.length);
  for (let i = 0; i < slices.length; i++) out[i] = slices[i].calls;
  return out;
}

/** About what a parse tree of this body weighs (a value object, key strings and arrays per few bytes). */
function parseGarbageEstimate(body: ArrayBuffer): usize {
  return <usize>body.byteLength * 16;
}

function countUnanalyzed(slices: Array<VariantMetrics>, reason: i32): void {
  for (let i = 0; i < slices.length; i++) {
    const m = slices[i].output;
    if (m !== null) incrementMetric(m.unanalyzed[reason]);
  }
}

/** Index into SCHEMA_RESULT_NAMES for one answer: 0 = valid, else the first failure's reason. */
function schemaResultIndex(output: OutputConfig, doc: JsonValue | null, tooDeep: bool): i32 {
  const schema = output.schema!;
  let reason = tooDeep ? "too_deep" : "not_json";
  if (doc !== null) {
    const result = validate(schema, doc!);
    if (result.valid) return 0;
    reason = result.reason;
  }
  const i = SCHEMA_RESULT_NAMES.indexOf(reason);
  // A reason this build has no stat for would be a bug between the two modules; count it as not valid JSON
  // rather than lose it.
  return i > 0 ? i : SCHEMA_RESULT_NAMES.indexOf("not_json");
}

/** Schema verdict (-1: no schema), label, confidence and LLM fields of one parsed answer (null: not JSON), counted in every slice. */
function recordAnalysis(slices: Array<VariantMetrics>, output: OutputConfig, doc: JsonValue | null, schemaResult: i32): void {
  const label = labelIndex(doc, output);
  const confidence: i64 = doc === null ? -1 : confidenceMilli(doc!, output);
  const promptTokens: f64 = doc === null ? NaN : numberAt(doc!, output.promptTokensField);
  const completionTokens: f64 = doc === null ? NaN : numberAt(doc!, output.completionTokensField);
  const isLlm = !isNaN(promptTokens) || !isNaN(completionTokens);
  const citation = doc !== null && flagAt(doc!, output.citationField);
  const abstained = doc !== null && flagAt(doc!, output.abstainedField);
  const fallback = doc !== null && flagAt(doc!, output.fallbackField);
  for (let i = 0; i < slices.length; i++) {
    const m = slices[i].output;
    if (m === null) continue;
    if (schemaResult >= 0 && schemaResult < m.schema.length) incrementMetric(m.schema[schemaResult]);
    incrementMetric(m.labels[label]);
    if (confidence >= 0) recordMetric(m.confidenceMilli, <u64>confidence);
    if (isLlm) incrementMetric(m.llmOutputs);
    if (!isNaN(promptTokens) && promptTokens >= 0) recordMetric(m.promptTokens, <u64>promptTokens);
    if (!isNaN(completionTokens) && completionTokens >= 0) recordMetric(m.completionTokens, <u64>completionTokens);
    if (citation) incrementMetric(m.citationPresent);
    if (abstained) incrementMetric(m.abstained);
    if (fallback) incrementMetric(m.fallbackUsed);
  }
}

const SHADOW_DROPPED: i32 = 0;
const SHADOW_SKIPPED_LARGE_BODY: i32 = 1;
const SHADOW_INCOMPLETE: i32 = 2;

function countAll(slices: Array<ShadowMetrics>, what: i32): void {
  for (let i = 0; i < slices.length; i++) {
    const m = slices[i];
    incrementMetric(what == SHADOW_DROPPED ? m.dropped : what == SHADOW_SKIPPED_LARGE_BODY ? m.skippedLargeBody : m.incomplete);
  }
}

/** Connection-level headers that must not be forwarded on another connection (RFC 9110 7.6.1). */
function isHopByHop(name: string): bool {
  return name == "connection" || name == "keep-alive" || name == "transfer-encoding" || name == "te"
    || name == "upgrade" || name == "proxy-connection" || name == "trailer";
}

/** A worker's identity fail-safe stays on across config updates that leave the rollout's weights and models alone. */
function carryIdentityTrips(previous: ActiveSet, next: ActiveSet): void {
  for (let i = 0; i < previous.rollouts.length; i++) {
    const old = previous.rollouts[i];
    if (!old.tripped) continue;
    for (let j = 0; j < next.rollouts.length; j++) {
      const r = next.rollouts[j];
      if (r.config.name == old.config.name && sameIdentityConfig(old.config.models, r.config.models, old.config.canaryBasisPoints, r.config.canaryBasisPoints)) r.tripped = true;
    }
  }
}

/** A tripped rollout's canary request goes to stable instead, counted. */
function identityFailsafe(rollout: ActiveRollout): i32 {
  const m = rollout.metrics.identity;
  if (m !== null) incrementMetric(m.failsafe);
  return VARIANT_STABLE;
}

/** Counts an answer's stated version; a canary stating another model trips the rollout's fail-safe on this worker. */
function noteVersion(rollout: ActiveRollout, variant: i32, version: string | null): void {
  const models = rollout.config.models;
  const m = rollout.metrics.identity;
  if (models === null || m === null) return;
  const cls = classifyVersion(models, version);
  incrementMetric(m.answers[variant][cls]);
  if (variant != VARIANT_CANARY || !isCanaryMismatch(cls) || rollout.tripped) return;
  rollout.tripped = true;
  log(LogLevel.Warn, "modelroll: rollout " + rollout.config.name + ": the canary answered model version '" + (version === null ? "" : version) + "' (" + MODEL_NAMES[cls] + "; declared " + models.canary + "); this worker sends the rollout's traffic to stable until its config changes");
}

function metricsKey(r: RolloutConfig): string {
  let key = r.name + (r.shadow !== null ? "+shadow" : "") + (r.models !== null ? "+models" : "") + (r.output.analyze ? "+output:" + r.output.labels.join(",") + (r.output.schema !== null ? "+schema" : "") : "");
  for (let d = 0; d < r.segments.length; d++) key += "|" + r.segments[d].name + ":" + r.segments[d].values.join(",");
  return key;
}

function segmentIndexesFor(config: RolloutConfig, path: string): Array<i32> {
  const segments = config.segments;
  const indexes = new Array<i32>(segments.length);
  let contentLength: i64 = -2; // read once, and only if a size dimension asks
  for (let d = 0; d < segments.length; d++) {
    const seg = segments[d];
    let header: string | null = null;
    if (seg.kind == SEGMENT_HEADER) header = getHeader(HeaderMap.RequestHeaders, seg.header);
    else if (seg.kind == SEGMENT_SIZE && contentLength == -2) contentLength = parseContentLength(getHeader(HeaderMap.RequestHeaders, "content-length"));
    indexes[d] = segmentValueIndex(seg, header, path, contentLength);
  }
  return indexes;
}

function variantSlices(rollout: ActiveRollout, variant: i32, indexes: Array<i32>): Array<VariantMetrics> {
  const slices = new Array<VariantMetrics>(1 + indexes.length);
  slices[0] = rollout.metrics.variants[variant];
  for (let d = 0; d < indexes.length; d++) slices[1 + d] = rollout.metrics.segments[d][indexes[d]][variant];
  return slices;
}

function shadowSlices(rollout: ActiveRollout, indexes: Array<i32>): Array<ShadowMetrics> {
  const slices = new Array<ShadowMetrics>(1 + indexes.length);
  slices[0] = rollout.metrics.shadow[0];
  for (let d = 0; d < indexes.length; d++) slices[1 + d] = rollout.metrics.shadowSegments[d][indexes[d]];
  return slices;
}

/**
 * Local replies (timeouts, no upstream, resets) are told apart from upstream answers by Envoy's code
 * details. Envoy's local replies are all errors, so the property (a comparatively costly host call) is
 * read only for statuses >= 400.
 */
function responseClass(code: i32): i32 {
  if (code < 0) return CLASS_LOCAL; // no :status at all
  if (code < 400) return statusClass(code);
  const details = getProperty(["response", "code_details"]);
  if (details !== null && String.UTF8.decode(details) != "via_upstream") return CLASS_LOCAL;
  return statusClass(code);
}
