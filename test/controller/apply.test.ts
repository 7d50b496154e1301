// The plan, readable and changeable: GET shows the whole spec as accepted (effective stage values, gates,
// owner, models, finalize), PUT applies a changed spec with If-Match and refuses what may not change mid-rollout,
// with the field and the reason, without ever enlarging the error budget of tests already running.
import { describe, expect, it } from "vitest";
import { createRollout, spec, testApp } from "./helpers.ts";
import { harness, managedSpec } from "../release/harness.ts";
import { errorBudget, testAlpha } from "../../controller/src/engine/budget.ts";
import { budgetOf } from "../../controller/src/engine/state.ts";

const put = (app: Awaited<ReturnType<typeof testApp>>, body: unknown, headers: Record<string, string> = {}, name = "fraud-model") =>
  app.inject({ method: "PUT", url: `/v1/rollouts/${name}`, payload: body as object, headers: { "x-actor": "bob", ...headers } });

describe("GET: the whole spec as accepted", () => {
  it("echoes every stage with its effective values, the gates as given, owner, rollback condition, models and finalize", async () => {
    const app = await testApp();
    const created = await createRollout(
      app,
      managedSpec({
        models: { stable: "v1", canary: "v2", versionHeader: "x-model-version" },
        stages: ["shadow", { canaryPercent: 10, minRequests: 1000 }, 100],
        stageDefaults: { minDurationSeconds: 60, deadlineSeconds: 900 },
      }),
    );
    const view = (await app.inject({ url: "/v1/rollouts/fraud-model" })).json();
    expect(view).toEqual(created);
    expect(view.spec).toMatchObject({
      owner: "team-fraud",
      rollbackCondition: "errors above 1% or p95 up 10%",
      changeKind: "minor",
      impact: "normal",
      models: { stable: "v1", canary: "v2", versionField: null, versionHeader: "x-model-version" },
      shadow: { percent: 10, cluster: "shadow", timeoutMs: 1000, maxBodyBytes: 65536, maxInFlight: 64 },
      stages: [
        { name: "shadow", shadow: true, canaryPercent: 0, shadowPercent: 10, minDurationSeconds: 60, minRequests: 0, deadlineSeconds: 900, onDeadline: "fail" },
        { name: "10%", canaryPercent: 10, shadowPercent: 0, minDurationSeconds: 60, minRequests: 1000, deadlineSeconds: 900, onDeadline: "fail" },
        { name: "100%", canaryPercent: 100, shadowPercent: 0, minDurationSeconds: 60, minRequests: 0, deadlineSeconds: 900, onDeadline: "fail" },
      ],
      stageDefaults: { minDurationSeconds: 60, deadlineSeconds: 900, segmentTrafficShare: 0.05 },
      promotion_gates: { error_rate: { maximum: 0.01 }, latency_p95_ms: { maximum_regression_percent: 10 } },
      statistics: { falseAlarmRate: 0.05 },
      trafficMix: { check: true, holdOnMismatch: false, alpha: 0.001, minDifference: 0.1 },
      finalize: { verifyPercent: 5, verifyAnswers: 20, deadlineSeconds: 600 },
    });
    // The stages as shown are a valid input: sending them back changes nothing.
    const again = await put(
      app,
      managedSpec({
        models: { stable: "v1", canary: "v2", versionHeader: "x-model-version" },
        stageDefaults: { minDurationSeconds: 60, deadlineSeconds: 900 },
        stages: view.spec.stages,
      }),
    );
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json().revision).toBe(view.revision);
  });

  it("documents models and finalize in the OpenAPI document", async () => {
    const app = await testApp();
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    const body = doc.paths["/v1/rollouts"].post.requestBody.content["application/json"].schema;
    expect(Object.keys(body.properties.models.properties)).toEqual(["stable", "canary", "versionField", "versionHeader"]);
    expect(Object.keys(body.properties.finalize.properties)).toEqual(["webhook", "verifyPercent", "verifyAnswers", "deadlineSeconds"]);
    expect(doc.paths["/v1/rollouts/{name}"].put.description).toContain("May not (409");
  });
});

describe("models in the filters' config", () => {
  it("the filters get the declared versions and the source only when answers can be checked", async () => {
    const app = await testApp();
    await createRollout(app, spec({ models: { stable: "v1", canary: "v2", versionHeader: "x-model-version" } }));
    await createRollout(app, spec({ name: "labels-only", match: { pathPrefix: "/other" }, models: { stable: "v1", canary: "v2" } }));
    const rollouts = (await app.inject({ url: "/v1/filter-config" })).json().rollouts;
    expect(rollouts.find((r: { name: string }) => r.name === "fraud-model").models).toEqual({ stable: "v1", canary: "v2", versionHeader: "x-model-version" });
    expect(rollouts.find((r: { name: string }) => r.name === "labels-only")).not.toHaveProperty("models");
  });
});

describe("PUT: apply a changed spec", () => {
  it("changes owner, rollback condition, gates and deadlines with If-Match, and records who did it", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec());
    for (let i = 0; i < 3; i++) await h.round();
    const before = await h.view();
    expect(before.phase).toBe("Shadowing");
    const changed = managedSpec({
      owner: "team-risk",
      rollbackCondition: "errors above 0.5%",
      promotion_gates: { error_rate: { maximum: 0.005 }, latency_p95_ms: { maximum_regression_percent: 10 } },
      stageDefaults: { minDurationSeconds: 60, minRequests: 300, deadlineSeconds: 7200 },
    });
    const stale = await put(h.app, changed, { "if-match": `"${before.revision - 1}"` });
    expect(stale.statusCode).toBe(412);
    const applied = await put(h.app, changed, { "if-match": `"${before.revision}"` });
    expect(applied.statusCode, applied.body).toBe(200);
    expect(applied.json().revision).toBe(before.revision + 1);
    expect(applied.headers.etag).toBe(`"${before.revision + 1}"`);
    expect(applied.json().spec).toMatchObject({
      owner: "team-risk",
      rollbackCondition: "errors above 0.5%",
      promotion_gates: { error_rate: { maximum: 0.005 } },
    });
    expect(applied.json().spec.stages.every((s: { deadlineSeconds: number }) => s.deadlineSeconds === 7200)).toBe(true);
    const last = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions.at(-1);
    expect(last).toMatchObject({ kind: "specChanged", actor: "bob" });
    expect(last.reason).toMatch(
      /^spec changed by bob: owner team-fraud -> team-risk; rollbackCondition; gate error_rate changed; stages; smallest alpha per test/,
    );
    // The engine runs with it: the gate's limit in the next measurements is the new one.
    await h.round();
    const measured = h.app.modelroll.store.get("fraud-model").engine!.lastEvaluation!.measurements.find((m) => m.gate === "error_rate" && m.segment === null);
    expect(measured?.threshold).toEqual({ kind: "maximum", value: 0.005 });
    // The same spec again: nothing changes, not even the revision (read after the tick, which may have moved it).
    const current = (await h.view()).revision;
    const same = await put(h.app, changed);
    expect(same.statusCode, same.body).toBe(200);
    expect(same.json().revision).toBe(current);
  });

  it("refuses what may not change, each with its pointer and reason, and changes nothing", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec({ models: { stable: "v1", canary: "v2", versionField: "model_version" } }));
    for (let i = 0; i < 30 && (await h.view()).stage?.name !== "50%"; i++) await h.round();
    const before = await h.view();
    expect(before.stage.name).toBe("50%");
    const response = await put(
      h.app,
      managedSpec({
        stickyKey: { header: "x-session" },
        segments: [{ name: "tier", header: "x-tier", values: ["free"] }],
        models: { stable: "v1", canary: "v3", versionField: "model_version" },
        changeKind: "major",
        stages: ["shadow", 20, 50, 100],
      }),
    );
    expect(response.statusCode).toBe(409);
    expect(response.json().details).toEqual([
      { path: "/stickyKey/header", reason: "cannot change mid-rollout: users would move between stable and the canary (stickiness hashes this header)" },
      { path: "/segments", reason: "cannot change mid-rollout: the per-segment gates and their share of the error budget were laid out for these segments" },
      { path: "/models", reason: "cannot change mid-rollout: the rollout is about these two models (a new model is a new rollout)" },
      { path: "/changeKind", reason: "cannot change mid-rollout: the policy's checks for it (a shadow stage for a major change) were made at create" },
      { path: "/stages/1", reason: "stage 1 (10%: canary 10%) passed: its name and weights cannot change (asked: 20%: canary 20%)" },
    ]);
    expect(response.json().error).toMatch(/^rollout fraud-model: cannot apply: \/stickyKey\/header cannot change mid-rollout/);
    const renamed = await put(h.app, managedSpec({ name: "other" }));
    expect(renamed.statusCode).toBe(400);
    expect(renamed.json().details[0].path).toBe("/name");
    expect((await h.view()).revision).toBe(before.revision);
    // Later stages may still change.
    const models = { stable: "v1", canary: "v2", versionField: "model_version" };
    const later = await put(h.app, managedSpec({ models, stages: ["shadow", 10, 50, { canaryPercent: 100, minDurationSeconds: 120 }] }));
    expect(later.statusCode, later.body).toBe(200);
    expect(later.json().spec.stages.at(-1)).toMatchObject({ name: "100%", minDurationSeconds: 120 });
    // A stage added now would bring a latency test the budget no longer has room for: every test group of both
    // gates has begun (error rate accumulates over the canary's whole exposure, latency is judged per stage).
    const added = await put(h.app, managedSpec({ models, stages: ["shadow", 10, 50, 75, 100] }));
    expect(added.statusCode).toBe(409);
    expect(added.json().details).toEqual([{ path: "/statistics/falseAlarmRate", reason: expect.stringMatching(/leaves nothing for 1 more test group/) }]);
  });

  it("never enlarges the error budget of running tests: removing a gate keeps its alpha, adding gates splits what is left", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec());
    for (let i = 0; i < 30 && (await h.view()).stage?.name !== "10%"; i++) await h.round();
    const alpha = (gate: string) => testAlpha(budgetOf(h.app.modelroll.store.get("fraud-model").engine!.state), gate, false);
    const errorRate = alpha("error_rate");
    const p95 = alpha("latency_p95_ms");
    // Fewer gates: a fresh split would give each test more; the running ones keep what they had.
    const fewer = await put(h.app, managedSpec({ promotion_gates: { error_rate: { maximum: 0.01 } } }));
    expect(fewer.statusCode, fewer.body).toBe(200);
    expect(alpha("error_rate")).toBe(errorRate);
    // More gates: the removed latency gate's tests that began stay charged, so the gates added (it again, and
    // p99) share what is left: less than it had, and less than a fresh rollout of the same spec would give.
    const gates = { error_rate: { maximum: 0.01 }, latency_p95_ms: { maximum_regression_percent: 10 }, latency_p99_ms: { maximum_regression_percent: 20 } };
    const more = await put(h.app, managedSpec({ promotion_gates: gates }));
    expect(more.statusCode, more.body).toBe(200);
    expect(alpha("error_rate")).toBe(errorRate);
    expect(alpha("latency_p95_ms")).toBeLessThan(p95);
    const fresh = errorBudget(h.app.modelroll.store.get("fraud-model").engine!.state.spec, []);
    expect(alpha("latency_p99_ms")).toBeLessThan(testAlpha(fresh, "latency_p99_ms", false));
    // A false-alarm rate already given to the tests that began is refused.
    const spent = await put(h.app, managedSpec({ promotion_gates: gates, statistics: { falseAlarmRate: 0.001 } }));
    expect(spent.statusCode).toBe(409);
    expect(spent.json().details[0]).toMatchObject({ path: "/statistics/falseAlarmRate" });
    expect(spent.json().details[0].reason).toMatch(
      /^must leave budget for the tests still to come: the tests already begun were given 0\.\d+ of the false-alarm rate/,
    );
  });

  it("is refused on an ended rollout, and a manual rollout cannot become managed", async () => {
    const app = await testApp();
    await createRollout(app, spec());
    const managed = await put(app, { ...spec(), owner: "x", rollbackCondition: "y" });
    expect(managed.statusCode).toBe(409);
    expect(managed.json().details[0]).toEqual({
      path: "",
      reason: "a manual rollout cannot take release fields (owner, stages, promotion_gates, ...) mid-way: create a managed rollout",
    });
    const weight = await put(app, spec({ canaryPercent: 50 }));
    expect(weight.json().details[0].reason).toBe(
      "cannot change mid-rollout: it is the starting weight; set the current weight with PUT /v1/rollouts/fraud-model/weight",
    );

    const h = await harness();
    await createRollout(h.app, managedSpec());
    await h.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/fail" });
    const ended = await put(h.app, managedSpec({ owner: "someone" }));
    expect(ended.statusCode).toBe(409);
    expect(ended.json().details[0].reason).toBe("the rollout has ended (Failed): nothing in it can change");
  });
});

describe("rollback, delete and the archive", () => {
  it("rollback takes and records a reason; repeated, it keeps the revision", async () => {
    const app = await testApp();
    await createRollout(app, spec({ canaryPercent: 20 }));
    const first = await app.inject({
      method: "POST",
      url: "/v1/rollouts/fraud-model/rollback",
      payload: { reason: "p95 doubled" },
      headers: { "x-actor": "carol" },
    });
    expect(first.json().lastRollback).toMatchObject({ by: "carol", reason: "p95 doubled" });
    const second = await app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/rollback", payload: { reason: "again" } });
    expect(second.json()).toMatchObject({ revision: first.json().revision, lastRollback: { by: "carol", reason: "p95 doubled" } });
    const bad = await app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/rollback", payload: { why: "x" } });
    expect(bad.statusCode).toBe(400);
  });

  it("DELETE archives: listed with who and why, report and history readable; a new rollout of the name starts clean", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec());
    for (let i = 0; i < 4; i++) await h.round();
    const history = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions;
    const deleted = await h.app.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model?reason=wrong%20features", headers: { "x-actor": "dave" } });
    expect(deleted.statusCode).toBe(204);
    expect(deleted.headers["x-archived-id"]).toBe("1");
    expect((await h.app.inject({ url: "/v1/rollouts" })).json().rollouts).toEqual([]);
    const listed = (await h.app.inject({ url: "/v1/rollouts?archived=true&name=fraud-model" })).json().rollouts;
    expect(listed).toHaveLength(1);
    expect(listed[0].archived).toMatchObject({ id: 1, reason: "deleted by dave: wrong features" });
    expect((await h.app.inject({ url: "/v1/archive/1/history" })).json().decisions).toEqual(history);
    const report = await h.app.inject({ url: "/v1/archive/1/report?format=markdown" });
    expect(report.body).toContain("- archived ");
    expect(report.body).toContain("as 1: deleted by dave: wrong features");

    await createRollout(h.app, managedSpec());
    expect((await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions).toEqual([]);
    expect((await h.app.inject({ url: "/v1/archive/2" })).statusCode).toBe(404);
    expect((await h.app.inject({ url: "/v1/archive/x" })).statusCode).toBe(400);
  });
});
