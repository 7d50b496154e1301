import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { describeSpecErrors, parseEngineSpec, type SpecContext } from "../../controller/src/engine/spec.ts";

const CONTEXT: SpecContext = { hasOutputSchema: true, hasShadow: true };
const BASE = { owner: "team-fraud", rollbackCondition: "errors above 1% in any tenant tier" };

// The seed's block, character for character (DESIGN.md).
const SEED_BLOCK = `
promotion_gates:
  latency_p95_ms:
    maximum_regression_percent: 10
  error_rate:
    maximum: 0.01
  schema_validation_pass_rate:
    minimum: 0.995
  human_review_score:
    minimum_delta: -0.02
  gpu_oom_events:
    maximum: 0
`;

function errorsOf(raw: unknown, context: Partial<SpecContext> = {}) {
  const result = parseEngineSpec(raw, { ...CONTEXT, ...context });
  if (result.ok) throw new Error("expected the spec to be refused");
  return result.errors;
}

function specOf(raw: unknown, context: Partial<SpecContext> = {}) {
  const result = parseEngineSpec(raw, { ...CONTEXT, ...context });
  if (!result.ok) throw new Error(`expected the spec to parse: ${JSON.stringify(result.errors)}`);
  return result.spec;
}

describe("the seed's gate block", () => {
  it("is accepted as written, except that gpu_oom_events must name its Prometheus query", () => {
    const raw = { ...BASE, ...parseYaml(SEED_BLOCK) };
    expect(errorsOf(raw)).toEqual([
      { path: "/promotion_gates/gpu_oom_events/query", reason: expect.stringMatching(/^is required: GPU OOM events are not visible on the data path/) },
    ]);
  });

  it("with the query, becomes the engine's gates with the seed's thresholds", () => {
    const yaml = SEED_BLOCK.replace("    maximum: 0\n", '    maximum: 0\n    query: sum(increase(gpu_oom_total{model="fraud"}[5m]))\n');
    const spec = specOf({ ...BASE, ...parseYaml(yaml) });
    const byName = Object.fromEntries(spec.gates.map((g) => [g.name, g]));
    expect(byName.latency_p95_ms).toMatchObject({ kind: "quantile", quantile: 0.95, limits: { maxRatio: 1.1 } });
    expect(byName.error_rate).toMatchObject({ kind: "proportion", limits: { maximum: 0.01 } });
    expect(byName.schema_validation_pass_rate).toMatchObject({ kind: "proportion", limits: { minimum: 0.995 } });
    expect(byName.human_review_score).toMatchObject({ kind: "external", metric: "human_review_score", range: [0, 1], limits: { minDelta: -0.02 } });
    expect(byName.gpu_oom_events).toMatchObject({ kind: "promql", query: 'sum(increase(gpu_oom_total{model="fraud"}[5m]))', limits: { maximum: 0 } });
    expect(spec.gates.map((g) => g.name)).toEqual(["latency_p95_ms", "error_rate", "schema_validation_pass_rate", "human_review_score", "gpu_oom_events"]);
  });
});

describe("defaults", () => {
  it("stages shadow, 1, 5, 25, 50, 100 with the documented timing; 100 is the bake stage", () => {
    const spec = specOf({ ...BASE, promotion_gates: { schema_validation_pass_rate: { minimum: 0.99 } } });
    expect(spec.stages.map((s) => [s.name, s.kind, s.canaryPercent, s.shadowPercent])).toEqual([
      ["shadow", "shadow", 0, 10],
      ["1%", "canary", 1, 0],
      ["5%", "canary", 5, 0],
      ["25%", "canary", 25, 0],
      ["50%", "canary", 50, 0],
      ["100%", "bake", 100, 0],
    ]);
    expect(spec.stages[0]).toMatchObject({ minDurationSeconds: 20, minRequests: 0, deadlineSeconds: 3600, onDeadline: "fail" });
    expect(spec).toMatchObject({
      changeKind: "minor",
      impact: "normal",
      falseAlarmRate: 0.05,
      harmMultiple: 4,
      expectedTraffic: null,
      endsInReview: false,
      segmentTrafficShare: 0.05,
    });
  });

  it("takes statistics.harmMultiple and expectedTraffic", () => {
    const spec = specOf(
      { ...BASE, statistics: { harmMultiple: 3 }, expectedTraffic: { requestsPerSecond: 120, smallestSegmentShare: 0.1 } },
      { hasOutputSchema: false },
    );
    expect(spec).toMatchObject({ harmMultiple: 3, expectedTraffic: { requestsPerSecond: 120, smallestSegmentShare: 0.1 } });
    expect(specOf({ ...BASE, expectedTraffic: { requestsPerSecond: 5 } }, { hasOutputSchema: false }).expectedTraffic).toEqual({
      requestsPerSecond: 5,
      smallestSegmentShare: null,
    });
  });

  it("leaves the shadow stage out when the rollout has no shadow target", () => {
    const spec = specOf({ ...BASE }, { hasOutputSchema: false, hasShadow: false });
    expect(spec.stages.map((s) => s.name)).toEqual(["1%", "5%", "25%", "50%", "100%"]);
  });

  it("takes the shorthand and per-stage overrides, stageDefaults in between", () => {
    const spec = specOf(
      {
        ...BASE,
        stages: ["shadow", 2.5, { canaryPercent: 20, minDurationSeconds: 60, onDeadline: "hold" }, { name: "all", canaryPercent: 100 }],
        stageDefaults: { minRequests: 100, deadlineSeconds: 900 },
      },
      { hasOutputSchema: false },
    );
    expect(spec.stages.map((s) => [s.name, s.canaryPercent, s.minDurationSeconds, s.minRequests, s.deadlineSeconds, s.onDeadline])).toEqual([
      ["shadow", 0, 20, 100, 900, "fail"],
      ["2.5%", 2.5, 20, 100, 900, "fail"],
      ["20%", 20, 60, 100, 900, "hold"],
      ["all", 100, 20, 100, 900, "fail"],
    ]);
  });
});

describe("every bad field is reported with its pointer", () => {
  const cases: Array<[string, Record<string, unknown>, Array<[string, RegExp]>]> = [
    ["not an object", [] as unknown as Record<string, unknown>, [["", /must be an object/]]],
    ["unknown top-level field", { ...BASE, stagez: [] }, [["/stagez", /is not a known field \(known: owner, rollbackCondition/]]],
    [
      "wrong enum",
      { ...BASE, changeKind: "huge", impact: 3 },
      [
        ["/changeKind", /must be one of "major", "minor"/],
        ["/impact", /must be one of "high", "normal"/],
      ],
    ],
    ["stage that is neither", { ...BASE, stages: [true, 100] }, [["/stages/0", /must be 'shadow', a canary percent/]]],
    ["percent out of range in shorthand", { ...BASE, stages: [1, 150] }, [["/stages/1", /must be at most 100/]]],
    ["three decimals", { ...BASE, stages: [1.005, 100] }, [["/stages/0", /at most two decimals/]]],
    ["weights must grow", { ...BASE, stages: [5, 1, 100] }, [["/stages/1", /must be above the previous stage's 5%/]]],
    ["last stage not 100", { ...BASE, stages: [1, 50] }, [["/stages/1", /the last stage must be at 100%/]]],
    ["canary stage without percent", { ...BASE, stages: [{ minDurationSeconds: 10 }, 100] }, [["/stages/0", /needs canaryPercent, or shadow: true/]]],
    [
      "shadow stage with traffic",
      { ...BASE, stages: [{ shadow: true, canaryPercent: 5 }, 1, 100] },
      [["/stages/0/canaryPercent", /a shadow stage sends no real traffic/]],
    ],
    ["shadow after canary", { ...BASE, stages: [1, "shadow", 100] }, [["/stages/1", /must come before the canary stages/]]],
    [
      "deadline before minimum duration",
      { ...BASE, stages: [{ canaryPercent: 1, minDurationSeconds: 600, deadlineSeconds: 300 }, 100] },
      [["/stages/0/deadlineSeconds", /the deadline \(300s\) must be after the minimum duration \(600s\)/]],
    ],
    ["unknown stage field", { ...BASE, stages: [{ canaryPercent: 1, minDuration: 5 }, 100] }, [["/stages/0/minDuration", /is not a known field/]]],
    [
      "duplicate stage names",
      {
        ...BASE,
        stages: [
          { name: "a", canaryPercent: 1 },
          { name: "a", canaryPercent: 100 },
        ],
      },
      [["/stages/1/name", /duplicate stage name 'a'/]],
    ],
    [
      "gate limit of the wrong type",
      { ...BASE, promotion_gates: { error_rate: { maximum: "1%" } } },
      [["/promotion_gates/error_rate/maximum", /must be a number/]],
    ],
    [
      "gate with an unknown key",
      { ...BASE, promotion_gates: { error_rate: { max: 0.01 } } },
      [["/promotion_gates/error_rate/max", /is not a known field \(known: maximum, maximum_increase, during\)/]],
    ],
    [
      "a rate of exactly 0",
      { ...BASE, promotion_gates: { error_rate: { maximum: 0 } } },
      [["/promotion_gates/error_rate/maximum", /must be above 0: a rate of exactly 0 can never be shown/]],
    ],
    [
      "latency gate without a limit",
      { ...BASE, promotion_gates: { latency_p99_ms: {} } },
      [["/promotion_gates/latency_p99_ms", /needs at least one limit: maximum_regression_percent, maximum/]],
    ],
    [
      "unknown gate",
      { ...BASE, promotion_gates: { gpu_temperature: { maximum: 80 } } },
      [["/promotion_gates/gpu_temperature", /is not a known gate .* a custom gate needs one of query/]],
    ],
    [
      "custom gate with two sources",
      { ...BASE, promotion_gates: { restarts: { query: "x", mean: "prompt_tokens", maximum: 1 } } },
      [["/promotion_gates/restarts", /needs exactly one of query, ratio, mean, external, webhook \(has query, mean\)/]],
    ],
    [
      "PromQL gate with a relative limit",
      { ...BASE, promotion_gates: { restarts: { query: "sum(x)", maximum_increase: 1 } } },
      [
        ["/promotion_gates/restarts/maximum_increase", /compares one number with maximum and\/or minimum/],
        ["/promotion_gates/restarts", /needs at least one limit: maximum, minimum/],
      ],
    ],
    [
      "mean gate without range",
      { ...BASE, promotion_gates: { tokens: { mean: "prompt_tokens", maximum_increase: 50 } } },
      [["/promotion_gates/tokens/range", /is required: the statistics need the lowest and highest value/]],
    ],
    [
      "ratio counter name",
      { ...BASE, promotion_gates: { abstain_rate: { ratio: { numerator: ["Abstained!"], denominator: ["llm_outputs"] }, maximum: 0.1 } } },
      [["/promotion_gates/abstain_rate/ratio/numerator/0", /must be a counter as the metric provider names it/]],
    ],
    [
      "ratio limit outside [0, 1]",
      { ...BASE, promotion_gates: { abstain_rate: { ratio: { numerator: ["abstained"], denominator: ["llm_outputs"] }, maximum: 5 } } },
      [["/promotion_gates/abstain_rate/maximum", /must be between 0 and 1/]],
    ],
    [
      "gate name not a label",
      { ...BASE, promotion_gates: { "Bad/Name": { query: "x", maximum: 1 } } },
      [["/promotion_gates/Bad~1Name", /gate names are 1 to 64 of a-z/]],
    ],
    [
      "review delta bigger than the range",
      { ...BASE, promotion_gates: { human_review_score: { minimum_delta: -2 } } },
      [["/promotion_gates/human_review_score/minimum_delta", /smaller in size than the score range/]],
    ],
    [
      "shadow-only gate without a shadow stage",
      { ...BASE, stages: [1, 100], promotion_gates: { shadow_agreement_rate: { minimum: 0.9 } } },
      [["/promotion_gates/shadow_agreement_rate", /evaluated only in shadow stages, and this rollout has none/]],
    ],
    ["false-alarm rate out of range", { ...BASE, statistics: { falseAlarmRate: 0 } }, [["/statistics/falseAlarmRate", /must be above 0/]]],
    ["harm multiple too small", { ...BASE, statistics: { harmMultiple: 1 } }, [["/statistics/harmMultiple", /must be at least 1.5/]]],
    [
      "expected traffic without a rate",
      { ...BASE, expectedTraffic: { smallestSegmentShare: 2 } },
      [
        ["/expectedTraffic/requestsPerSecond", /is required/],
        ["/expectedTraffic/smallestSegmentShare", /must be at most 1/],
      ],
    ],
  ];

  it.each(cases)("%s", (_name, raw, expected) => {
    const errors = errorsOf(raw, { hasOutputSchema: false });
    for (const [path, reason] of expected) {
      expect(errors, JSON.stringify(errors)).toContainEqual({ path, reason: expect.stringMatching(reason) });
    }
  });

  it("reports all problems of one spec at once", () => {
    const errors = errorsOf(
      { stages: [5, 1], stageDefaults: { minDurationSeconds: -1 }, promotion_gates: { error_rate: { maximum: 2 }, gpu_oom_events: { maximum: 0 } } },
      { hasOutputSchema: false },
    );
    const paths = errors.map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "/owner",
        "/rollbackCondition",
        "/stageDefaults/minDurationSeconds",
        "/stages/1",
        "/promotion_gates/error_rate/maximum",
        "/promotion_gates/gpu_oom_events/query",
      ]),
    );
    expect(describeSpecErrors("fraud-model", errors)).toMatch(/^rollout fraud-model: invalid spec: .*\/owner is required/);
  });
});

describe("policy", () => {
  const cases: Array<[string, Record<string, unknown>, Partial<SpecContext>, string, RegExp]> = [
    ["owner is required", { rollbackCondition: "x" }, {}, "/owner", /is required \(policy: every rollout names who answers for it\)/],
    ["rollback condition is required", { owner: "a" }, {}, "/rollbackCondition", /is required \(policy/],
    ["a blank owner is no owner", { ...BASE, owner: "   " }, {}, "/owner", /must not be blank/],
    [
      "a major change is shadowed first",
      { ...BASE, changeKind: "major", stages: [1, 100] },
      { hasOutputSchema: false },
      "/stages",
      /needs a shadow stage \(policy: a major change/,
    ],
    [
      "100% only after a canary stage",
      { ...BASE, stages: ["shadow", 100] },
      { hasOutputSchema: false },
      "/stages/1",
      /100% must come after a canary stage below 100% \(policy\)/,
    ],
    [
      "an output schema requires the schema gate",
      { ...BASE },
      { hasOutputSchema: true },
      "/promotion_gates/schema_validation_pass_rate",
      /is required: the rollout has an output schema/,
    ],
    [
      "a schema gate needs a schema",
      { ...BASE, promotion_gates: { schema_validation_pass_rate: { minimum: 0.99 } } },
      { hasOutputSchema: false },
      "/promotion_gates/schema_validation_pass_rate",
      /needs an output schema/,
    ],
    [
      "a shadow stage needs a shadow target",
      { ...BASE, stages: ["shadow", 1, 100] },
      { hasOutputSchema: false, hasShadow: false },
      "/stages/0",
      /the rollout has no shadow target/,
    ],
  ];

  it.each(cases)("%s", (_name, raw, context, path, reason) => {
    expect(errorsOf(raw, context)).toContainEqual({ path, reason: expect.stringMatching(reason) });
  });

  it("each rule can be switched off", () => {
    const policy = {
      requireShadowForMajor: false,
      requireSchemaGate: false,
      requireCanaryBeforeFull: false,
      requireOwnerAndRollbackCondition: false,
      requireReviewForHighImpact: false,
    };
    const spec = specOf({ changeKind: "major", impact: "high", stages: [100] }, { hasOutputSchema: true, policy });
    expect(spec).toMatchObject({ owner: null, rollbackCondition: null, endsInReview: false });
  });

  it("a high-impact rollout ends in review", () => {
    expect(specOf({ ...BASE, impact: "high" }, { hasOutputSchema: false }).endsInReview).toBe(true);
    expect(specOf({ ...BASE, impact: "normal" }, { hasOutputSchema: false }).endsInReview).toBe(false);
  });
});
