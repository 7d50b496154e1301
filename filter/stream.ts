// One request through the filter. At request headers it finds the rollout (longest path prefix), picks the
// variant (sticky bucket vs canary weight), sets the variant header so that Envoy re-picks the route, and counts
// the request in its slices; at response headers it counts the answer. Anything else it holds only while its
// request needs it: the request copy (shadow, guard), the pending shadow or its exchange, the guard, the answer.
import {
  Buffer,
  getBuffer,
  getHeader,
  getHeaderPairs,
  getProperty,
  HeaderMap,
  incrementMetric,
  nowNanos,
  recordMetric,
  removeHeader,
  replaceHeader,
} from "./sdk/host";
import { DataStatus, HeadersStatus, StreamContextBase, RootContextBase } from "./sdk/dispatch";
import { RolloutConfig, SEGMENT_HEADER, SEGMENT_SIZE } from "./config-model";
import { ActiveRollout, PathGroup } from "./active";
import { MODEL_ROUTE_NOT_HELD, MODEL_ROUTE_UNREADABLE } from "./model-route";
import { chooseByModel, HeldBody, routeName } from "./model-held";
import { RootState } from "./root-state";
import { isCanary, stickyBucket } from "./routing";
import { parseContentLength, segmentValueIndex } from "./segments";
import { BodyCopy } from "./body-copy";
import { READABLE, unreadableReason } from "./analysis";
import { STREAM_NONE, streamKindOf, StreamReader } from "./llm-stream";
import { isAnalyzableStatus, UNANALYZED_COMPRESSED, UNANALYZED_TOO_LARGE } from "./output";
import { PrimaryAnswer } from "./answer";
import { dispatchShadow, sampleShadow, ShadowExchange, ShadowPending } from "./exchange";
import { GuardPhase, GuardState } from "./guard";
import { RequestCopy } from "./request-copy";
import { dispatchNoise, sampleNoise } from "./noise";
import { CLASS_LOCAL, countEach, outputMetricsOf, statusClass, VARIANT_CANARY, VARIANT_NAMES, VARIANT_STABLE, VariantMetrics } from "./stats";

/** What the response body callbacks do for this stream. */
const enum BodyPath {
  /** Nothing reads the body. */
  Pass,
  /** Copied as it passes (never held), read at its end. */
  Copy,
  /** Held by the output guard until complete. */
  Hold,
  /** Not read, but the shadow exchange times the primary up to its last chunk. */
  AwaitEnd,
  /** A streamed LLM answer, read line by line as it passes (llm-stream.ts). */
  Stream,
}

function requests(m: VariantMetrics): u32 {
  return m.requests;
}

/** A request a rollout matched, as fixed at its headers. */
class RoutedRequest {
  constructor(
    public rollout: ActiveRollout,
    public variant: i32,
    public startNs: u64,
    /** Where it is counted: the variant overall, then its value in each segment dimension. */
    public slices: Array<VariantMetrics>,
  ) {}
}

export class ModelrollStream extends StreamContextBase {
  /** The rollout this request matched; null: not ours, and nothing else happens. */
  routed: RoutedRequest | null = null;
  /** The request as it passed, while a shadow call or the guard may send it again. */
  copy: RequestCopy | null = null;
  /** Sampled for mirroring, waiting for the request copy to be complete. */
  shadowPending: ShadowPending | null = null;
  /** The mirrored call this request's answer is compared with, once sent. */
  exchange: ShadowExchange | null = null;
  /** The output guard of this canary request. */
  guard: GuardState | null = null;
  /** The answer being read, from its headers to its end. */
  answer: PrimaryAnswer | null = null;
  bodyPath: BodyPath = BodyPath.Pass;
  /** The answer's headers were counted (once per stream). */
  responseCounted: bool = false;
  /** The path's model rollouts, while the headers wait for the body's model (model-route.ts). */
  modelWait: PathGroup | null = null;
  /** The request's path, kept while its headers wait. */
  path: string = "";

  constructor(
    id: u32,
    root: RootContextBase,
    private state: RootState,
  ) {
    super(id, root);
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const path = getHeader(HeaderMap.RequestHeaders, ":path");
    const group = path !== null ? this.state.active.group(path) : null;
    if (path === null || group === null) return this.route(null, "", endOfStream, null);
    if (group.byModel.length == 0) return this.route(group.fallback, path, endOfStream, null);
    // Rollouts chosen by the body's model: the headers wait for the body (model-route.ts), within its limit.
    if (endOfStream || !this.state.plugin.headersStopIteration) {
      group.failOpen(endOfStream ? MODEL_ROUTE_UNREADABLE : MODEL_ROUTE_NOT_HELD);
      return this.route(group.fallback, path, endOfStream, null);
    }
    // A held request that never gets to its routing (trailers end it, not a body callback) goes on as stable: no
    // client-sent variant header may pick the canary route meanwhile.
    removeHeader(HeaderMap.RequestHeaders, this.state.plugin.variantHeader);
    this.modelWait = group;
    this.path = path;
    return HeadersStatus.StopIteration;
  }

  /** Routes to `rollout` (null: not ours), with the held body when the body's model chose it. */
  private route(rollout: ActiveRollout | null, path: string, endOfStream: bool, held: HeldBody | null): HeadersStatus {
    const state = this.state;
    const variantHeader = state.plugin.variantHeader;
    if (rollout === null) {
      // Not ours: a client-sent variant header must not pick the canary route.
      removeHeader(HeaderMap.RequestHeaders, variantHeader);
      return HeadersStatus.Continue;
    }
    const key = getHeader(HeaderMap.RequestHeaders, rollout.config.stickyHeader);
    const bucket = key === null || key.length == 0 ? state.random.next() : stickyBucket(rollout.config.name, key);
    let variant = rollout.identity.route(isCanary(bucket, rollout.config.canaryBasisPoints) ? VARIANT_CANARY : VARIANT_STABLE);
    if (variant == VARIANT_CANARY && held !== null && !held.rewriteForCanary(rollout)) variant = VARIANT_STABLE;
    // Changing a request header makes Envoy re-pick the route (ABI 0.2.1), so this decides the cluster.
    if (!replaceHeader(HeaderMap.RequestHeaders, variantHeader, routeName(rollout, variant))) {
      // Fail-safe: if we cannot set our header, make sure no client value remains and count it as stable.
      removeHeader(HeaderMap.RequestHeaders, variantHeader);
      variant = VARIANT_STABLE;
    }
    const startNs = nowNanos();
    const indexes = segmentIndexesFor(rollout.config, path);
    const slices = variantSlices(rollout, variant, indexes);
    this.routed = new RoutedRequest(rollout, variant, startNs, slices);
    countEach(slices, requests);

    const pending = sampleShadow(rollout, key, state.random, state.shadowCalls.size, indexes);
    const guard = this.guardFor(rollout, variant, slices);
    this.shadowPending = pending;
    this.guard = guard;
    if (pending === null && guard === null) return HeadersStatus.Continue;
    const pairs = getHeaderPairs(HeaderMap.RequestHeaders);
    if (pairs === null) {
      // Fail-open: the request goes on, unmirrored (counted) and unguarded (skipped at its answer: no copy).
      if (pending !== null) pending.hostRefused();
      this.shadowPending = null;
      return HeadersStatus.Continue;
    }
    let limit: u32 = guard !== null ? rollout.config.output.maxBodyBytes : 0;
    if (pending !== null && pending.config.maxBodyBytes > limit) limit = pending.config.maxBodyBytes;
    const copy = new RequestCopy(pairs, variantHeader, path, <i32>limit);
    if (held !== null) copy.shadowBody = held.forShadow(rollout);
    this.copy = copy;
    if (endOfStream) this.requestComplete(copy);
    return HeadersStatus.Continue;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): DataStatus {
    const group = this.modelWait;
    if (group !== null) return this.modelBody(group, bodySize, endOfStream);
    const copy = this.copy;
    if (copy === null || copy.complete) return DataStatus.Continue;
    // The request is never held: each chunk is copied as it passes.
    if (bodySize > 0) this.copyChunk(copy, getBuffer(Buffer.HttpRequestBody, 0, bodySize), endOfStream);
    else if (endOfStream) this.requestComplete(copy);
    return DataStatus.Continue;
  }

  /** The body of a request waiting for its model: buffered to its end (or the limit), then routed and released. */
  private modelBody(group: PathGroup, bodySize: u32, endOfStream: bool): DataStatus {
    const tooLarge = bodySize > group.maxBodyBytes;
    if (!tooLarge && !endOfStream) return DataStatus.StopIterationAndBuffer;
    this.modelWait = null;
    // The buffer holds the whole body so far.
    const body = getBuffer(Buffer.HttpRequestBody, 0, bodySize);
    const choice = chooseByModel(group, body, bodySize, tooLarge);
    this.route(choice.rollout, this.path, false, choice.held);
    const copy = this.copy;
    // The copy gets the body as the client sent it (the guard asks stable with it), then what follows, if anything.
    if (copy !== null) this.copyChunk(copy, body, endOfStream);
    return DataStatus.Continue;
  }

  /** Adds a chunk of the request to its copy; on a failed read or past the limit the copy is dropped (counted). */
  private copyChunk(copy: RequestCopy, chunk: ArrayBuffer | null, endOfStream: bool): void {
    if (chunk === null) {
      // Fail-open: no complete copy, so no shadow call (counted) and no guard (skipped at the answer).
      this.dropCopy(false);
      return;
    }
    copy.body.add(chunk);
    if (copy.body.overflowed) {
      // Too large to mirror (counted); the guard cannot send it again either.
      this.dropCopy(true);
      return;
    }
    if (endOfStream) this.requestComplete(copy);
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    const routed = this.routed;
    if (routed === null || this.responseCounted) return HeadersStatus.Continue;
    this.responseCounted = true;
    const status = countResponse(routed);
    replaceHeader(HeaderMap.ResponseHeaders, this.state.plugin.responseVariantHeader, VARIANT_NAMES[routed.variant]);
    const exchange = this.exchange;
    if (exchange !== null) exchange.primary.status = status;
    const rollout = routed.rollout;
    const models = rollout.config.models;
    let versionInBody = false;
    if (models !== null) {
      if (models.header.length > 0) rollout.identity.note(routed.variant, getHeader(HeaderMap.ResponseHeaders, models.header));
      else versionInBody = true;
    }
    const output = rollout.config.output;
    if (!output.analyze && exchange === null && !versionInBody) return HeadersStatus.Continue;
    const answer = new PrimaryAnswer(rollout, routed.variant, routed.slices, versionInBody, exchange);
    const guard = this.guard;
    // A streamed answer (SSE, NDJSON) is read as it passes, never held: the guard does not apply to it.
    const streamKind = isAnalyzableStatus(status) && !endOfStream ? streamKindOf(getHeader(HeaderMap.ResponseHeaders, "content-type")) : STREAM_NONE;
    if (streamKind != STREAM_NONE) {
      if (guard !== null) guard.skip();
      if (getHeader(HeaderMap.ResponseHeaders, "content-encoding") !== null) {
        answer.notRead(UNANALYZED_COMPRESSED);
        this.notReadUntilEnd(answer, endOfStream);
        return HeadersStatus.Continue;
      }
      answer.stream = new StreamReader(streamKind, <i32>output.maxBodyBytes);
      this.answer = answer;
      this.bodyPath = BodyPath.Stream;
      return HeadersStatus.Continue;
    }
    // Decided from the headers: whether the answer can be read (its body is then copied as it passes).
    const reason = unreadableReason(status, !endOfStream, HeaderMap.ResponseHeaders, -1, output.maxBodyBytes);
    if (reason != READABLE) {
      answer.notRead(reason);
      if (guard !== null) guard.skip();
      this.notReadUntilEnd(answer, endOfStream);
      return HeadersStatus.Continue;
    }
    this.answer = answer;
    if (guard !== null && guard.hold(this.copy)) {
      this.bodyPath = BodyPath.Hold;
      return HeadersStatus.StopIteration;
    }
    answer.copy = new BodyCopy(<i32>output.maxBodyBytes);
    this.bodyPath = BodyPath.Copy;
    return HeadersStatus.Continue;
  }

  onResponseBody(bodySize: u32, endOfStream: bool): DataStatus {
    const answer = this.answer;
    if (answer === null) return DataStatus.Continue;
    const bodyPath = this.bodyPath;
    if (bodyPath == BodyPath.Hold) return this.heldBody(answer, bodySize, endOfStream);
    if (bodyPath == BodyPath.Stream) return this.streamBody(answer, bodySize, endOfStream);
    if (bodyPath == BodyPath.AwaitEnd) {
      if (endOfStream) {
        this.release();
        answer.ended();
      }
      return DataStatus.Continue;
    }
    const copy = answer.copy;
    if (bodyPath != BodyPath.Copy || copy === null) return DataStatus.Continue;
    if (bodySize > 0 && !copy.overflowed) {
      const chunk = getBuffer(Buffer.HttpResponseBody, 0, bodySize);
      if (chunk !== null) copy.add(chunk);
    }
    if (!endOfStream) return DataStatus.Continue;
    this.release();
    if (copy.overflowed) {
      answer.notRead(UNANALYZED_TOO_LARGE);
      answer.ended();
    } else {
      answer.read(copy.join());
    }
    return DataStatus.Continue;
  }

  /** Stable's answer for the guard, when the host delivers the call's response to this stream itself. */
  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
    const guard = this.guard;
    if (guard === null || guard.phase != GuardPhase.Fetching || guard.token != token) return;
    this.state.guardCalls.delete(token);
    guard.stableAnswered(token, headerCount, bodySize);
  }

  onDelete(): void {
    // A stream that went away before its end (a reset, the client gone) is counted, as cut off.
    const answer = this.answer;
    const routed = this.routed;
    if (answer !== null && routed !== null && this.bodyPath == BodyPath.Stream) {
      const reader = answer.stream;
      this.release();
      if (reader !== null) answer.endStream(reader, routed.startNs, nowNanos(), true);
    }
    const exchange = this.exchange;
    if (exchange !== null && !exchange.primary.done) exchange.primaryAbandoned();
    // A guard call still out has nothing left to replace: the root forgets it.
    const guard = this.guard;
    if (guard !== null && guard.phase == GuardPhase.Fetching) this.state.guardCalls.delete(guard.token);
  }

  private guardFor(rollout: ActiveRollout, variant: i32, slices: Array<VariantMetrics>): GuardState | null {
    const output = rollout.config.output;
    if (variant != VARIANT_CANARY || !output.guard) return null;
    const guard = new GuardState(output, outputMetricsOf(slices));
    if (this.state.plugin.headersStopIteration) return guard;
    // Holding headers would stall the stream on this host: never do it, count it.
    guard.skip();
    return null;
  }

  /** The whole request is in: the pending shadow call goes out; the copy stays only if the guard may need it. */
  private requestComplete(copy: RequestCopy): void {
    copy.complete = true;
    const pending = this.shadowPending;
    if (pending === null) return;
    this.shadowPending = null;
    const exchange = dispatchShadow(pending, copy, this.state.shadowCalls, this.state.rootId, this.id);
    this.exchange = exchange;
    const routed = this.routed;
    if (exchange !== null && routed !== null && sampleNoise(pending.config, routed.variant == VARIANT_STABLE, this.state.random)) {
      const noise = dispatchNoise(pending.config, pending.rollout.config.name, copy, exchange.noiseMetrics(), this.state.rootId, this.id);
      if (noise !== null) {
        exchange.noise = noise;
        this.state.shadowCalls.set(noise.token, exchange);
      }
    }
    if (this.guard === null) this.copy = null;
  }

  private dropCopy(tooLarge: bool): void {
    const pending = this.shadowPending;
    if (pending !== null) {
      if (tooLarge) pending.tooLarge();
      else pending.hostRefused();
    }
    this.shadowPending = null;
    this.copy = null;
  }

  /** A chunk of a streamed answer: read as it passes (fail-open: a chunk the host will not hand over is skipped). */
  private streamBody(answer: PrimaryAnswer, bodySize: u32, endOfStream: bool): DataStatus {
    const reader = answer.stream;
    const routed = this.routed;
    if (reader === null || routed === null) return DataStatus.Continue;
    const now = nowNanos();
    if (bodySize > 0) {
      const chunk = getBuffer(Buffer.HttpResponseBody, 0, bodySize);
      if (chunk !== null) answer.feedStream(reader, chunk, now);
    }
    if (endOfStream) {
      this.release();
      answer.endStream(reader, routed.startNs, now, false);
    }
    return DataStatus.Continue;
  }

  /** A chunk of the answer the guard holds (while buffering, the buffer holds the whole answer so far). */
  private heldBody(answer: PrimaryAnswer, bodySize: u32, endOfStream: bool): DataStatus {
    const guard = this.guard;
    if (guard === null || !guard.holding) {
      // Not reached (Hold is entered only by a holding guard); were it, the answer goes out unread.
      this.release();
      answer.ended();
      return DataStatus.Continue;
    }
    if (!guard.fits(bodySize)) {
      // Released as it is; the rest streams through unread.
      answer.notRead(UNANALYZED_TOO_LARGE);
      this.notReadUntilEnd(answer, endOfStream);
      return DataStatus.Continue;
    }
    if (!endOfStream) return DataStatus.StopIterationAndBuffer;
    this.release();
    const body = getBuffer(Buffer.HttpResponseBody, 0, bodySize);
    if (body === null) {
      // Fail-open: the answer goes out unread and unguarded (counted); the comparison sees it without a prediction.
      guard.unreadable();
      answer.ended();
      return DataStatus.Continue;
    }
    const verdict = answer.read(body);
    return guard.judged(verdict, bodySize, this.copy, this.state.guardCalls, this.id);
  }

  /** The answer is not read: it ends now, or the exchange waits for its last chunk to time the primary. */
  private notReadUntilEnd(answer: PrimaryAnswer, endOfStream: bool): void {
    if (endOfStream || answer.exchange === null) {
      this.release();
      answer.ended();
      return;
    }
    this.answer = answer;
    this.bodyPath = BodyPath.AwaitEnd;
  }

  /** The body callbacks have nothing more to do for this answer. */
  private release(): void {
    this.answer = null;
    this.bodyPath = BodyPath.Pass;
  }
}

/** Counts the answer's latency (request headers -> response headers) and status class; returns its status (0: none). */
function countResponse(routed: RoutedRequest): i32 {
  const now = nowNanos();
  const latencyUs: u64 = routed.startNs > 0 && now > routed.startNs ? (now - routed.startNs) / 1000 : 0;
  // Read once: the status class, and the shadow comparison, both need it.
  const statusText = getHeader(HeaderMap.ResponseHeaders, ":status");
  const status = statusText === null ? 0 : I32.parseInt(statusText);
  const cls = responseClass(statusText === null ? -1 : status);
  const slices = routed.slices;
  for (let i = 0; i < slices.length; i++) {
    const m = slices[i];
    if (latencyUs > 0) recordMetric(m.latencyUs, latencyUs);
    incrementMetric(m.responses[cls]);
  }
  return status;
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

/** Segment value index per dimension (the last index of a dimension is "other"). */
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
