/**
 * Asks the judges of webhook gates (a test suite, an evaluation job, an LLM judge): a POST with the rollout's
 * evidence, answered `{"verdict": "pass" | "fail" | "inconclusive", "reason": "..."}`. The driver calls
 * readings() on every tick; it starts the questions that are due and returns at once with the latest answers,
 * which step() judges (engine/gates-webhook.ts). A judge is never waited for by a tick: a slow one only
 * leaves its gate Inconclusive ("waiting for the judge's answer") until it answers, and a timeout, a refused
 * connection, a non-2xx or an answer of the wrong shape is Error (the stage holds), never Failed.
 *
 * A judge is asked at once when a stage starts, and again intervalSeconds after its last answer; one
 * question per gate at a time. Answers live in memory: a restarted controller asks again.
 */
import type { FastifyBaseLogger } from "fastify";
import { Counter, type Registry } from "prom-client";
import {
  candidateOf,
  isTerminal,
  Phase,
  parseJudgeAnswer,
  stageAt,
  type JudgeAnswer,
  type JudgeQuestion,
  type JudgeReading,
  type WebhookGate,
} from "../engine/index.ts";
import { describeFetchError } from "../net.ts";
import { compactEvidence, linksOf } from "../notify/evidence.ts";
import { redactUrl, scrubUrl } from "../secrets.ts";
import type { Rollout } from "../rollouts/model.ts";

interface WebhookJudgesOptions {
  clock?: () => Date;
  log?: FastifyBaseLogger;
  /** The controller's public base URL, for the links in the question. */
  publicUrl?: string | null;
  registry?: Registry;
}

interface Entry {
  incarnation: number;
  answer: JudgeAnswer | null;
  pending: JudgeQuestion | null;
}

export class WebhookJudges {
  readonly #clock: () => Date;
  readonly #log: FastifyBaseLogger | undefined;
  readonly #publicUrl: string | null;
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, { abort: AbortController; done: Promise<void> }>();
  readonly #answers: Counter<"gate" | "result"> | null;
  #stopped = false;

  constructor(options: WebhookJudgesOptions = {}) {
    this.#clock = options.clock ?? (() => new Date());
    this.#log = options.log;
    this.#publicUrl = options.publicUrl ?? null;
    this.#answers = options.registry
      ? new Counter({
          name: "modelroll_judge_answers_total",
          help: "Answers of webhook-gate judges by gate and result: pass, fail, inconclusive, or error (no usable answer: timeout, refused, non-2xx, wrong shape).",
          labelNames: ["gate", "result"],
          registers: [options.registry],
        })
      : null;
  }

  /** The latest answer of each webhook gate of the rollout; starts the questions due. Never waits. */
  readings(rollout: Rollout, now: number): Record<string, JudgeReading> | undefined {
    const state = rollout.engine?.state;
    if (!state || state.phase === Phase.Pending || isTerminal(state.phase)) return undefined;
    const gates = state.spec.gates.filter((g): g is WebhookGate => g.kind === "webhook");
    if (gates.length === 0) return undefined;
    const awaiting = state.phase === Phase.AwaitingReview;
    const stageIndex = awaiting ? state.spec.stages.length - 1 : state.stageIndex;
    const kind = awaiting ? "bake" : stageAt(state.spec, stageIndex).kind;
    const candidate = candidateOf(kind);
    const incarnation = rollout.createdAt.getTime();
    const out: Record<string, JudgeReading> = {};
    for (const gate of gates) {
      const key = `${rollout.spec.name}\u0000${gate.name}`;
      let entry = this.#entries.get(key);
      if (!entry || entry.incarnation !== incarnation) {
        entry = { incarnation, answer: null, pending: null };
        this.#entries.set(key, entry);
      }
      if (gate.during.includes(kind) && entry.pending === null && !this.#stopped) {
        const a = entry.answer;
        const stale = a === null || a.stageIndex !== stageIndex || a.candidate !== candidate || a.askedAt < (state.stageStartedAt ?? 0);
        if (stale || now - a.answeredAt >= gate.intervalSeconds * 1000) {
          this.#ask(key, entry, gate, rollout, { stageIndex, candidate, askedAt: now });
        }
      }
      out[gate.name] = { answer: entry.answer, pending: entry.pending };
    }
    return out;
  }

  /** Stops asking; aborts the questions open (their gates read Error if a tick still comes). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { abort } of this.#inFlight.values()) abort.abort();
    await Promise.all([...this.#inFlight.values()].map((f) => f.done));
  }

  /** Waits for the questions open (tests). */
  async settle(): Promise<void> {
    await Promise.all([...this.#inFlight.values()].map((f) => f.done));
  }

  #ask(key: string, entry: Entry, gate: WebhookGate, rollout: Rollout, question: JudgeQuestion): void {
    entry.pending = question;
    const abort = new AbortController();
    const done = this.#call(gate, rollout, question, abort.signal)
      .then((answer) => {
        entry.answer = answer;
        this.#answers?.inc({ gate: gate.name, result: answer.status === "answered" ? answer.verdict : "error" });
        if (answer.status === "error") {
          this.#log?.warn(
            { rollout: rollout.spec.name, gate: gate.name, judge: redactUrl(gate.url), error: answer.error },
            "webhook gate: the judge did not answer",
          );
        }
      })
      .finally(() => {
        entry.pending = null;
        this.#inFlight.delete(key);
      });
    this.#inFlight.set(key, { abort, done });
  }

  async #call(gate: WebhookGate, rollout: Rollout, question: JudgeQuestion, signal: AbortSignal): Promise<JudgeAnswer> {
    const error = (text: string): JudgeAnswer => ({ ...question, status: "error", error: scrubUrl(text, gate.url), answeredAt: this.#clock().getTime() });
    let body: unknown;
    try {
      const response = await fetch(gate.url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "modelroll-controller" },
        body: JSON.stringify(judgeQuestion(gate, rollout, question, this.#publicUrl)),
        signal: AbortSignal.any([signal, AbortSignal.timeout(gate.timeoutMs)]),
      });
      const text = await response.text();
      if (response.status < 200 || response.status > 299) return error(`the judge answered HTTP ${response.status}`);
      try {
        body = JSON.parse(text);
      } catch {
        return error(`the judge answered HTTP ${response.status} with a body that is not JSON`);
      }
    } catch (e) {
      return error(signal.aborted ? "the controller stopped before the judge answered" : describeFetchError(e, gate.timeoutMs));
    }
    const parsed = parseJudgeAnswer(body);
    if ("error" in parsed) return error(`the judge ${parsed.error}`);
    return { ...question, status: "answered", ...parsed, answeredAt: this.#clock().getTime() };
  }
}

/**
 * What the judge is asked (documented in the README, "Webhook gates"): the question (stage, candidate, time),
 * the rollout and its owner, and the evidence of the latest evaluation (every other gate's measurements).
 */
function judgeQuestion(gate: WebhookGate, rollout: Rollout, question: JudgeQuestion, publicUrl: string | null): Record<string, unknown> {
  const engine = rollout.engine;
  if (engine === null) throw new Error(`rollout ${rollout.spec.name}: webhook gate ${gate.name} asked about a rollout the engine does not manage`);
  const state = engine.state;
  const stage = stageAt(state.spec, question.stageIndex);
  const models = state.spec.models;
  const evaluation = engine.lastEvaluation;
  return {
    gate: gate.name,
    rollout: rollout.spec.name,
    askedAt: new Date(question.askedAt).toISOString(),
    phase: state.phase,
    stage: {
      index: stage.index,
      name: stage.name,
      kind: stage.kind,
      of: state.spec.stages.length,
      startedAt: state.stageStartedAt === null ? null : new Date(state.stageStartedAt).toISOString(),
    },
    candidate: question.candidate,
    weights: { canaryPercent: rollout.canaryPercent, shadowPercent: rollout.shadowPercent },
    owner: state.spec.owner,
    rollbackCondition: state.spec.rollbackCondition,
    models: models ? { stable: models.stable, canary: models.canary } : null,
    traffic: evaluation?.traffic ?? null,
    evaluatedAt: evaluation ? new Date(evaluation.at).toISOString() : null,
    evidence: evaluation ? compactEvidence(evaluation.measurements, gate.name) : [],
    links: linksOf(publicUrl, rollout.spec.name),
  };
}
