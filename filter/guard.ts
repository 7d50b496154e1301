// The canary output guard: a canary's 2xx answer is held until complete; if it fails the output schema, the same
// request is sent to stable (`guardCluster`) and stable's 2xx answer replaces it. This is the one place the
// filter holds an answer, and every way out of holding releases it:
//   Wanted --(answer readable, request copy complete)--> Holding --(end: valid, or unreadable)--> Done
//   Holding --(over the hold limit)--> Done (released as it is, guard_skipped)
//   Holding --(end: fails the schema)--> Fetching --(stable's answer, or none)--> Done (replaced, or guard_failed)
//   Wanted --(answer not readable, or no complete copy)--> Done (guard_skipped)
import { Buffer, continueResponse, getBuffer, getHeader, HeaderMap, httpCall, log, LogLevel, replaceHeader, setBuffer } from "./sdk/host";
import { DataStatus } from "./sdk/dispatch";
import { OutputConfig } from "./config-model";
import { RequestCopy } from "./request-copy";
import { NO_SCHEMA } from "./analysis";
import { SCHEMA_VALID } from "./schema-results";
import { countEach, OutputMetrics } from "./stats";

export const enum GuardPhase {
  Wanted,
  Holding,
  Fetching,
  Done,
}

/** The guard holds answers up to the analysis limit, and never near Envoy's default 1 MiB buffer limit. */
const GUARD_MAX_HOLD_BYTES: u32 = 960 * 1024;

function replaced(m: OutputMetrics): u32 {
  return m.guardReplaced;
}
function failed(m: OutputMetrics): u32 {
  return m.guardFailed;
}
function skipped(m: OutputMetrics): u32 {
  return m.guardSkipped;
}
function unreadable(m: OutputMetrics): u32 {
  return m.guardUnreadable;
}
function releaseFailed(m: OutputMetrics): u32 {
  return m.guardReleaseFailed;
}

/** The root's record of a guard call in flight: the stream whose held answer it may replace. */
export class GuardCall {
  constructor(
    public streamId: u32,
    public guard: GuardState,
  ) {}
}

/** The guard of one canary request. */
export class GuardState {
  phase: GuardPhase = GuardPhase.Wanted;
  /** The call fetching stable's answer (Fetching). */
  token: u32 = 0;
  /** How much of the response buffer the held answer fills: what stable's answer replaces. */
  heldBytes: u32 = 0;

  constructor(
    public output: OutputConfig,
    public outputMetrics: Array<OutputMetrics>,
  ) {}

  get holding(): bool {
    return this.phase == GuardPhase.Holding;
  }

  /** Holding needs the complete request, to send it again; the answer's size is checked as it arrives. */
  hold(copy: RequestCopy | null): bool {
    if (copy === null || !copy.complete) {
      this.skip();
      return false;
    }
    this.phase = GuardPhase.Holding;
    return true;
  }

  /** Not applicable to this answer (an error, not JSON, too large, or the host cannot hold): counted. */
  skip(): void {
    countEach(this.outputMetrics, skipped);
    this.phase = GuardPhase.Done;
  }

  /**
   * A chunk arrived while holding (the buffer holds the whole answer so far): keep holding, or give up holding
   * when it is too big. Staying under the limit keeps Envoy's own buffer limit (a 500 when exceeded) out of reach.
   */
  fits(bufferedBytes: u32): bool {
    const limit = this.output.maxBodyBytes < GUARD_MAX_HOLD_BYTES ? this.output.maxBodyBytes : GUARD_MAX_HOLD_BYTES;
    if (bufferedBytes <= limit) return true;
    this.skip();
    return false;
  }

  /** The held answer is complete but Envoy would not hand it over: released unjudged, counted. */
  unreadable(): void {
    countEach(this.outputMetrics, unreadable);
    this.phase = GuardPhase.Done;
  }

  /**
   * The held answer is complete and judged. A valid one goes out (Continue); one that fails the schema is fetched
   * again from stable and stays held (StopIterationAndBuffer) until `stableAnswered`. Refetch impossible: the
   * canary's answer goes out, counted as guard_failed.
   */
  judged(verdict: i32, heldBytes: u32, copy: RequestCopy | null, calls: Map<u32, GuardCall>, streamId: u32): DataStatus {
    if (verdict == SCHEMA_VALID || verdict == NO_SCHEMA) {
      this.phase = GuardPhase.Done;
      return DataStatus.Continue;
    }
    // Holding needed the complete copy; without it there is nothing to send again.
    if (copy === null) {
      this.fail();
      return DataStatus.Continue;
    }
    const token = httpCall(
      this.output.guardCluster,
      copy.callHeaderNames("x-modelroll-guard"),
      copy.callHeaderValues("refetch"),
      copy.callBody(),
      this.output.guardTimeoutMs,
    );
    if (token == 0) {
      this.fail();
      return DataStatus.Continue;
    }
    this.phase = GuardPhase.Fetching;
    this.token = token;
    this.heldBytes = heldBytes;
    calls.set(token, new GuardCall(streamId, this));
    return DataStatus.StopIterationAndBuffer;
  }

  /**
   * Stable's answer to the guard call, with the held answer's stream effective: a 2xx answer replaces the held one,
   * anything else (no answer, an error, Envoy's own 503 for a refused connection) lets the canary's go out. Either
   * way the held answer is released.
   */
  stableAnswered(token: u32, headerCount: u32, bodySize: u32): void {
    if (this.phase != GuardPhase.Fetching || token != this.token) return;
    this.phase = GuardPhase.Done;
    this.token = 0;
    const status = headerCount > 0 ? getHeader(HeaderMap.HttpCallResponseHeaders, ":status") : null;
    const body = status !== null && status.startsWith("2") ? getBuffer(Buffer.HttpCallResponseBody, 0, bodySize) : null;
    if (status === null || body === null || !setBuffer(Buffer.HttpResponseBody, 0, this.heldBytes, body)) {
      countEach(this.outputMetrics, failed);
      continueResponse();
      return;
    }
    replaceHeader(HeaderMap.ResponseHeaders, ":status", status);
    replaceHeader(HeaderMap.ResponseHeaders, "content-length", body.byteLength.toString());
    const contentType = getHeader(HeaderMap.HttpCallResponseHeaders, "content-type");
    if (contentType !== null) replaceHeader(HeaderMap.ResponseHeaders, "content-type", contentType);
    replaceHeader(HeaderMap.ResponseHeaders, "x-modelroll-guard", "replaced");
    countEach(this.outputMetrics, replaced);
    continueResponse();
  }

  /**
   * Stable answered but the host refused to act for the held answer's stream. Envoy refuses only a context it no
   * longer knows, so its answer is gone with it; a host that refused a live stream would leave nothing to release
   * it with either (continuing a stream acts on the effective context). Counted, and the guard is done with it.
   */
  releaseRefused(): void {
    if (this.phase != GuardPhase.Fetching) return;
    this.phase = GuardPhase.Done;
    this.token = 0;
    countEach(this.outputMetrics, releaseFailed);
    log(LogLevel.Warn, "modelroll: the output guard could not act for a held answer's stream to release it");
  }

  private fail(): void {
    countEach(this.outputMetrics, failed);
    this.phase = GuardPhase.Done;
  }
}
