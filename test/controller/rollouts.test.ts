import { describe, expect, it } from "vitest";
import { createRollout, metricValue, spec, testApp } from "./helpers.ts";

const configVersion = async (app: Awaited<ReturnType<typeof testApp>>) => (await app.inject({ url: "/v1/filter-config" })).json().version as number;

describe("rollout CRUD", () => {
  it("creates from JSON and returns the view with defaults filled in", async () => {
    const now = new Date("2025-03-01T12:00:00.000Z");
    const app = await testApp({ clock: () => now });
    const response = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec() });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toEqual({
      name: "fraud-model",
      spec: {
        name: "fraud-model",
        match: { pathPrefix: "/v1/predict" },
        stickyKey: { header: "x-user-id" },
        canaryPercent: 0,
        segments: [],
        shadow: null,
        output: {
          analyze: false,
          predictionField: "prediction",
          confidenceField: "confidence",
          labels: [],
          maxBodyBytes: 65536,
          llm: { promptTokensField: "usage.prompt_tokens", completionTokensField: "usage.completion_tokens" },
          schema: null,
          guard: { enabled: false, cluster: "stable", timeoutMs: 2000 },
        },
        models: null,
      },
      variants: {
        stable: { model: null, cluster: "stable", upstreams: null },
        canary: { model: null, cluster: "canary", upstreams: null },
        text: "stable cluster stable (upstream unknown) · canary cluster canary (upstream unknown)",
      },
      shadowPercent: 0,
      canaryPercent: 0,
      canaryBasisPoints: 0,
      configVersion: 2,
      revision: 1,
      createdAt: "2025-03-01T12:00:00.000Z",
      updatedAt: "2025-03-01T12:00:00.000Z",
      lastRollbackAt: null,
      managed: false,
      phase: null,
      stage: null,
      pending: null,
      lastRollback: null,
      finalizeHook: null,
      evaluation: null,
      upstreams: null,
      warnings: [],
      forecast: null,
    });
  });

  it("gets, lists sorted by name, and deletes", async () => {
    const app = await testApp();
    await createRollout(app, spec({ name: "zeta", match: { pathPrefix: "/z" }, canaryPercent: 12.34 }));
    await createRollout(app, spec({ name: "alpha", match: { pathPrefix: "/a" } }));

    const one = await app.inject({ url: "/v1/rollouts/zeta" });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ name: "zeta", canaryPercent: 12.34, canaryBasisPoints: 1234 });

    const list = await app.inject({ url: "/v1/rollouts" });
    expect(list.json().rollouts.map((r: { name: string }) => r.name)).toEqual(["alpha", "zeta"]);

    const versionBefore = await configVersion(app);
    const deleted = await app.inject({ method: "DELETE", url: "/v1/rollouts/zeta" });
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe("");
    expect(await configVersion(app)).toBe(versionBefore + 1);

    const gone = await app.inject({ url: "/v1/rollouts/zeta" });
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toEqual({ error: "rollout zeta: not found" });
    expect((await app.inject({ url: "/v1/rollouts" })).json().rollouts).toHaveLength(1);
  });

  it("answers 404 naming the rollout on every per-rollout route", async () => {
    const app = await testApp();
    const requests = [
      { method: "DELETE" as const, url: "/v1/rollouts/ghost" },
      { method: "POST" as const, url: "/v1/rollouts/ghost/rollback" },
      { method: "PUT" as const, url: "/v1/rollouts/ghost/weight", payload: { canaryPercent: 1 } },
      { method: "GET" as const, url: "/v1/rollouts/ghost/stats" },
    ];
    for (const request of requests) {
      const response = await app.inject(request);
      expect(response.statusCode, `${request.method} ${request.url}`).toBe(404);
      expect(response.json().error).toBe("rollout ghost: not found");
    }
  });

  it.each(["application/yaml", "application/x-yaml", "text/yaml", "application/yaml; charset=utf-8"])("creates from YAML sent as %s", async (contentType) => {
    const app = await testApp();
    const yaml = ["name: fraud-model", "match:", "  pathPrefix: /v1/predict", "stickyKey:", "  header: x-user-id", "canaryPercent: 2.5", ""].join("\n");
    const response = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      headers: { "content-type": contentType },
      payload: yaml,
    });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json().spec).toMatchObject({ ...spec(), canaryPercent: 2.5, segments: [], shadow: null });
    expect(response.json().spec.output.analyze).toBe(false);
    expect(response.json().canaryBasisPoints).toBe(250);
  });

  it("answers a YAML syntax error with 400 naming the line", async () => {
    const app = await testApp();
    const yaml = "name: fraud-model\nmatch:\n  pathPrefix: /v1/predict\n\tstickyKey: {}\n";
    const response = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      headers: { "content-type": "application/yaml" },
      payload: yaml,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatch(/^rollout spec: YAML syntax error at line 4\b/);
  });

  it("rejects YAML with a duplicated key instead of letting the last one win", async () => {
    const app = await testApp();
    const response = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      headers: { "content-type": "text/yaml" },
      payload: "name: a\nmatch: {pathPrefix: /a}\nstickyKey: {header: x-u}\ncanaryPercent: 1\ncanaryPercent: 50\n",
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatch(/line 5/);
  });

  it("rejects a JSON body that tries to set __proto__", async () => {
    const app = await testApp();
    const response = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      headers: { "content-type": "application/json; charset=utf-8" },
      payload: '{"name":"a","match":{"pathPrefix":"/a"},"stickyKey":{"header":"x"},"__proto__":{"admin":true}}',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatch(/^rollout spec: .*JSON/);
  });

  it("answers malformed JSON with the shared error shape", async () => {
    const app = await testApp();
    const response = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      headers: { "content-type": "application/json" },
      payload: '{"name": ',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatch(/^rollout spec: .*JSON/);
  });
});

describe("spec validation", () => {
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ["missing name", (({ name: _n, ...rest }) => rest)(spec()), "/name", /is required/],
    ["name with capitals", spec({ name: "Fraud-Model" }), "/name", /DNS label/],
    ["name with a dot", spec({ name: "fraud.model" }), "/name", /no dots/],
    ["name ending in '-'", spec({ name: "fraud-" }), "/name", /DNS label/],
    ["name of 64 characters", spec({ name: "a".repeat(64) }), "/name", /more than 63/],
    ["typo'd top-level field", spec({ canaryPrecent: 5 }), "/canaryPrecent", /not a known field.*canaryPercent/],
    ["typo'd nested field", spec({ match: { pathPrefix: "/v1", pathPrefx: "/v2" } }), "/match/pathPrefx", /not a known field/],
    ["pathPrefix without slash", spec({ match: { pathPrefix: "v1/predict" } }), "/match/pathPrefix", /must start with \//],
    ["pathPrefix with a space", spec({ match: { pathPrefix: "/v1/ predict" } }), "/match/pathPrefix", /no whitespace/],
    ["pathPrefix too long", spec({ match: { pathPrefix: `/${"a".repeat(256)}` } }), "/match/pathPrefix", /256/],
    ["uppercase header", spec({ stickyKey: { header: "X-User-Id" } }), "/stickyKey/header", /lowercase HTTP header/],
    ["header with a colon", spec({ stickyKey: { header: "x:y" } }), "/stickyKey/header", /lowercase HTTP header/],
    ["missing stickyKey", (({ stickyKey: _s, ...rest }) => rest)(spec()), "/stickyKey", /is required/],
    ["canaryPercent 101", spec({ canaryPercent: 101 }), "/canaryPercent", /<= 100/],
    ["canaryPercent -1", spec({ canaryPercent: -1 }), "/canaryPercent", />= 0/],
    ["canaryPercent 0.005", spec({ canaryPercent: 0.005 }), "/canaryPercent", /at most two decimals/],
    ["canaryPercent as a string", spec({ canaryPercent: "5" }), "/canaryPercent", /must be number/],
  ];

  it.each(cases)("rejects %s", async (_label, body, path, reason) => {
    const app = await testApp();
    const response = await app.inject({ method: "POST", url: "/v1/rollouts", payload: body });
    expect(response.statusCode).toBe(400);
    const json = response.json();
    // One field may break two rules (a 64-character name is too long and fails the pattern).
    expect(new Set(json.details.map((d: { path: string }) => d.path))).toEqual(new Set([path]));
    expect(json.details.some((d: { reason: string }) => reason.test(d.reason))).toBe(true);
    expect(json.error).toMatch(/^rollout [^:]+: invalid request body: /);
    // Nothing was created.
    expect((await app.inject({ url: "/v1/rollouts" })).json().rollouts).toEqual([]);
  });

  it("accepts the edges: 0, 100 and two decimals that floats cannot represent exactly", async () => {
    const app = await testApp();
    const values = [0, 100, 0.01, 0.07, 33.33, 99.99];
    for (const [i, canaryPercent] of values.entries()) {
      const view = await createRollout(app, spec({ name: `r${i}`, match: { pathPrefix: `/r${i}` }, canaryPercent }));
      expect(view.canaryBasisPoints).toBe(Math.round(canaryPercent * 100));
    }
  });

  it("reports every offending field together, naming the rollout", async () => {
    const app = await testApp();
    const response = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      payload: {
        name: "Bad_Name",
        match: { pathPrefix: "predict" },
        stickyKey: { header: "X-User" },
        canaryPercent: 0.005,
        shadow: true,
      },
    });
    expect(response.statusCode).toBe(400);
    const { error, details } = response.json();
    expect(error.startsWith("rollout Bad_Name: invalid request body: ")).toBe(true);
    expect(details.map((d: { path: string }) => d.path).sort()).toEqual(
      ["/canaryPercent", "/match/pathPrefix", "/name", "/shadow", "/stickyKey/header"].sort(),
    );
    for (const detail of details) expect(detail.reason).not.toBe("");
  });

  it("rejects a missing body as not an object", async () => {
    const app = await testApp();
    const response = await app.inject({ method: "POST", url: "/v1/rollouts" });
    expect(response.statusCode).toBe(400);
    expect(response.json().details).toEqual([{ path: "", reason: "must be object" }]);
  });
});

describe("conflicts", () => {
  it("answers 409 when the name exists", async () => {
    const app = await testApp();
    await createRollout(app);
    const response = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      payload: spec({ match: { pathPrefix: "/other" } }),
    });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toEqual({ error: "rollout fraud-model: already exists" });
  });

  it("answers 409 naming the other rollout when the pathPrefix is taken", async () => {
    const app = await testApp();
    await createRollout(app);
    const response = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec({ name: "fraud-v2" }) });
    expect(response.statusCode).toBe(409);
    expect(response.json().error).toBe(
      "rollout fraud-v2: pathPrefix /v1/predict is held by rollout fraud-model (manual, canary 0%): DELETE /v1/rollouts/fraud-model frees it (its report and history stay readable in the archive)",
    );
    // A longer prefix is a different route, not a conflict.
    const longer = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec({ name: "fraud-v2", match: { pathPrefix: "/v1/predict/v2" } }) });
    expect(longer.statusCode, longer.body).toBe(201);
    expect(longer.json()).toMatchObject({ name: "fraud-v2", spec: { match: { pathPrefix: "/v1/predict/v2" } } });
  });

  it("frees the name and prefix on delete", async () => {
    const app = await testApp();
    const first = await createRollout(app, spec({ canaryPercent: 5 }));
    const deleted = await app.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model" });
    expect(deleted.statusCode).toBe(204);
    // The same name and prefix again: created anew (201), not refused as taken (409).
    const again = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec() });
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json()).toMatchObject({ name: "fraud-model", canaryPercent: 0, revision: 1, spec: { match: { pathPrefix: "/v1/predict" } } });
    expect(again.json().configVersion).toBeGreaterThan(first.configVersion);
  });
});

describe("weight and rollback", () => {
  it("sets the weight, bumps the config version and keeps the spec as given", async () => {
    const app = await testApp();
    const created = await createRollout(app);
    const response = await app.inject({
      method: "PUT",
      url: "/v1/rollouts/fraud-model/weight",
      payload: { canaryPercent: 25.5 },
    });
    expect(response.statusCode).toBe(200);
    const view = response.json();
    expect(view.canaryPercent).toBe(25.5);
    expect(view.canaryBasisPoints).toBe(2550);
    expect(view.configVersion).toBe(created.configVersion + 1);
    expect(view.spec.canaryPercent).toBe(0);
    expect(await configVersion(app)).toBe(view.configVersion);

    const filter = (await app.inject({ url: "/v1/filter-config" })).json();
    expect(filter.rollouts[0].canaryBasisPoints).toBe(2550);
  });

  it("does not bump the version when the weight does not change", async () => {
    const app = await testApp();
    await createRollout(app, spec({ canaryPercent: 5 }));
    const before = await configVersion(app);
    await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload: { canaryPercent: 5 } });
    expect(await configVersion(app)).toBe(before);
  });

  it.each([
    [{ canaryPercent: 101 }, "/canaryPercent"],
    [{ canaryPercent: 0.001 }, "/canaryPercent"],
    [{ canaryPercent: "5" }, "/canaryPercent"],
    [{}, "/canaryPercent"],
    [{ canaryPercent: 5, weight: 5 }, "/weight"],
  ])("rejects weight body %j naming the rollout", async (payload, path) => {
    const app = await testApp();
    await createRollout(app);
    const response = await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatch(/^rollout fraud-model: invalid request body/);
    expect(response.json().details.map((d: { path: string }) => d.path)).toEqual([path]);
    expect((await app.inject({ url: "/v1/rollouts/fraud-model" })).json().canaryPercent).toBe(0);
  });

  it("rolls back to 0 at once, records the time and counts it", async () => {
    let now = new Date("2025-03-01T12:00:00.000Z");
    const app = await testApp({ clock: () => now });
    await createRollout(app, spec({ canaryPercent: 50 }));
    const before = await configVersion(app);
    now = new Date("2025-03-01T12:05:00.000Z");

    const response = await app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/rollback" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      canaryPercent: 0,
      canaryBasisPoints: 0,
      configVersion: before + 1,
      updatedAt: "2025-03-01T12:05:00.000Z",
      lastRollbackAt: "2025-03-01T12:05:00.000Z",
    });
    expect(await configVersion(app)).toBe(before + 1);
    expect(await metricValue(app, "modelroll_rollbacks_total")).toBe(1);

    // A second rollback is a no-op: nothing to push, nothing recorded, the same revision (so an If-Match taken
    // before it still holds). Clients that label an empty body as JSON must not be refused on the emergency path.
    const again = await app.inject({
      method: "POST",
      url: "/v1/rollouts/fraud-model/rollback",
      headers: { "content-type": "application/json" },
      payload: "",
    });
    expect(again.statusCode).toBe(200);
    expect(again.json().revision).toBe(response.json().revision);
    expect(again.headers.etag).toBe(response.headers.etag);
    expect(again.json().lastRollbackAt).toBe("2025-03-01T12:05:00.000Z");
    expect(await metricValue(app, "modelroll_rollbacks_total")).toBe(1);
    expect(await configVersion(app)).toBe(before + 1);
  });
});
