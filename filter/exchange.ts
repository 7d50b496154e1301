// Shadow traffic on the data path. A sampled request waits (ShadowPending) until its copy is complete, then is
// sent again to the shadow cluster as a call owned by the root context (Envoy cancels a stream's own calls when
// the stream ends, and the shadow may be slower than the primary). The primary's and the shadow's answers meet
// in a ShadowExchange, in either order; the second one triggers the comparison. The exchange lives in the root's
// call table, not in the stream, because the shadow may answer after the client is gone.
import { Buffer, getBuffer, getHeader, HeaderMap, httpCall, incrementMetric, log, LogLevel, nowNanos, recordMetric, setEffectiveContext } from "./sdk/host";
import { OutputConfig, ShadowConfig } from "./config-model";
import { ActiveRollout } from "./active";
import { isCanary, RandomBuckets, stickyBucket } from "./routing";
import { AnswerSummary, confidenceDeltaMilli, predictionOutcome, summarizeAnswer } from "./comparison";
import { UNANALYZED_ERROR_STATUS } from "./output";
import { countUnanalyzed, parseAnswer, READABLE, recordAnalysis, schemaVerdict, unreadableReason } from "./analysis";
import { RequestCopy } from "./request-copy";
import { NoiseCall, NoiseMetrics } from "./noise";
import { CLASS_LOCAL, countEach, ShadowMetrics, statusClass, VariantMetrics } from "./stats";

function dropped(m: ShadowMetrics): u32 {
  return m.dropped;
}
function skippedLargeBody(m: ShadowMetrics): u32 {
  return m.skippedLargeBody;
}
function hostRefused(m: ShadowMetrics): u32 {
  return m.hostRefused;
}
function incomplete(m: ShadowMetrics): u32 {
  return m.incomplete;
}
function callRequests(m: ShadowMetrics): u32 {
  return m.calls.requests;
}

/** A sampled request waiting for its copy to be complete before it is mirrored. */
export class ShadowPending {
  constructor(
    public rollout: ActiveRollout,
    public config: ShadowConfig,
    public slices: Array<ShadowMetrics>,
  ) {}

  /** Not mirrored: the request's headers or body could not be read. */
  hostRefused(): void {
    countEach(this.slices, hostRefused);
  }
  /** Not mirrored: the body is over the shadow's limit. */
  tooLarge(): void {
    countEach(this.slices, skippedLargeBody);
  }
}

/**
 * Whether this request is mirrored: a sticky sample by the rollout's key (own hash, independent of the canary
 * split), random without a key. Null when not sampled, or when the per-worker cap on calls in flight drops it.
 */
export function sampleShadow(
  rollout: ActiveRollout,
  key: string | null,
  random: RandomBuckets,
  inFlight: i32,
  segmentIndexes: Array<i32>,
): ShadowPending | null {
  const shadow = rollout.config.shadow;
  if (shadow === null || shadow.basisPoints == 0) return null;
  const bucket = key === null || key.length == 0 ? random.next() : stickyBucket(rollout.config.name + "#shadow", key);
  if (!isCanary(bucket, shadow.basisPoints)) return null;
  const slices = shadowSlices(rollout, segmentIndexes);
  if (<u32>inFlight >= shadow.maxInFlight) {
    countEach(slices, dropped);
    return null;
  }
  return new ShadowPending(rollout, shadow, slices);
}

/**
 * The request is complete: sends the copy to the shadow cluster as a call of the root context. Returns the
 * exchange the primary's answer is to join, or null when nothing was sent (counted).
 */
export function dispatchShadow(pending: ShadowPending, copy: RequestCopy, calls: Map<u32, ShadowExchange>, rootId: u32, streamId: u32): ShadowExchange | null {
  const config = pending.config;
  if (<u32>copy.body.size > config.maxBodyBytes) {
    pending.tooLarge();
    return null;
  }
  if (<u32>calls.size >= config.maxInFlight) {
    countEach(pending.slices, dropped);
    return null;
  }
  const names = copy.callHeaderNames("x-modelroll-shadow");
  const body = copy.shadowCallBody();
  const values = copy.callHeaderValues(pending.rollout.config.name, body === null ? 0 : body.byteLength);
  // The call must belong to the root context so that it outlives this stream. A call made as the stream would be
  // cancelled with it and its answer would never be compared: not sent at all, counted.
  if (!setEffectiveContext(rootId)) {
    pending.hostRefused();
    return null;
  }
  const token = httpCall(config.cluster, names, values, body, config.timeoutMs);
  // Back to the stream for the rest of its callback. This cannot fail while the host runs the stream's callback;
  // if it did, the callback makes no further host calls for the stream after dispatching.
  if (!setEffectiveContext(streamId)) log(LogLevel.Warn, "modelroll: could not act as stream " + streamId.toString() + " again after a shadow call");
  const exchange = new ShadowExchange(config, pending.rollout.config.output, pending.slices, nowNanos());
  countEach(pending.slices, callRequests);
  if (token == 0) {
    // Envoy refused (unknown cluster...): an answer-less shadow, counted as such.
    exchange.shadowAnswered(0, 0);
    return null;
  }
  calls.set(token, exchange);
  return exchange;
}

/** One mirrored request: the primary's and the shadow's answers meet here, in either order. */
export class ShadowExchange {
  primary: AnswerSummary = new AnswerSummary();
  shadow: AnswerSummary = new AnswerSummary();
  /** The client left before the primary's answer was complete. */
  abandoned: bool = false;
  /** The second stable call of this request, when sampled for the noise (noise.ts). */
  noise: NoiseCall | null = null;
  constructor(
    public config: ShadowConfig,
    public output: OutputConfig,
    public slices: Array<ShadowMetrics>,
    public startNs: u64,
  ) {}

  /** Called when the primary's whole answer is in (read or not): its paired latency ends here. */
  primaryAnswered(): void {
    const p = this.primary;
    p.done = true;
    p.completeNs = nowNanos();
    p.latencyUs = p.completeNs > this.startNs ? (p.completeNs - this.startNs) / 1000 : 0;
    if (this.shadow.done) this.compare();
    const noise = this.noise;
    if (noise !== null) noise.compare(p);
  }

  /** Runs in the root context: the answer of one of this exchange's calls (the shadow's, or the noise's). */
  answered(token: u32, headerCount: u32, bodySize: u32): void {
    const noise = this.noise;
    if (noise !== null && noise.token == token) {
      noise.answered(this.output, headerCount, bodySize);
      noise.compare(this.primary);
      return;
    }
    this.shadowAnswered(headerCount, bodySize);
  }

  /** The noise metrics of the slices (null where a slice has none), for a noise call. */
  noiseMetrics(): Array<NoiseMetrics | null> {
    const out = new Array<NoiseMetrics | null>(this.slices.length);
    for (let i = 0; i < this.slices.length; i++) out[i] = this.slices[i].noise;
    return out;
  }

  primaryAbandoned(): void {
    this.abandoned = true;
    if (this.shadow.done) countEach(this.slices, incomplete);
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
      if (this.output.analyze) countUnanalyzed(this.callSlices(), UNANALYZED_ERROR_STATUS);
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
    else if (this.abandoned) countEach(this.slices, incomplete);
  }

  /** The shadow's answer, read like a primary one: only a 2xx JSON answer within the size limit is analyzed. */
  private readShadowAnswer(bodySize: u32): void {
    const output = this.output;
    const reason = unreadableReason(this.shadow.status, bodySize > 0, HeaderMap.HttpCallResponseHeaders, <i64>bodySize, output.maxBodyBytes);
    if (reason != READABLE) {
      if (output.analyze) countUnanalyzed(this.callSlices(), reason);
      return;
    }
    // Fail-open: an unreadable body leaves the answer without prediction (counted as missing by the comparison).
    const body = getBuffer(Buffer.HttpCallResponseBody, 0, bodySize);
    if (body === null) return;
    const parsed = parseAnswer(body);
    summarizeAnswer(parsed.value, output, this.shadow);
    if (output.analyze) recordAnalysis(this.callSlices(), output, parsed.value, schemaVerdict(output, parsed));
  }

  private compare(): void {
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

  /** The mirrored calls' own metrics, per slice (analysis of the shadow's answers is counted there). */
  private callSlices(): Array<VariantMetrics> {
    const calls = new Array<VariantMetrics>(this.slices.length);
    for (let i = 0; i < this.slices.length; i++) calls[i] = this.slices[i].calls;
    return calls;
  }
}

function shadowSlices(rollout: ActiveRollout, indexes: Array<i32>): Array<ShadowMetrics> {
  const slices = new Array<ShadowMetrics>(1 + indexes.length);
  slices[0] = rollout.metrics.shadow[0];
  for (let d = 0; d < indexes.length; d++) slices[1 + d] = rollout.metrics.shadowSegments[d][indexes[d]];
  return slices;
}
