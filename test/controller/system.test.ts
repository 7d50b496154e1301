import { describe, expect, it } from "vitest";
import { createRollout, testApp } from "./helpers.ts";

describe("system routes", () => {
  it("answers /healthz", async () => {
    const app = await testApp();
    const response = await app.inject({ url: "/healthz" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: "ok" });
  });

  it("answers /readyz: one controller without election is the leader and ready", async () => {
    const app = await testApp();
    const response = await app.inject({ url: "/readyz" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ ready: true, role: "leader", identity: null, leader: null, term: null, reasons: [] });
    expect((await app.inject({ url: "/metrics" })).body).toMatch(/^modelroll_leader 1$/m);
  });

  it("serves Prometheus text with counters that move, per app", async () => {
    const app = await testApp();
    const other = await testApp();
    await createRollout(app);
    await app.inject({ url: "/v1/filter-config" });
    await app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/rollback" });

    const response = await app.inject({ url: "/metrics" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.body).toMatch(/^# TYPE modelroll_config_pushes_total counter$/m);
    expect(response.body).toMatch(/^modelroll_config_pushes_total 1$/m);
    expect(response.body).toMatch(/^modelroll_rollbacks_total 1$/m);
    expect(response.body).toMatch(/^modelroll_rollouts 1$/m);
    expect(response.body).toMatch(/^modelroll_config_polls_held 0$/m);

    // A second app in the same process has its own registry.
    const otherText = (await other.inject({ url: "/metrics" })).body;
    expect(otherText).toMatch(/^modelroll_config_pushes_total 0$/m);
    expect(otherText).toMatch(/^modelroll_rollouts 0$/m);
  });

  it("publishes an OpenAPI 3 document listing the API routes", async () => {
    const app = await testApp();
    const response = await app.inject({ url: "/openapi.json" });
    expect(response.statusCode).toBe(200);
    const doc = response.json();
    expect(doc.openapi).toMatch(/^3\./);
    const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        "GET /healthz",
        "GET /readyz",
        "GET /v1/rollouts",
        "POST /v1/rollouts",
        "POST /v1/rollouts/{name}/accept-upstreams",
        "GET /v1/rollouts/{name}",
        "DELETE /v1/rollouts/{name}",
        "PUT /v1/rollouts/{name}/weight",
        "PUT /v1/rollouts/{name}/shadow",
        "POST /v1/rollouts/{name}/rollback",
        "POST /v1/rollouts/{name}/promote",
        "POST /v1/rollouts/{name}/pause",
        "POST /v1/rollouts/{name}/resume",
        "POST /v1/rollouts/{name}/fail",
        "POST /v1/rollouts/{name}/undo",
        "POST /v1/rollouts/{name}/review",
        "POST /v1/rollouts/{name}/measurements",
        "GET /v1/rollouts/{name}/history",
        "GET /v1/rollouts/{name}/stats",
        "GET /v1/rollouts/{name}/report",
        "GET /v1/rollouts/{name}/events",
        "GET /v1/rollouts/{name}/series",
        "GET /v1/events",
        "GET /v1/notifications",
        "GET /v1/session",
        "GET /v1/filter-config",
        "PUT /v1/rollouts/{name}",
        "POST /v1/rollouts/{name}/finalize",
        "GET /v1/archive/{id}",
        "GET /v1/archive/{id}/history",
        "GET /v1/archive/{id}/report",
      ].sort(),
    );
    const create = doc.paths["/v1/rollouts"].post;
    expect(Object.keys(create.requestBody.content)).toEqual(expect.arrayContaining(["application/json", "application/yaml"]));
    expect(create.requestBody.content["application/json"].schema.additionalProperties).toBe(false);
  });

  it("answers unknown routes in the shared error shape", async () => {
    const app = await testApp();
    const response = await app.inject({ url: "/v2/nothing?x=1" });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ error: "route GET /v2/nothing: not found" });
  });
});
