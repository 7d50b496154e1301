// The dashboard's tolerant reading of the API (dashboard/src/read*.ts): today's shapes, the richer ones newer
// controllers may send, and anything at all without throwing.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { actionsFor, buildPicture, gateRow } from "../../dashboard/src/read.ts";
import { readSeries } from "../../dashboard/src/read-series.ts";
import { readStats, segmentRows } from "../../dashboard/src/read-stats.ts";

const NOW = Date.UTC(2026, 0, 1, 12);
const measurement = (gate: string, status: string, segment: { dimension: string; value: string } | null, extra: Record<string, unknown> = {}) => ({
  gate,
  status,
  segment,
  candidate: "canary",
  stableValue: 0.001,
  candidateValue: status === "Failed" ? 0.07 : 0.002,
  threshold: { kind: "maximum", value: 0.01 },
  unit: "ratio",
  sampleSizes: { stable: 900, candidate: 100 },
  intervals: { candidate: { lower: 0.019, upper: 0.18 } },
  severity: status === "Failed" ? 6 : 0,
  reason: `${gate} ${status}`,
  ...extra,
});

const summary = {
  name: "fraud-model",
  revision: 4,
  managed: true,
  phase: "Canary",
  stage: { index: 1, name: "10%" },
  canaryPercent: 10,
  shadowPercent: 0,
  observedCanaryPercent: 9.7,
  owner: "team-fraud",
  rollbackCondition: "errors above 1%",
  stageStartedAt: new Date(NOW - 90_000).toISOString(),
  pausedSecondsInStage: 30,
  plan: [
    { index: 0, name: "shadow", minDurationSeconds: 60, minRequests: 300 },
    { index: 1, name: "10%", minDurationSeconds: 600, minRequests: 3000 },
    { index: 2, name: "100%", minDurationSeconds: 600, minRequests: 3000 },
  ],
  evaluation: {
    at: NOW - 1000,
    measurements: [
      measurement("error_rate", "Inconclusive", null),
      measurement("error_rate", "Failed", { dimension: "tier", value: "pro" }),
      measurement("latency_p95_ms", "Passed", null, {
        unit: "ms",
        stableValue: 40,
        candidateValue: 44,
        threshold: { kind: "maxRatio", value: 1.1 },
        intervals: { comparison: { lower: 0.9, upper: null } },
      }),
    ],
    blocking: ["minimum duration: 60 of 600 s"],
    trafficMix: [{ dimension: "tier", pValue: 0.2, totalVariation: 0.03, mismatch: false, reason: "same mix" }],
  },
  gateKinds: { error_rate: "proportion", gpu_memory: "promql" },
};

describe("buildPicture", () => {
  it("reads today's stream summary: plan, stage progress, gates worst first, holds", () => {
    const p = buildPicture({ summary }, NOW);
    expect(p).toMatchObject({
      name: "fraud-model",
      phase: "Canary",
      revision: 4,
      owner: "team-fraud",
      canaryPercent: 10,
      observedCanaryPercent: 9.7,
      minDurationSeconds: 600,
      minRequests: 3000,
      stageRequests: 100,
    });
    expect(p.stages.map((s) => s.state)).toEqual(["done", "current", "pending"]);
    expect(p.stagesComplete).toBe(true);
    expect(p.gates.map((g) => `${g.gate} ${g.slice} ${g.verdict}`)).toEqual([
      "error_rate tier=pro Failed",
      "error_rate overall Inconclusive",
      "latency_p95_ms overall Passed",
    ]);
    expect(p.gatesSource).toBe("live evaluation");
    expect(p.holding).toEqual(["minimum duration: 60 of 600 s"]);
    expect(p.stageStartedAt).toBe(NOW - 90_000);
    expect(p.actions).toEqual(["promote", "pause", "rollback", "fail"]);
    expect(p.trafficMix[0]).toMatchObject({ dimension: "tier", mismatch: false });
  });

  it("reads the view's live evaluation (holds, samples needed, time to a decision), with the engine's limits", () => {
    const view = {
      name: "fraud-model",
      phase: "Canary",
      managed: true,
      revision: 6,
      stage: { index: 1, name: "10%" },
      evaluation: {
        at: new Date(NOW - 1000).toISOString(),
        secondsToDecision: 420,
        holds: [{ text: "error_rate overall: 800 of 3400 samples", gate: "error_rate", slice: "overall", samples: 800, needed: 3400, seconds: 420 }],
        gates: [
          {
            gate: "error_rate",
            slice: "overall",
            status: "Inconclusive",
            unit: "ratio",
            value: 0.002,
            stableValue: 0.001,
            interval: { lower: 0, upper: 0.02 },
            comparison: null,
            samples: 800,
            stableSamples: 7000,
            needed: { pass: 3400, detect: 240 },
            reason: "not enough data yet",
          },
          {
            gate: "error_rate",
            slice: "tier=pro",
            status: "Failed",
            unit: "ratio",
            value: 0.07,
            stableValue: 0.001,
            interval: { lower: 0.03, upper: 0.12 },
            comparison: null,
            samples: 100,
            stableSamples: 900,
            needed: null,
            reason: "worse",
          },
        ],
      },
    };
    const p = buildPicture({ summary, view }, NOW);
    expect(p.holding).toEqual(["error_rate overall: 800 of 3400 samples"]);
    expect(p.etaSeconds).toBe(420);
    expect(p.gatesSource).toBe("live evaluation");
    expect(p.gates.map((g) => `${g.slice} ${g.verdict}`)).toEqual(["tier=pro Failed", "overall Inconclusive"]);
    // The limit and the severity come from the engine's measurement of the same gate and slice (the stream's).
    expect(p.gates[0]).toMatchObject({ candidate: 0.07, limit: "≤ 1.00%", interval: "[3.00%, 12.0%]", samples: { stable: 900, candidate: 100 }, severity: 6 });
    expect(p.gates[1].needed).toEqual({ stable: null, candidate: 3400 });
    expect(actionsFor(true, "Succeeded", 100, 0)).toEqual(["finalize", "undo"]);
  });

  it("prefers what a newer controller puts in the view: its evaluation with samples needed and an ETA", () => {
    const view = {
      name: "fraud-model",
      phase: "Canary",
      managed: true,
      revision: 5,
      stage: { index: 1, name: "10%" },
      spec: { owner: "team-x", stages: ["shadow", 10, 100] },
      evaluation: { measurements: [measurement("error_rate", "Inconclusive", null, { needed: { stable: 2000, candidate: 1200 } })], etaSeconds: 240 },
      pending: { step: "finalize: release the old stable" },
      archivedAt: "2026-01-02T00:00:00Z",
    };
    const p = buildPicture({ summary, view }, NOW);
    expect(p.revision).toBe(5);
    expect(p.owner).toBe("team-x");
    expect(p.gates).toHaveLength(1);
    expect(p.gates[0].needed).toEqual({ stable: 2000, candidate: 1200 });
    expect(p.etaSeconds).toBe(240);
    expect(p.pending).toBe("finalize: release the old stable");
    expect(p.archived).toBe("2026-01-02T00:00:00Z");
  });

  it("shows an ended rollout from its last decision, without holds or actions", () => {
    const history = { decisions: [{ at: NOW - 5000, kind: "rolledBack", measurements: [measurement("error_rate", "Failed", null)] }] };
    const report = {
      why: "canary worse overall",
      timeline: [
        {
          at: new Date(NOW - 5000).toISOString(),
          kind: "rolledBack",
          from: "Canary",
          to: "RolledBack",
          stage: "10%",
          actor: "engine",
          reason: "canary worse overall",
        },
      ],
    };
    const p = buildPicture({ summary: { ...summary, phase: "RolledBack" }, report, history }, NOW);
    expect(p.gatesSource).toBe("last decision");
    expect(p.gates[0].verdict).toBe("Failed");
    expect(p.holding).toEqual([]);
    expect(p.actions).toEqual([]);
    expect(p.why).toBe("canary worse overall");
    expect(p.timeline[0].evidence[0].verdict).toBe("Failed");
    expect(p.stages.find((s) => s.name === "10%")!.state).toBe("ended");
  });

  it("words a gate's limit, difference and interval in its unit", () => {
    const latency = gateRow(
      measurement("latency_p95_ms", "Passed", null, {
        unit: "ms",
        stableValue: 40,
        candidateValue: 44,
        threshold: { kind: "maxRatio", value: 1.1 },
        intervals: { comparison: { lower: 0.9, upper: null } },
      }),
    );
    expect(latency).toMatchObject({ comparison: "×1.1", limit: "ratio ≤ ×1.1", interval: "[×0.9, ∞]" });
    const errors = gateRow(measurement("error_rate", "Failed", null));
    expect(errors).toMatchObject({ limit: "≤ 1.00%", interval: "[1.90%, 18.0%]", comparison: "" });
    expect(gateRow(measurement("error_rate", "Passed", null, { threshold: { kind: "maxDelta", value: 0.005 } })).comparison).toBe("+0.100 pp");
  });

  it("offers the actions each phase allows", () => {
    expect(actionsFor(true, "Paused", 10, 0)).toEqual(["resume", "rollback", "fail"]);
    expect(actionsFor(true, "AwaitingReview", 100, 0)).toContain("approve");
    expect(actionsFor(false, null, 5, 0)).toEqual(["rollback"]);
    expect(actionsFor(false, null, 0, 0)).toEqual([]);
  });

  it("never throws, whatever the controller sends", () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), fc.anything(), (summary, view, report, history) => {
        const p = buildPicture({ summary, view, report, history }, NOW);
        expect(typeof p.name).toBe("string");
        readStats(view);
        segmentRows(report, p.gates);
        readSeries(history);
      }),
      { numRuns: 500 },
    );
  });
});

describe("readStats and segmentRows", () => {
  const stats = {
    variants: {
      stable: { requests: 900, responses: { "2xx": 900 }, errorRate: 0, latencyMs: { p50: 3, p95: 7 } },
      canary: {
        requests: 100,
        responses: { "2xx": 93, "5xx": 7 },
        errorRate: 0.07,
        latencyMs: { p50: 3, p95: 8 },
        output: { labels: { approve: 60, decline: 40 }, schema: { validated: 100, passRate: 0.99, failures: { wrong_type: 1 } } },
      },
    },
    segments: { tier: { free: { stable: { requests: 600 }, canary: { requests: 50 } }, pro: { stable: { requests: 300 }, canary: { requests: 50 } } } },
  };

  it("reads the figures per variant and ranks the segment values worst first", () => {
    const s = readStats(stats);
    expect(s.variants.canary).toMatchObject({ requests: 100, errorRate: 0.07, schemaPassRate: 0.99, schemaFailures: { wrong_type: 1 } });
    expect(s.hasOutput).toBe(true);
    expect(s.hasShadow).toBe(false);
    const gates = buildPicture({ summary }, NOW).gates;
    const rows = segmentRows(stats, gates);
    expect(rows.map((r) => `${r.value} ${r.worst}`)).toEqual(["pro Failed", "free Unknown"]);
    expect(rows[0]).toMatchObject({ stableShare: 300 / 900, canaryShare: 0.5 });
  });
});

describe("readSeries", () => {
  it("makes one column per variant and figure, and breaks lines where the history has a gap", () => {
    const point = (t: number, canary: number) => ({
      t,
      slices: { overall: { stable: { requestsPerSecond: 10, errorRate: 0 }, canary: { requestsPerSecond: canary, errorRate: 0.1 } } },
      gates: { review: { stable: 4.1, candidate: 4.3 } },
      stage: "10%",
      phase: "Canary",
    });
    const s = readSeries({
      stepSeconds: 5,
      from: new Date(NOW).toISOString(),
      to: new Date(NOW + 60_000).toISOString(),
      points: [point(NOW, 1), point(NOW + 5000, 2), point(NOW + 40_000, 3)],
    });
    expect(s.x).toEqual([NOW / 1000, NOW / 1000 + 5, NOW / 1000 + 22.5, NOW / 1000 + 40]);
    expect(s.columns.get("canary.rps")).toEqual([1, 2, null, 3]);
    expect(s.gates.get("review")!.candidate).toEqual([4.3, 4.3, null, 4.3]);
    expect(s.range).toEqual([NOW / 1000, NOW / 1000 + 60]);
  });
});
