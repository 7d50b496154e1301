// Comparing the primary's and the shadow's answers to one mirrored request (exchange.ts brings them together):
// what each answer contributes, extracted once, and the verdicts. Pure.
import { OutputConfig } from "./config-model";
import { JsonValue } from "./json";
import { numberAt, predictionText } from "./output";

export const PREDICTION_AGREE: i32 = 0;
export const PREDICTION_DISAGREE: i32 = 1;
export const PREDICTION_MISSING: i32 = 2;

/** What the comparison needs from one answer, extracted once and then the body is dropped. */
export class AnswerSummary {
  done: bool = false;
  /** No HTTP answer at all (timeout, reset, refused). */
  failed: bool = false;
  status: i32 = 0;
  latencyUs: u64 = 0;
  /** When the whole answer was in (0: not yet); the shadow's and the primary's latency are both timed up to this. */
  completeNs: u64 = 0;
  hasPrediction: bool = false;
  /** Kind-tagged canonical text, so "1" (string) and 1 (number) differ: "s:approve", "n:1", "b:true". */
  prediction: string = "";
  hasConfidence: bool = false;
  confidence: f64 = 0;
}

/** Fills prediction and confidence from a parsed answer; null (not JSON) leaves both missing. */
export function summarizeAnswer(doc: JsonValue | null, output: OutputConfig, out: AnswerSummary): void {
  if (doc === null) return;
  const p = predictionText(doc, output);
  if (p !== null) {
    out.hasPrediction = true;
    out.prediction = p;
  }
  const c = numberAt(doc, output.confidenceField);
  if (!isNaN(c)) {
    out.hasConfidence = true;
    out.confidence = c;
  }
}

export function predictionOutcome(primary: AnswerSummary, shadow: AnswerSummary): i32 {
  if (!primary.hasPrediction || !shadow.hasPrediction) return PREDICTION_MISSING;
  return primary.prediction == shadow.prediction ? PREDICTION_AGREE : PREDICTION_DISAGREE;
}

/** |primary - shadow| confidence in thousandths (a histogram records integers), or -1 when either lacks one. */
export function confidenceDeltaMilli(primary: AnswerSummary, shadow: AnswerSummary): i64 {
  if (!primary.hasConfidence || !shadow.hasConfidence) return -1;
  const d = Math.abs(primary.confidence - shadow.confidence);
  return <i64>Math.round(d * 1000);
}
