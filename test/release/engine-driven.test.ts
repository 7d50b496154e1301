// Rollouts driven by the engine through the API: a fake metric provider fed by simulated traffic at the
// weights the filter config serves, an injected clock, and the driver ticked by hand.
import { describe, expect, it } from "vitest";
import { ENGINE_SPEC_KEYS } from "../../controller/src/engine/index.ts";
import { ENGINE_PROPERTIES } from "../../controller/src/rollouts/schemas.ts";
import { createRollout, spec, testApp } from "../controller/helpers.ts";
import { SEED_GATES } from "../engine/drive.ts";
import { harness, managedSpec, TIMING } from "./harness.ts";

const post = (app: Awaited<ReturnType<typeof testApp>>, url: string, payload?: unknown, actor?: string) =>
  app.inject({ method: "POST", url, ...(payload === undefined ? {} : { payload: payload as object }), headers: actor ? { "x-actor": actor } : {} });

describe("engine-driven rollouts", () => {
  it("the spec accepts exactly the engine's keys", () => {
    expect(Object.keys(ENGINE_PROPERTIES).sort()).toEqual([...ENGINE_SPEC_KEYS].sort());
  });

  it("a good canary goes Pending -> Shadowing -> canary stages -> 100% (Baking) -> Succeeded, the filter config following each stage", async () => {
    const h = await harness();
    const created = await createRollout(h.app, managedSpec());
    expect(created).toMatchObject({ managed: true, phase: "Pending", stage: null, canaryPercent: 0, shadowPercent: 0 });
    // Pending: nothing on the new model yet, even though the spec's shadow section says 10%.
    expect(await h.served()).toMatchObject({ canaryPercent: 0, shadowPercent: 0 });

    const seen: string[] = [];
    let lastVersion = (await h.served()).version;
    for (let i = 0; i < 200; i++) {
      await h.round();
      const view = await h.view();
      const served = await h.served();
      // Whatever the engine asked for last is what the filters get.
      const state = h.app.modelroll.store.get("fraud-model").engine!.state;
      expect({ canaryPercent: served.canaryPercent, shadowPercent: served.shadowPercent }).toEqual(state.weights);
      // One config version per weight change.
      expect(served.version - lastVersion).toBeLessThanOrEqual(1);
      lastVersion = served.version;
      const label = `${view.phase}${view.stage ? ` ${view.stage.name}` : ""} ${served.canaryPercent}/${served.shadowPercent}`;
      if (seen.at(-1) !== label) seen.push(label);
      if (view.phase === "Succeeded") break;
    }
    expect(seen).toEqual(["Shadowing shadow 0/10", "Canary 10% 10/0", "Canary 50% 50/0", "Baking 100% 100/0", "Succeeded 100% 100/0"]);

    const history = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json();
    expect(history.phase).toBe("Succeeded");
    expect(history.stage).toEqual({ index: 3, name: "100%" });
    const kinds = history.decisions.map((d: { kind: string }) => d.kind).filter((k: string) => k !== "held");
    expect(kinds).toEqual(["started", "advanced", "advanced", "advanced", "succeeded"]);
    const advanced = history.decisions.find((d: { kind: string }) => d.kind === "advanced");
    expect(advanced.measurements.length).toBeGreaterThan(0);
    expect(advanced.measurements[0]).toHaveProperty("status");
    // The report files each stage's final, passing numbers under that stage.
    const report = (await h.app.inject({ url: "/v1/rollouts/fraud-model/report" })).json();
    expect(report.stages.map((st: { stage: string; decision: string }) => `${st.stage}: ${st.decision}`)).toEqual([
      "shadow: advanced",
      "10%: advanced",
      "50%: advanced",
      "100%: succeeded",
    ]);
    for (const st of report.stages)
      expect(
        st.gates.every((g: { status: string }) => g.status === "Passed"),
        st.stage,
      ).toBe(true);
    // Succeeded without a version source (no models): nothing to watch until finalize, the driver reads nothing.
    const reads = h.provider.reads.length;
    await h.round();
    expect(h.provider.reads.length).toBe(reads);
  });

  it("a canary with 5% errors at the first canary stage rolls back, naming the gate", async () => {
    const h = await harness({ canary: { errorRate: 0.05 } });
    await createRollout(h.app, managedSpec({ stages: [5, 100] }));
    let rolledBackAt = -1;
    for (let i = 0; i < 60; i++) {
      const before = await h.served();
      await h.round();
      if ((await h.view()).phase === "RolledBack") {
        expect(before.canaryPercent).toBe(5);
        rolledBackAt = i;
        break;
      }
    }
    expect(rolledBackAt).toBeGreaterThan(0);
    const view = await h.view();
    expect(view).toMatchObject({ phase: "RolledBack", stage: { index: 0, name: "5%" }, canaryPercent: 0, shadowPercent: 0 });
    expect(view.lastRollbackAt).not.toBeNull();
    const served = await h.served();
    expect(served).toMatchObject({ canaryPercent: 0, shadowPercent: 0 });
    const history = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json();
    const last = history.decisions.at(-1);
    expect(last.kind).toBe("rolledBack");
    expect(last.actor).toBe("engine");
    expect(last.reason).toMatch(/error rate/);
    expect(last.measurements.some((m: { gate: string; status: string }) => m.gate === "error_rate" && m.status === "Failed")).toBe(true);
    const metrics = await h.app.inject({ url: "/metrics" }).then((r) => r.body);
    expect(metrics).toMatch(/^modelroll_rollbacks_total 1$/m);
    // Engine telemetry: the phase gauge, the failed gate evaluation, and one timed step per tick that ran.
    expect(metrics).toMatch(/^modelroll_rollouts_by_phase\{phase="RolledBack"\} 1$/m);
    expect(metrics).toMatch(/^modelroll_gate_evaluations_total\{gate="error_rate",result="Failed"\} [1-9]\d*$/m);
    const steps = Number(/^modelroll_engine_evaluation_seconds_count (\d+)$/m.exec(metrics)?.[1] ?? "0");
    expect(steps).toBeGreaterThan(0);
  });

  it("GET carries the live evaluation: every gate with samples against what it needs, what holds the stage and when it should decide", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec({ stages: [5, 100], stageDefaults: { deadlineSeconds: 3600 } }));
    await h.round(500);
    expect((await h.view()).evaluation).toBeNull(); // the first tick starts the stage
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      await h.round(500);
      const view = await h.view();
      seen.push(Date.parse(view.evaluation.at));
    }
    // Refreshed every tick (10 s of injected clock each).
    expect(seen.map((t) => t - seen[0])).toEqual([0, 10_000, 20_000, 30_000]);
    const view = await h.view();
    expect(view).toMatchObject({ phase: "Canary", stage: { name: "5%" } });
    const error = view.evaluation.gates.find((g: { gate: string; slice: string }) => g.gate === "error_rate" && g.slice === "overall");
    // 5% is the last stage below 100%: the gates must pass here, on the evidence since the rollout began.
    expect(error).toMatchObject({ requirement: "pass", scope: "rollout", status: "Inconclusive", unit: "ratio" });
    expect(error.samples).toBeGreaterThan(0);
    expect(error.needed.pass).toBeGreaterThan(error.samples);
    expect(error.interval.upper).toBeGreaterThan(0.01);
    const latency = view.evaluation.gates.find((g: { gate: string }) => g.gate === "latency_p95_ms");
    expect(latency).toMatchObject({ requirement: "pass", scope: "stage" });
    // Each hold says how many samples it has and needs, and how long that takes at the traffic seen so far.
    const hold = view.evaluation.holds.find((x: { gate: string | null }) => x.gate === "error_rate");
    expect(hold.needed).toBe(error.needed.pass);
    expect(hold.seconds).toBeGreaterThan(0);
    const expectedSeconds = Math.ceil((error.needed.pass - error.samples) / view.evaluation.traffic.candidatePerSecond);
    expect(Math.abs(hold.seconds - expectedSeconds) / expectedSeconds).toBeLessThan(0.2);
    expect(view.evaluation.secondsToDecision).toBeGreaterThanOrEqual(hold.seconds);
    expect(view.evaluation.traffic.requestsPerSecond).toBeGreaterThan(40);
    expect(view.forecast).toMatchObject({ basis: "observed traffic", stages: [{ stage: "100%" }] });
  });

  it("records a hold again every minute while it lasts, with its ETA, not only when its reason changes", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec({ stages: [5, 100], stageDefaults: { deadlineSeconds: 3600 } }));
    for (let i = 0; i < 20; i++) await h.round(500);
    const history = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json();
    const held = history.decisions.filter((d: { kind: string }) => d.kind === "held");
    // 190 s of holding at a 60 s period: at least three snapshots, each with the numbers and an ETA.
    expect(held.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < held.length; i++) expect(held[i].at - held[i - 1].at).toBeLessThanOrEqual(60_000);
    for (const d of held) {
      expect(d.eta.holds.length).toBeGreaterThan(0);
      expect(d.reason).toMatch(/^stage 5% holding \((a decision expected in about \d+ s at the current traffic|no decision time can be given yet)\): /);
    }
    expect(held.at(-1).measurements.length).toBeGreaterThan(0);
  });

  it("warns at create when the stated traffic is too low for a stage to conclude before its deadline", async () => {
    const app = await testApp({ tickIntervalMs: 0 });
    const slow = await createRollout(
      app,
      managedSpec({ stages: [1, 100], stageDefaults: { deadlineSeconds: 600 }, expectedTraffic: { requestsPerSecond: 2 } }),
    );
    expect(slow.forecast.basis).toBe("expected traffic");
    expect(slow.forecast.stages.map((s: { stage: string }) => s.stage)).toEqual(["1%", "100%"]);
    expect(slow.forecast.stages[0].seconds).toBeGreaterThan(600);
    expect(slow.forecast.warnings).toEqual([
      expect.stringMatching(/^stage 1% is projected to take about \d+ s at the expected traffic \(.+\), past its deadline of 600 s \(onDeadline: fail\)$/),
    ]);
    const fast = await createRollout(
      app,
      managedSpec({
        name: "fast",
        match: { pathPrefix: "/v2" },
        stages: [5, 100],
        stageDefaults: { deadlineSeconds: 3600 },
        expectedTraffic: { requestsPerSecond: 1000 },
      }),
    );
    expect(fast.forecast.warnings).toEqual([]);
    expect(fast.forecast.stages[0].seconds).toBeLessThan(600);
    // At 100% a gate with only relative limits (the seed's latency gate) is not judged, so it does not leave the bake unforecast.
    const relative = await createRollout(
      app,
      managedSpec({
        name: "relative",
        match: { pathPrefix: "/v4" },
        stages: [5, 100],
        promotion_gates: { latency_p95_ms: { maximum_regression_percent: 10 }, error_rate: { maximum: 0.01 } },
        expectedTraffic: { requestsPerSecond: 100 },
      }),
    );
    expect(relative.forecast.stages.map((s: { seconds: number | null }) => s.seconds)).toEqual([expect.any(Number), expect.any(Number)]);
    // Without expectedTraffic nothing is claimed before traffic flows.
    const none = await createRollout(app, managedSpec({ name: "none", match: { pathPrefix: "/v3" }, stages: [5, 100] }));
    expect(none.forecast).toBeNull();
  });

  it("writes the postmortem report of a rolled-back rollout, as JSON and as Markdown", async () => {
    const h = await harness({ canary: { errorRate: 0.05 } });
    await createRollout(h.app, managedSpec({ stages: [5, 100] }));
    for (let i = 0; i < 60 && (await h.view()).phase !== "RolledBack"; i++) await h.round();
    expect((await h.view()).phase).toBe("RolledBack");

    const res = await h.app.inject({ url: "/v1/rollouts/fraud-model/report" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const report = res.json();
    const history = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json();
    expect(report.outcome).toBe("rolled back");
    expect(report.weights).toEqual({ canaryPercent: 0, shadowPercent: 0 });
    expect(report.timeline).toHaveLength(history.decisions.length);
    expect(report.why).toBe(history.decisions.at(-1).reason);
    expect(report.endedAt).not.toBeNull();
    const failedGate = report.stages
      .flatMap((s: { gates: Array<{ gate: string; status: string; candidate: number }> }) => s.gates)
      .find((g: { gate: string; status: string }) => g.gate === "error_rate" && g.status === "Failed");
    expect(failedGate.candidate).toBeGreaterThan(0.01);
    expect(report.segments.length).toBeGreaterThan(0);

    const md = await h.app.inject({ url: "/v1/rollouts/fraud-model/report?format=markdown" });
    expect(md.headers["content-type"]).toMatch(/^text\/markdown/);
    expect(md.body).toMatch(/^# Rollout fraud-model: rolled back$/m);
    expect(md.body).toContain(`**Why:** ${report.why}`);
    expect(md.body).toMatch(/^\| error_rate \| overall \| Failed \|/m);
    const viaAccept = await h.app.inject({ url: "/v1/rollouts/fraud-model/report", headers: { accept: "text/markdown" } });
    expect(viaAccept.body).toBe(md.body);
  });

  it("promote, pause, resume and undo by hand, each on record with its actor", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec({ stageDefaults: { ...TIMING, minDurationSeconds: 86400, deadlineSeconds: 100000 } }));
    const url = (what: string) => `/v1/rollouts/fraud-model/${what}`;

    // From Pending, promote starts the first stage.
    const promoted = await post(h.app, url("promote"), { reason: "go" }, "alice");
    expect(promoted.statusCode).toBe(200);
    expect(promoted.json()).toMatchObject({ phase: "Shadowing", stage: { name: "shadow" }, shadowPercent: 10 });
    expect(await h.served()).toMatchObject({ shadowPercent: 10, canaryPercent: 0 });

    expect((await post(h.app, url("promote"))).json()).toMatchObject({ phase: "Canary", stage: { name: "10%" }, canaryPercent: 10, shadowPercent: 0 });
    await h.round();
    const paused = await post(h.app, url("pause"), { reason: "looking at dashboards" }, "bob");
    expect(paused.json()).toMatchObject({ phase: "Paused", canaryPercent: 10 });
    const refused = await post(h.app, url("promote"));
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error).toMatch(/^rollout fraud-model: cannot promote: it is paused/);
    await h.round();
    expect((await h.view()).phase).toBe("Paused");
    expect((await post(h.app, url("resume"))).json()).toMatchObject({ phase: "Canary" });
    await post(h.app, url("promote"));
    expect((await post(h.app, url("promote"))).json()).toMatchObject({ phase: "Baking", canaryPercent: 100 });
    expect(await h.served()).toMatchObject({ canaryPercent: 100 });

    const undone = await post(h.app, url("undo"), { reason: "latency complaints" }, "carol");
    expect(undone.statusCode).toBe(200);
    expect(undone.json()).toMatchObject({ phase: "RolledBack", canaryPercent: 0, shadowPercent: 0 });
    expect(await h.served()).toMatchObject({ canaryPercent: 0, shadowPercent: 0 });
    expect((await post(h.app, url("resume"))).statusCode).toBe(409);

    const decisions = (await h.app.inject({ url: url("history") })).json().decisions as Array<{ kind: string; actor: string; reason: string }>;
    const manual = decisions.filter((d) => d.actor !== "engine").map((d) => `${d.kind} by ${d.actor}`);
    expect(manual).toEqual([
      "promoted by alice",
      "promoted by api",
      "paused by bob",
      "resumed by api",
      "promoted by api",
      "promoted by api",
      "undone by carol",
    ]);
    expect(decisions.find((d) => d.kind === "undone")!.reason).toMatch(/latency complaints/);
  });

  it("fail, and rollback of a managed rollout, end it through the engine", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec({ stages: [5, 100] }));
    await h.round();
    expect(await h.served()).toMatchObject({ canaryPercent: 5 });
    const rolledBack = await post(h.app, "/v1/rollouts/fraud-model/rollback", undefined, "oncall");
    expect(rolledBack.statusCode).toBe(200);
    expect(rolledBack.json()).toMatchObject({ phase: "RolledBack", canaryPercent: 0 });
    const last = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions.at(-1);
    expect(last).toMatchObject({ kind: "rolledBack", actor: "oncall" });
    // Repeating the rollback is harmless; the engine's other commands are refused.
    expect((await post(h.app, "/v1/rollouts/fraud-model/rollback")).statusCode).toBe(200);
    expect((await post(h.app, "/v1/rollouts/fraud-model/fail")).statusCode).toBe(409);

    const other = await harness();
    await createRollout(other.app, managedSpec({ stages: [5, 100] }));
    await other.round();
    const failed = await post(other.app, "/v1/rollouts/fraud-model/fail", { reason: "wrong model file" });
    expect(failed.json()).toMatchObject({ phase: "Failed", canaryPercent: 0 });
  });

  it("high impact waits for a review; review scores are posted as measurements", async () => {
    const h = await harness();
    await createRollout(
      h.app,
      managedSpec({ impact: "high", stages: [5, 100], promotion_gates: { error_rate: { maximum: 0.01 }, human_review_score: { minimum_delta: -0.5 } } }),
    );
    const url = (what: string) => `/v1/rollouts/fraud-model/${what}`;
    const scores = await post(h.app, url("measurements"), { metric: "human_review_score", variant: "canary", values: [0.8, 0.9, 0.85] });
    expect(scores.statusCode).toBe(200);
    expect(scores.json()).toEqual({ rollout: "fraud-model", metric: "human_review_score", variant: "canary", recorded: 3 });
    const unknown = await post(h.app, url("measurements"), { metric: "conversion", variant: "canary", values: [1] });
    expect(unknown.statusCode).toBe(409);
    expect(unknown.json().error).toMatch(/no gate uses the external metric 'conversion'/);
    const outOfRange = await post(h.app, url("measurements"), { metric: "human_review_score", variant: "stable", values: [7] });
    expect(outOfRange.statusCode).toBe(409);

    expect((await post(h.app, url("review"), { approved: true })).statusCode).toBe(409);
    await post(h.app, url("promote"));
    await post(h.app, url("promote"));
    expect((await post(h.app, url("promote"))).json()).toMatchObject({ phase: "AwaitingReview", canaryPercent: 100 });
    const reviewed = await post(h.app, url("review"), { approved: true, reason: "spot checks fine" }, "dana");
    expect(reviewed.json()).toMatchObject({ phase: "Succeeded", canaryPercent: 100 });
  });

  it("rejects an invalid engine spec with every pointer, together with the schema's own errors, creating nothing", async () => {
    const app = await testApp({ tickIntervalMs: 0 });
    const { owner: _owner, ...noOwner } = managedSpec();
    const missingOwner = await app.inject({ method: "POST", url: "/v1/rollouts", payload: noOwner });
    expect(missingOwner.statusCode).toBe(400);
    expect(missingOwner.json().details.map((d: { path: string }) => d.path)).toContain("/owner");
    expect(missingOwner.json().error).toMatch(/^rollout fraud-model: invalid request body: /);

    const bad = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      payload: managedSpec({
        stickyKey: { header: "X Bad" },
        canaryPercent: 5,
        stages: ["shadow", 150],
        promotion_gates: { error_rate: { maximum: 2 }, latency_p95_ms: { maximum_regression_percent: 10, typo: 1 } },
      }),
    });
    expect(bad.statusCode).toBe(400);
    const paths = bad.json().details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "/stickyKey/header",
        "/canaryPercent",
        "/stages/1",
        "/promotion_gates/error_rate/maximum",
        "/promotion_gates/latency_p95_ms/typo",
      ]),
    );
    // A shadow stage needs a shadow target.
    const { shadow: _shadow, ...noShadow } = managedSpec();
    const shadowless = await app.inject({ method: "POST", url: "/v1/rollouts", payload: noShadow });
    expect(shadowless.statusCode).toBe(400);
    expect(shadowless.json().details.map((d: { path: string }) => d.path)).toContain("/stages/0");
    expect((await app.inject({ url: "/v1/rollouts" })).json().rollouts).toEqual([]);

    // The seed's gate block is accepted exactly as the seed writes it (YAML too).
    const yaml = [
      "name: fraud-model",
      "match: { pathPrefix: /v1/predict }",
      "stickyKey: { header: x-user-id }",
      "owner: team-fraud",
      "rollbackCondition: errors above 1%",
      "output: { schema: { type: object, required: [prediction] } }",
      "promotion_gates:",
      "  latency_p95_ms: { maximum_regression_percent: 10 }",
      "  error_rate: { maximum: 0.01 }",
      "  schema_validation_pass_rate: { minimum: 0.995 }",
      "  human_review_score: { minimum_delta: -0.02 }",
      `  gpu_oom_events: { maximum: 0, query: '${SEED_GATES.gpu_oom_events.query}' }`,
    ].join("\n");
    const seed = await app.inject({ method: "POST", url: "/v1/rollouts", payload: yaml, headers: { "content-type": "application/yaml" } });
    expect(seed.statusCode, seed.body).toBe(201);
    expect(seed.json()).toMatchObject({ managed: true, phase: "Pending" });
  });

  it("a manual rollout stays manual: promote is refused, history too, weights are set by hand; a managed one refuses manual weights", async () => {
    const app = await testApp({ tickIntervalMs: 0 });
    await createRollout(app, spec());
    const promote = await app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/promote" });
    expect(promote.statusCode).toBe(409);
    expect(promote.json()).toEqual({ error: "rollout fraud-model: not managed by the engine (no stages/promotion_gates/owner)" });
    expect((await app.inject({ url: "/v1/rollouts/fraud-model/report" })).statusCode).toBe(409);
    expect((await app.inject({ url: "/v1/rollouts/fraud-model/history" })).statusCode).toBe(409);
    expect((await app.inject({ method: "POST", url: "/v1/rollouts/nope/promote" })).statusCode).toBe(404);
    await app.modelroll.driver.tick();
    expect((await app.inject({ url: "/v1/rollouts/fraud-model" })).json()).toMatchObject({ managed: false, phase: null, stage: null });

    await createRollout(app, managedSpec({ name: "managed", match: { pathPrefix: "/v2" } }));
    const weight = await app.inject({ method: "PUT", url: "/v1/rollouts/managed/weight", payload: { canaryPercent: 50 } });
    expect(weight.statusCode).toBe(409);
    expect(weight.json().error).toMatch(/^rollout managed: managed by the engine/);
  });

  it("keeps the stage when the metrics cannot be read, and ticks on its own timer until the app closes", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec({ stages: [5, 100] }));
    await h.round();
    h.provider.reading = { status: "unmeasurable", error: "envoy admin down", sources: [] };
    for (let i = 0; i < 3; i++) await h.round();
    expect(await h.view()).toMatchObject({ phase: "Canary", canaryPercent: 5 });

    const { SimProvider } = await import("./harness.ts");
    const provider = new SimProvider(h.provider.sim);
    const app = await testApp({ metricProvider: provider, tickIntervalMs: 20 });
    await createRollout(app, managedSpec({ stages: [5, 100] }));
    await app.ready();
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(provider.reads.length).toBeGreaterThan(0);
    expect((await app.inject({ url: "/v1/rollouts/fraud-model" })).json().phase).toBe("Canary");
    await app.close();
    const reads = provider.reads.length;
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(provider.reads.length).toBe(reads);
  });
});

describe("engine-driven rollouts: PromQL gates and shadow actions", () => {
  it("runs PromQL gates against the configured Prometheus and rolls back on a Failed one", async () => {
    const { createServer } = await import("node:http");
    const queries: string[] = [];
    const prometheus = createServer((req, res) => {
      queries.push(new URL(req.url!, "http://x").searchParams.get("query") ?? "");
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ status: "success", data: { resultType: "vector", result: [{ metric: {}, value: [0, "3"] }] } }));
    });
    await new Promise<void>((resolve) => prometheus.listen(0, "127.0.0.1", resolve));
    try {
      const port = (prometheus.address() as { port: number }).port;
      const { SimProvider } = await import("./harness.ts");
      const { PoissonTrafficSim, GOOD } = await import("../engine/sim.ts");
      let now = Date.UTC(2026, 0, 1);
      const app = await testApp({
        clock: () => new Date(now),
        tickIntervalMs: 0,
        prometheusUrl: `http://127.0.0.1:${port}`,
        metricProvider: new SimProvider(new PoissonTrafficSim({ seed: 1, behavior: () => GOOD })),
      });
      const query = 'sum(increase(gpu_oom_total{model="fraud"}[5m]))';
      await createRollout(app, managedSpec({ stages: [5, 100], promotion_gates: { gpu_oom_events: { maximum: 0, query } } }));
      for (let i = 0; i < 3 && (await app.inject({ url: "/v1/rollouts/fraud-model" })).json().phase !== "RolledBack"; i++) {
        now += 10_000;
        await app.modelroll.driver.tick();
      }
      expect(queries).toContain(query);
      const history = (await app.inject({ url: "/v1/rollouts/fraud-model/history" })).json();
      expect(history.phase).toBe("RolledBack");
      expect(history.decisions.at(-1).measurements.find((m: { gate: string }) => m.gate === "gpu_oom_events").status).toBe("Failed");
    } finally {
      await new Promise((resolve) => prometheus.close(resolve));
    }
  });

  it("records and skips a shadow weight asked of a rollout without a shadow, in one version bump", async () => {
    const app = await testApp({ tickIntervalMs: 0 });
    const { shadow: _s, ...noShadow } = managedSpec({ stages: [5, 100] });
    await createRollout(app, noShadow);
    const store = app.modelroll.store;
    const engine = store.get("fraud-model").engine!;
    const version = store.version;
    const decision = {
      at: 0,
      rollout: "fraud-model",
      kind: "advanced" as const,
      from: engine.state.phase,
      to: engine.state.phase,
      stage: null,
      actor: "engine",
      reason: "test",
      measurements: [],
      trafficMix: [],
      window: null,
    };
    const after = store.applyEngine("fraud-model", {
      state: engine.state,
      decisions: [decision],
      actions: [{ type: "setWeights", canaryPercent: 5, shadowPercent: 10, reason: "test" }],
    });
    expect(after).toMatchObject({ canaryPercent: 5, shadowPercent: 0 });
    expect(store.version).toBe(version + 1);
    expect(after.engine!.decisions.at(-1)!.reason).toBe("test (the spec has no shadow: mirroring 10% skipped)");
  });

  it("a shadow stage mirrors the spec's shadow.percent unless the stage sets its own", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec({ shadow: { percent: 25 } }));
    await h.round();
    expect(await h.view()).toMatchObject({ phase: "Shadowing", shadowPercent: 25 });
    expect((await h.served()).shadowPercent).toBe(25);

    const own = await harness();
    await createRollout(own.app, managedSpec({ shadow: { percent: 25 }, stages: [{ shadow: true, shadowPercent: 5 }, 10, 100] }));
    await own.round();
    expect(await own.view()).toMatchObject({ phase: "Shadowing", shadowPercent: 5 });
  });
});
