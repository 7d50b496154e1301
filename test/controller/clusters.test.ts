// A rollout naming the Envoy clusters it steers (many models behind one proxy): validation with the field and
// the reason, what GET shows, what the filters receive, PUT refusing a change, and a second rollout refused a
// canary cluster another live rollout already steers.
import { describe, expect, it } from "vitest";
import { createRollout, spec, testApp } from "./helpers.ts";
import { validateRolloutSpec } from "../../controller/src/rollouts/validate.ts";

const ISTIO_CANARY = "outbound|80|canary|fraud-model.ml.svc.cluster.local";

describe("spec.clusters", () => {
  it("fills unnamed clusters with the single-model names, and carries them where the filter calls a cluster", async () => {
    const app = await testApp();
    const created = await createRollout(
      app,
      spec({ clusters: { canary: ISTIO_CANARY, shadow: "fraud-shadow" }, shadow: { percent: 10 }, output: { guard: false } }),
    );
    expect(created.spec.clusters).toEqual({ stable: "stable", canary: ISTIO_CANARY, shadow: "fraud-shadow" });
    expect(created.spec.shadow.cluster).toBe("fraud-shadow");
    const filter = (await app.inject({ url: "/v1/filter-config" })).json().rollouts[0];
    expect(filter.shadow.cluster).toBe("fraud-shadow");
    expect(filter.output.guardCluster).toBe("stable");

    const churn = await createRollout(
      app,
      spec({ name: "churn-model", match: { pathPrefix: "/churn" }, clusters: { stable: "churn-stable", canary: "churn-canary" } }),
    );
    expect(churn.spec.clusters).toEqual({ stable: "churn-stable", canary: "churn-canary", shadow: "shadow" });
    const churnFilter = (await app.inject({ url: "/v1/filter-config" })).json().rollouts.find((r: { name: string }) => r.name === "churn-model");
    expect(churnFilter.output.guardCluster).toBe("churn-stable");
  });

  it("leaves a rollout without clusters exactly as before (no clusters in GET, the filter's defaults)", async () => {
    const app = await testApp();
    const created = await createRollout(app, spec({ shadow: { percent: 10 } }));
    expect("clusters" in created.spec).toBe(false);
    const filter = (await app.inject({ url: "/v1/filter-config" })).json().rollouts[0];
    expect([filter.shadow.cluster, filter.output.guardCluster]).toEqual(["shadow", "stable"]);
  });

  it.each([
    [{ clusters: {} }, "/clusters", "must name at least one of stable, canary, shadow (or leave clusters out)"],
    [{ clusters: { canary: "has space" } }, "/clusters/canary", "must be an Envoy cluster name: 1 to 255 of letters, digits, '_', '.', '|', ':' and '-'"],
    [{ clusters: { canaryy: "x" } }, "/clusters/canaryy", "is not a known field (known: stable, canary, shadow)"],
    [
      { clusters: { stable: "same", canary: "same" } },
      "/clusters/canary",
      "must differ from the stable cluster (same): the canary would get the stable model's traffic",
    ],
    [
      { clusters: { shadow: "a-shadow" }, shadow: { percent: 5, cluster: "b-shadow" } },
      "/shadow/cluster",
      "names b-shadow but clusters.shadow is a-shadow: name the shadow cluster in one place",
    ],
    [
      { clusters: { stable: "a-stable" }, output: { guardCluster: "b-stable" } },
      "/output/guardCluster",
      "names b-stable but clusters.stable is a-stable: the guard fetches stable answers from the stable cluster",
    ],
  ])("refuses %j with the field and the reason", async (extra, path, reason) => {
    const app = await testApp();
    const response = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec(extra) });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().details).toContainEqual(expect.objectContaining({ path, reason: expect.stringContaining(reason) }));
    // `modelroll lint` judges a spec with the same check.
    const offline = validateRolloutSpec(spec(extra));
    expect(offline.ok).toBe(false);
    if (!offline.ok) expect(offline.errors).toContainEqual(expect.objectContaining({ path }));
  });

  it("accepts the same cluster in both places", async () => {
    const app = await testApp();
    const created = await createRollout(
      app,
      spec({ clusters: { shadow: "s", stable: "st" }, shadow: { percent: 5, cluster: "s" }, output: { guardCluster: "st" } }),
    );
    expect(created.spec.shadow.cluster).toBe("s");
  });

  it("refuses a second live rollout steering the same canary cluster, naming the first", async () => {
    const app = await testApp();
    await createRollout(app, spec({ clusters: { canary: "fraud-canary" } }));
    const response = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      payload: spec({ name: "other", match: { pathPrefix: "/other" }, clusters: { canary: "fraud-canary" } }),
    });
    expect(response.statusCode).toBe(409);
    expect(response.json().error).toBe(
      "rollout other: canary cluster fraud-canary is the canary of rollout fraud-model: each model behind the proxy has its own",
    );
  });

  it("refuses changing the clusters mid-rollout (PUT), keeps the rest of the apply rules", async () => {
    const app = await testApp();
    await createRollout(app, spec({ clusters: { canary: "fraud-canary" } }));
    const same = await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model", payload: spec({ clusters: { canary: "fraud-canary" } }) });
    expect(same.statusCode, same.body).toBe(200);
    const moved = await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model", payload: spec({ clusters: { canary: "churn-canary" } }) });
    expect(moved.statusCode).toBe(409);
    expect(moved.json().details).toContainEqual({
      path: "/clusters",
      reason: "cannot change mid-rollout: the stable and canary its counts and gates are about would change",
    });
  });

  it("documents the field in the OpenAPI document", async () => {
    const app = await testApp();
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    const body = doc.paths["/v1/rollouts"].post.requestBody.content["application/json"].schema;
    expect(body.properties.clusters.description).toMatch(/Envoy clusters this rollout steers/);
    expect(Object.keys(body.properties.clusters.properties)).toEqual(["stable", "canary", "shadow"]);
  });
});
