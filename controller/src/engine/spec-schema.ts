/**
 * The release-process part of a rollout spec, as written by people (YAML or JSON): who owns it, how it may
 * be undone, its stages and its promotion gates. The gate block keeps the seed's snake_case keys exactly;
 * everything else follows the rest of the rollout spec (camelCase). spec.ts checks what a schema cannot.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { REASONS_KEYWORD } from "../errors.ts";
import { NotificationsInput } from "./notify-spec.ts";
import { FinalizeInput } from "./lifecycle-spec.ts";

export const STAGE_KINDS = ["shadow", "canary", "bake"] as const;
export type StageKind = (typeof STAGE_KINDS)[number];

// At most two decimals (0.01% is one basis point, the filter's unit). Checked in spec.ts rather than with
// multipleOf, which fails on binary fractions (1 % 0.01 !== 0) in TypeBox's checker.
const percent = (description: string) => Type.Number({ minimum: 0, maximum: 100, description: `${description} At most two decimals.` });

const seconds = (description: string) => Type.Integer({ minimum: 0, maximum: 30 * 24 * 3600, description });

const rate = (description: string) => Type.Number({ minimum: 0, maximum: 1, description });

const OnDeadline = Type.Union([Type.Literal("fail"), Type.Literal("hold")], {
  description: "What a stage does when its deadline passes with a gate still Inconclusive or Error: fail it (stable gets all traffic) or hold for an operator.",
});

const stageTiming = {
  minDurationSeconds: Type.Optional(seconds("The stage lasts at least this long, whatever the gates say.")),
  minRequests: Type.Optional(
    Type.Integer({
      minimum: 0,
      description:
        "An extra floor (default 0): requests the new model must answer in the stage before it may advance, overall and in every segment value carrying at least segmentTrafficShare of the stage's traffic. The gates' own minimums come from their limits and the observed base rates.",
    }),
  ),
  deadlineSeconds: Type.Optional(seconds("By then every gate must have passed; see onDeadline.")),
  onDeadline: Type.Optional(OnDeadline),
};

export const StageObject = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "Defaults to 'shadow' or '<percent>%'." })),
    canaryPercent: Type.Optional(percent("Share of real traffic answered by the new model (sticky).")),
    shadow: Type.Optional(Type.Boolean({ description: "A shadow stage: the new model only receives a mirrored sample." })),
    shadowPercent: Type.Optional(
      percent(
        "Share of requests mirrored to the shadow during this stage (default in a shadow stage: the shadow section's percent when above 0, else 10; in a canary stage 0).",
      ),
    ),
    ...stageTiming,
  },
  { additionalProperties: false },
);
export type StageObject = Static<typeof StageObject>;

/** A stage as written: "shadow", a canary percent, or the full object. */
const StageInput = Type.Union([Type.Literal("shadow"), percent("A canary stage at this percent."), StageObject]);

export const StageDefaults = Type.Object(
  {
    ...stageTiming,
    segmentTrafficShare: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description: "A segment value 'has traffic' (and must reach minRequests) when it carries at least this share of the stage's requests.",
      }),
    ),
  },
  { additionalProperties: false },
);

// ---------------------------------------------------------------------------------------------------------
// Gates. One schema per named gate of the seed; any other name is a custom gate (PromQL, filter stat, or
// an externally posted KPI).

const during = Type.Optional(
  Type.Array(Type.Union(STAGE_KINDS.map((k) => Type.Literal(k))), {
    minItems: 1,
    uniqueItems: true,
    description: "Stage kinds the gate is evaluated in (default: every kind it has data for).",
  }),
);

const gate = <P extends Record<string, TSchema>>(properties: P, description: string) =>
  Type.Object({ ...properties, during }, { additionalProperties: false, description });

export const LatencyGate = gate(
  {
    maximum_regression_percent: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 1000, description: "Candidate quantile at most this much above stable's, in percent." }),
    ),
    tolerance_ms: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 60_000,
        description:
          "With maximum_regression_percent: a regression of at most this many milliseconds above stable's quantile never fails and is enough to pass, whatever the percent (default 2; 0 turns it off).",
      }),
    ),
    maximum: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: "Candidate quantile at most this many milliseconds." })),
  },
  "A latency quantile (latency_p<NN>_ms), from the filter's histograms.",
);

/** ttft_p<NN>_ms, tpot_p<NN>_ms: quantiles of streamed answers, limits as a latency gate's. */
export const TokenLatencyGate = gate(
  {
    maximum_regression_percent: LatencyGate.properties.maximum_regression_percent,
    tolerance_ms: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 60_000,
        description:
          "With maximum_regression_percent: a regression of at most this many milliseconds above stable's quantile never fails and is enough to pass (default 2 for ttft, 0.5 for tpot; 0 turns it off).",
      }),
    ),
    maximum: LatencyGate.properties.maximum,
  },
  "A quantile of streamed LLM answers' time to first token (ttft_p<NN>_ms) or time per output token (tpot_p<NN>_ms), from the filter's histograms.",
);

const rateLimits = {
  maximum: Type.Optional(rate("The candidate's rate is at most this.")),
  minimum: Type.Optional(rate("The candidate's rate is at least this.")),
  maximum_increase: Type.Optional(rate("Candidate rate minus stable rate is at most this.")),
  maximum_decrease: Type.Optional(rate("Stable rate minus candidate rate is at most this.")),
};

const ErrorRateGate = gate({ maximum: rateLimits.maximum, maximum_increase: rateLimits.maximum_increase }, "(5xx + local) / responses of the candidate.");

const CutOffRateGate = gate(
  { maximum: rateLimits.maximum, maximum_increase: rateLimits.maximum_increase },
  "Streams cut off (no finish reason, no [DONE], or gone before their end) / streamed answers of the candidate.",
);

const OutputTokensGate = gate(
  {
    maximum_increase: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: "Candidate mean minus stable mean, in tokens, at most this." })),
    maximum: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: "Candidate mean at most this many tokens." })),
    max_tokens: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        default: 1024,
        description: "The most tokens one answer can have (the max_tokens your deployment allows): the statistics' range; a tighter one decides sooner.",
      }),
    ),
  },
  "Mean completion tokens per answer (usage.completion_tokens; streams need stream_options.include_usage).",
);

const SchemaPassRateGate = gate(
  { minimum: rateLimits.minimum, maximum_decrease: rateLimits.maximum_decrease },
  "Answers valid against the rollout's output schema / answers validated.",
);

const ShadowRateGate = gate({ minimum: rateLimits.minimum }, "A shadow comparison rate (shadow vs primary answer for the same request).");

const ToolCallRateGate = gate(
  { minimum: rateLimits.minimum, maximum_decrease: rateLimits.maximum_decrease },
  "Tool calls whose arguments are JSON matching their tool's schema (output.tools) / tool calls.",
);

const ShadowExcessGate = gate(
  { maximum: rate("The shadow's disagreement rate with the primary minus stable's disagreement rate with itself (shadow.noisePercent) is at most this.") },
  "The shadow's disagreement beyond the noise of stable disagreeing with itself (needs shadow.noisePercent).",
);

const ConfidenceDriftGate = gate(
  { maximum: Type.Number({ exclusiveMinimum: 0, maximum: 1, description: "|mean confidence of candidate - of stable| at most this." }) },
  "Shift of the model's mean confidence (0..1).",
);

const range = Type.Tuple([Type.Number(), Type.Number()], { description: "[lowest, highest] value an observation can take." });

const ReviewScoreGate = gate(
  {
    minimum_delta: Type.Number({ description: "Candidate mean score minus stable mean score is at least this (negative: a tolerated drop)." }),
    range: Type.Optional(range),
  },
  "Human review scores posted per variant from outside.",
);

const PromQLGateSchema = gate(
  {
    query: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: "PromQL giving one number at evaluation time." })),
    maximum: Type.Optional(Type.Number()),
    minimum: Type.Optional(Type.Number()),
    empty_result: Type.Optional(
      Type.Union([Type.Literal("zero"), Type.Literal("inconclusive")], { description: "What a query matching no series means (default inconclusive)." }),
    ),
  },
  "A number from Prometheus.",
);

const STAT_PATTERN = "^[a-z0-9_]+(\\{[a-z0-9_]+=[a-z0-9_*-]+\\})?$";
const statName = Type.String({
  pattern: STAT_PATTERN,
  maxLength: 128,
  [REASONS_KEYWORD]: {
    pattern: "must be a counter as the metric provider names it, e.g. llm_outputs, responses{class=5xx}, outputs{schema=*} ('*' = any value)",
  },
});

/** An outgoing-webhook gate: an external judge asked with the rollout's evidence (README, "Webhook gates"). */
const WebhookJudgeInput = Type.Object(
  {
    url: Type.String({
      pattern: "^https?://[^\\s]+$",
      maxLength: 2048,
      description: "POSTed the rollout's evidence; answers {verdict: pass|fail|inconclusive, reason}. A secret: shown redacted.",
      [REASONS_KEYWORD]: { pattern: "must be an http:// or https:// URL" },
    }),
    timeoutMs: Type.Optional(
      Type.Integer({ minimum: 100, maximum: 300_000, default: 10_000, description: "No answer by then reads Error (the stage holds), never Failed." }),
    ),
    intervalSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 86_400,
        default: 30,
        description: "The judge is asked again this long after its last answer, and at once when a stage starts.",
      }),
    ),
  },
  { additionalProperties: false },
);

export const CustomGate = gate(
  {
    query: PromQLGateSchema.properties.query,
    empty_result: PromQLGateSchema.properties.empty_result,
    ratio: Type.Optional(
      Type.Object(
        { numerator: Type.Array(statName, { minItems: 1 }), denominator: Type.Array(statName, { minItems: 1 }) },
        { additionalProperties: false, description: "A rate of filter counters: sum(numerator) / sum(denominator)." },
      ),
    ),
    mean: Type.Optional(
      Type.String({
        pattern: "^[a-z0-9_]+$",
        maxLength: 128,
        description: "A filter histogram whose mean is gated, e.g. prompt_tokens.",
        [REASONS_KEYWORD]: { pattern: "must be a filter histogram name such as prompt_tokens or confidence_milli" },
      }),
    ),
    external: Type.Optional(Type.String({ pattern: "^[a-z][a-z0-9_]{0,63}$", description: "A KPI posted per variant from outside." })),
    webhook: Type.Optional(WebhookJudgeInput),
    variant: Type.Optional(
      Type.Union([Type.Literal("candidate"), Type.Literal("shadow")], {
        description: "Whose counters a ratio reads: the candidate of the stage (default) or always the shadow.",
      }),
    ),
    range: Type.Optional(range),
    maximum: Type.Optional(Type.Number()),
    minimum: Type.Optional(Type.Number()),
    maximum_increase: Type.Optional(Type.Number({ minimum: 0 })),
    maximum_decrease: Type.Optional(Type.Number({ minimum: 0 })),
    minimum_delta: Type.Optional(Type.Number()),
  },
  "A gate on a PromQL query, a ratio of filter counters, the mean of a filter histogram, an external KPI, or the verdict of an external judge (webhook).",
);

/** The gate names of the seed and of the filter's own stats, each with its schema. */
export const NAMED_GATES: Record<string, TSchema> = {
  latency_p95_ms: LatencyGate,
  error_rate: ErrorRateGate,
  schema_validation_pass_rate: SchemaPassRateGate,
  human_review_score: ReviewScoreGate,
  gpu_oom_events: PromQLGateSchema,
  shadow_agreement_rate: ShadowRateGate,
  shadow_status_match_rate: ShadowRateGate,
  confidence_drift: ConfidenceDriftGate,
  tool_call_valid_rate: ToolCallRateGate,
  shadow_disagreement_excess: ShadowExcessGate,
  ttft_p95_ms: TokenLatencyGate,
  tpot_p95_ms: TokenLatencyGate,
  stream_cut_off_rate: CutOffRateGate,
  output_tokens_per_answer: OutputTokensGate,
};
/** latency_p50_ms, latency_p99_ms, ...: any two-digit percentile. */
export const LATENCY_GATE_PATTERN = /^latency_p(\d{2})_ms$/;
/** ttft_p95_ms, tpot_p99_ms, ...: streamed answers' time to first token / per output token, any two-digit percentile. */
export const TOKEN_LATENCY_GATE_PATTERN = /^(ttft|tpot)_p(\d{2})_ms$/;
export const GATE_NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

export const PromotionGates = Type.Object(
  {
    latency_p95_ms: Type.Optional(LatencyGate),
    error_rate: Type.Optional(ErrorRateGate),
    schema_validation_pass_rate: Type.Optional(SchemaPassRateGate),
    human_review_score: Type.Optional(ReviewScoreGate),
    gpu_oom_events: Type.Optional(PromQLGateSchema),
    shadow_agreement_rate: Type.Optional(ShadowRateGate),
    shadow_status_match_rate: Type.Optional(ShadowRateGate),
    confidence_drift: Type.Optional(ConfidenceDriftGate),
    tool_call_valid_rate: Type.Optional(ToolCallRateGate),
    shadow_disagreement_excess: Type.Optional(ShadowExcessGate),
    ttft_p95_ms: Type.Optional(TokenLatencyGate),
    tpot_p95_ms: Type.Optional(TokenLatencyGate),
    stream_cut_off_rate: Type.Optional(CutOffRateGate),
    output_tokens_per_answer: Type.Optional(OutputTokensGate),
  },
  {
    additionalProperties: Type.Union([LatencyGate, CustomGate]),
    description: "Gate name -> limits, in the seed's format. Other names: latency_p<NN>_ms, or a custom gate.",
  },
);

export const EngineSpecInput = Type.Object(
  {
    owner: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "Who answers for this rollout (team or person)." })),
    rollbackCondition: Type.Optional(
      Type.String({ minLength: 1, maxLength: 4000, description: "In words: when this rollout must be undone. Required by policy." }),
    ),
    changeKind: Type.Optional(Type.Union([Type.Literal("major"), Type.Literal("minor")], { default: "minor" })),
    impact: Type.Optional(Type.Union([Type.Literal("high"), Type.Literal("normal")], { default: "normal" })),
    stages: Type.Optional(Type.Array(StageInput, { minItems: 1, maxItems: 20, description: "Default: shadow, 1, 5, 25, 50, 100." })),
    stageDefaults: Type.Optional(StageDefaults),
    promotion_gates: Type.Optional(PromotionGates),
    statistics: Type.Optional(
      Type.Object(
        {
          falseAlarmRate: Type.Optional(
            Type.Number({
              exclusiveMinimum: 0,
              maximum: 0.5,
              default: 0.05,
              description: "Bound on the chance that a new model exactly as good as stable is rolled back by a gate, over the whole rollout.",
            }),
          ),
          harmMultiple: Type.Optional(
            Type.Number({
              minimum: 1.5,
              maximum: 100,
              default: 4,
              description:
                "Before a gate must pass (its last stage below 100%), each stage waits until a candidate this many times past the gate's allowance (e.g. 4: a 4% error rate against a 1% maximum, a 40% p95 regression against 10%) would be expected to have failed.",
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    expectedTraffic: Type.Optional(
      Type.Object(
        {
          requestsPerSecond: Type.Number({
            exclusiveMinimum: 0,
            description: "Requests per second the rollout's path carries in total (stable and new model together).",
          }),
          smallestSegmentShare: Type.Optional(
            Type.Number({
              exclusiveMinimum: 0,
              maximum: 1,
              description: "Share of the traffic carried by the smallest declared segment value (default: an equal split).",
            }),
          ),
        },
        {
          additionalProperties: false,
          description:
            "The traffic you expect, so the response to a create can say how long each stage should take and warn about a stage that cannot conclude before its deadline; once traffic flows, the observed traffic is used instead.",
        },
      ),
    ),
    trafficMix: Type.Optional(
      Type.Object(
        {
          check: Type.Optional(Type.Boolean({ default: true })),
          holdOnMismatch: Type.Optional(Type.Boolean({ default: false, description: "Hold the stage (not only warn) while the mixes differ." })),
          alpha: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 0.5, default: 0.001 })),
          minDifference: Type.Optional(
            Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: "Smallest total-variation distance between the mixes worth a warning." }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    finalize: Type.Optional(FinalizeInput),
    notifications: Type.Optional(NotificationsInput),
  },
  { additionalProperties: false },
);
export type EngineSpecInput = Static<typeof EngineSpecInput>;

/** The top-level keys of the release-process part, to pick it out of a whole rollout spec. */
export const ENGINE_SPEC_KEYS: readonly string[] = Object.keys(EngineSpecInput.properties);
