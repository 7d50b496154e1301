/**
 * Webhook gates: an external judge (a test suite, an evaluation job, an LLM judge) asked over HTTP with the
 * rollout's evidence answers pass, fail or inconclusive with a reason. The driver asks it beside the ticks
 * (release/webhook-judge.ts) and hands step() the latest answer; this file judges that answer, purely.
 *
 *   pass          Passed
 *   fail          Failed (rolls back, as any Failed gate)
 *   inconclusive  Inconclusive (holds the stage)
 *   no answer     Error (timeout, refused connection, non-2xx, not the documented JSON): holds, never fails
 *
 * Only an answer to a question asked in the current stage, about its candidate, counts: a pass given for the
 * 1% stage says nothing about the 5% one.
 */
import type { WebhookGate } from "./gate-spec.ts";
import { errorMeasurement, unmeasured, type GateEvaluationInput } from "./gate-measure.ts";
import { MeasurementStatus, type Measurement } from "./measurement.ts";
import type { JudgeQuestion, JudgeVerdict } from "./webhook-answer.ts";

const STATUS: Record<JudgeVerdict, MeasurementStatus> = {
  pass: MeasurementStatus.Passed,
  fail: MeasurementStatus.Failed,
  inconclusive: MeasurementStatus.Inconclusive,
};

export function evaluateWebhook(gate: WebhookGate, input: GateEvaluationInput): Measurement {
  const reading = input.judges?.[gate.name];
  if (!reading) return errorMeasurement(gate, null, input.candidate, "the judge was not asked this tick (no webhook reader)");
  const stage = input.stage;
  const current = <Q extends JudgeQuestion>(q: Q | null): q is Q =>
    q !== null &&
    stage !== undefined &&
    q.stageIndex === stage.index &&
    q.candidate === input.candidate &&
    (stage.startedAt === null || q.askedAt >= stage.startedAt);
  const answer = current(reading.answer) ? reading.answer : null;
  if (answer === null) {
    const asked = current(reading.pending) ? ` (asked at ${new Date(reading.pending.askedAt).toISOString()})` : "";
    return waiting(gate, input, `${gate.label}: waiting for the judge's answer about this stage${asked}`);
  }
  if (answer.status === "error") return errorMeasurement(gate, null, input.candidate, `the judge did not answer: ${answer.error}`);
  const status = STATUS[answer.verdict];
  return {
    gate: gate.name,
    status,
    segment: null,
    candidate: input.candidate,
    stableValue: null,
    candidateValue: answer.score,
    threshold: null,
    unit: "",
    sampleSizes: { stable: 0, candidate: 0 },
    intervals: {},
    confidence: null,
    // Ranks a failed judge with the other failed gates (attribution.ts): a judge's fail is a whole failure.
    severity: status === MeasurementStatus.Failed ? 1 : 0,
    reason: `${gate.label}: the judge answered ${answer.verdict}${answer.reason ? `: ${answer.reason}` : ""}`,
    requirement: "pass",
  };
}

function waiting(gate: WebhookGate, input: GateEvaluationInput, reason: string): Measurement {
  return { ...unmeasured(gate, MeasurementStatus.Inconclusive, { segment: null, candidate: input.candidate }, null, reason), requirement: "pass" };
}
