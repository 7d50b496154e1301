/**
 * What a webhook gate's judge was asked and what it answered (engine/gates-webhook.ts judges it), and the
 * documented answer body.
 */
const JUDGE_VERDICTS = ["pass", "fail", "inconclusive"] as const;
export type JudgeVerdict = (typeof JUDGE_VERDICTS)[number];

/** What the judge was asked about: the stage and candidate, and when (engine clock, ms). */
export interface JudgeQuestion {
  stageIndex: number;
  candidate: "canary" | "shadow";
  askedAt: number;
}

export type JudgeAnswer =
  | (JudgeQuestion & { status: "answered"; verdict: JudgeVerdict; reason: string; score: number | null; answeredAt: number })
  | (JudgeQuestion & { status: "error"; error: string; answeredAt: number });

/** One webhook gate's state at a tick: its latest answer, and the question still open, if any. */
export interface JudgeReading {
  answer: JudgeAnswer | null;
  pending: JudgeQuestion | null;
}

/**
 * The judge's answer body -> a verdict, or why it is not one. Documented shape:
 * `{"verdict": "pass" | "fail" | "inconclusive", "reason": "...", "score"?: number}`.
 */
export function parseJudgeAnswer(body: unknown): { verdict: JudgeVerdict; reason: string; score: number | null } | { error: string } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { error: "answered something other than a JSON object" };
  const b = body as Record<string, unknown>;
  const verdict = typeof b.verdict === "string" ? b.verdict.trim().toLowerCase() : null;
  if (verdict === null || !(JUDGE_VERDICTS as readonly string[]).includes(verdict)) {
    return { error: `answered verdict ${JSON.stringify(b.verdict ?? null).slice(0, 40)}; expected "pass", "fail" or "inconclusive"` };
  }
  const reason = typeof b.reason === "string" ? b.reason.slice(0, 2000) : "";
  const score = typeof b.score === "number" && Number.isFinite(b.score) ? b.score : null;
  return { verdict: verdict as JudgeVerdict, reason, score };
}
