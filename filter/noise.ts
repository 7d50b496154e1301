// Shadow noise, after Twitter's Diffy: a model that samples (an LLM) answers one prompt differently each time, so
// the shadow's raw disagreement with the primary says little. On a sample of the mirrored requests answered by
// stable, the request also goes to stable a second time; how often stable disagrees with itself is the noise, and
// only the shadow's disagreement beyond it counts against the shadow (the gate shadow_disagreement_excess).
// Counted per shadow slice:
//   modelroll.rollout.<r>.variant.shadow[.seg.<d>.<value>].noise_requests   second stable calls sent
//   ... .noise_agree | noise_disagree | noise_missing   the primary's prediction vs the second stable answer's
// The second call belongs to the root like the shadow call and never delays the primary.
import { Buffer, getBuffer, getHeader, HeaderMap, httpCall, incrementMetric, log, LogLevel, setEffectiveContext, defineMetric, MetricType } from "./sdk/host";
import { OutputConfig, ShadowConfig } from "./config-model";
import { AnswerSummary, predictionOutcome, summarizeAnswer } from "./comparison";
import { parseAnswer, READABLE, unreadableReason } from "./analysis";
import { RandomBuckets } from "./routing";
import { RequestCopy } from "./request-copy";

export class NoiseMetrics {
  requests: u32;
  /** Indexed by PREDICTION_* (comparison.ts): agree, disagree, missing. */
  prediction: Array<u32> = [];
  constructor(base: string) {
    this.requests = defineMetric(MetricType.Counter, base + "noise_requests");
    this.prediction.push(defineMetric(MetricType.Counter, base + "noise_agree"));
    this.prediction.push(defineMetric(MetricType.Counter, base + "noise_disagree"));
    this.prediction.push(defineMetric(MetricType.Counter, base + "noise_missing"));
  }
}

/** Whether this mirrored request also goes to stable again: only requests stable answers, a random sample. */
export function sampleNoise(config: ShadowConfig, primaryIsStable: bool, random: RandomBuckets): bool {
  if (!primaryIsStable || config.noiseBasisPoints == 0) return false;
  return random.next() < config.noiseBasisPoints;
}

/** The second stable call of one mirrored request, and its answer once in. */
export class NoiseCall {
  answer: AnswerSummary = new AnswerSummary();
  compared: bool = false;
  constructor(
    public token: u32,
    public metrics: Array<NoiseMetrics | null>,
  ) {}

  /** Runs in the root context: reads the call's answer like the shadow's (2xx JSON within the limit). */
  answered(output: OutputConfig, headerCount: u32, bodySize: u32): void {
    const a = this.answer;
    a.done = true;
    if (headerCount == 0) {
      a.failed = true;
      return;
    }
    const status = getHeader(HeaderMap.HttpCallResponseHeaders, ":status");
    a.status = status === null ? 0 : I32.parseInt(status);
    if (unreadableReason(a.status, bodySize > 0, HeaderMap.HttpCallResponseHeaders, <i64>bodySize, output.maxBodyBytes) != READABLE) return;
    const body = getBuffer(Buffer.HttpCallResponseBody, 0, bodySize);
    if (body === null) return;
    summarizeAnswer(parseAnswer(body).value, output, a);
  }

  /** Both the primary's and the second stable answer are in: counted once. */
  compare(primary: AnswerSummary): void {
    if (this.compared || !this.answer.done || !primary.done) return;
    this.compared = true;
    const outcome = predictionOutcome(primary, this.answer);
    for (let i = 0; i < this.metrics.length; i++) {
      const m = this.metrics[i];
      if (m !== null) incrementMetric(m.prediction[outcome]);
    }
  }
}

/**
 * Sends the request (as the client sent it) to the noise cluster as a call of the root context; returns the call,
 * or null when the host refused (nothing counted: the sample is only smaller).
 */
export function dispatchNoise(
  config: ShadowConfig,
  rollout: string,
  copy: RequestCopy,
  metrics: Array<NoiseMetrics | null>,
  rootId: u32,
  streamId: u32,
): NoiseCall | null {
  const body = copy.callBody();
  const names = copy.callHeaderNames("x-modelroll-noise");
  const values = copy.callHeaderValues(rollout, body === null ? 0 : body.byteLength);
  if (!setEffectiveContext(rootId)) return null;
  const token = httpCall(config.noiseCluster, names, values, body, config.timeoutMs);
  if (!setEffectiveContext(streamId)) log(LogLevel.Warn, "modelroll: could not act as stream " + streamId.toString() + " again after a noise call");
  if (token == 0) return null;
  for (let i = 0; i < metrics.length; i++) {
    const m = metrics[i];
    if (m !== null) incrementMetric(m.requests);
  }
  return new NoiseCall(token, metrics);
}
