// Bearer tokens: the API token may read and write; the filter token (in every sidecar's plugin config) may only
// read, so a leaked Envoy config cannot move traffic. Health, metrics and the API document stay open.
import { describe, expect, it } from "vitest";
import { buildApp } from "../../controller/src/app.ts";
import { startController } from "../../controller/src/server.ts";
import { spec, testApp } from "./helpers.ts";

const API = "api-token-0123456789abcdef";
const FILTER = "filter-token-0123456789abcdef";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("bearer tokens", () => {
  it("writes need the API token; the filter token reads but may not write", async () => {
    const app = await testApp({ apiToken: API, filterToken: FILTER });
    const anonymous = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec() });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toBe('Bearer realm="modelroll"');
    expect(anonymous.json().error).toBe("POST /v1/rollouts: a bearer token is required (Authorization: Bearer <token>)");

    const byFilter = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec(), headers: bearer(FILTER) });
    expect(byFilter.statusCode).toBe(403);
    expect(byFilter.json().error).toMatch(/the filter token may only read/);
    const wrong = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec(), headers: bearer(`${API}x`) });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toMatch(/unknown bearer token/);
    expect(app.modelroll.store.size).toBe(0);

    const created = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec({ canaryPercent: 5 }), headers: bearer(API) });
    expect(created.statusCode).toBe(201);
    // Other write routes are covered by the default (non-GET means write), including ones added later.
    for (const [method, url, payload] of [
      ["PUT", "/v1/rollouts/fraud-model/weight", { canaryPercent: 50 }],
      ["POST", "/v1/rollouts/fraud-model/rollback", undefined],
      ["DELETE", "/v1/rollouts/fraud-model", undefined],
    ] as const) {
      expect((await app.inject({ method, url, payload, headers: bearer(FILTER) })).statusCode, `${method} ${url}`).toBe(403);
      expect((await app.inject({ method, url, payload })).statusCode, `${method} ${url}`).toBe(401);
    }
    expect(app.modelroll.store.get("fraud-model").canaryPercent).toBe(5);

    // Reads: the filters' config and any GET with either token; nothing without one.
    expect((await app.inject({ url: "/v1/filter-config", headers: bearer(FILTER) })).statusCode).toBe(200);
    expect((await app.inject({ url: "/v1/filter-config", headers: bearer(API) })).statusCode).toBe(200);
    expect((await app.inject({ url: "/v1/filter-config" })).statusCode).toBe(401);
    expect((await app.inject({ url: "/v1/rollouts/fraud-model", headers: bearer(FILTER) })).statusCode).toBe(200);
    expect((await app.inject({ url: "/v1/rollouts" })).statusCode).toBe(401);
    // The scheme is case-insensitive (RFC 7235).
    expect((await app.inject({ url: "/v1/rollouts", headers: { authorization: `bearer ${FILTER}` } })).statusCode).toBe(200);
    // Open: liveness, Prometheus scrapes, the API document.
    for (const url of ["/healthz", "/metrics", "/openapi.json"]) expect((await app.inject({ url })).statusCode, url).toBe(200);
  });

  it("without tokens the API is open (and the server only listens on loopback then)", async () => {
    const app = await testApp();
    expect((await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec() })).statusCode).toBe(201);
    await expect(startController({ host: "0.0.0.0" })).rejects.toThrow(
      "controller: refusing to listen on 0.0.0.0 without an API token (set one, or listen on 127.0.0.1)",
    );
  });

  it.each([
    [{ apiToken: "short" }, "controller: API token: must be 16-256 printable ASCII characters without spaces"],
    [{ apiToken: API, filterToken: "has a space in it, no" }, "controller: filter token: must be 16-256 printable ASCII characters without spaces"],
    [{ filterToken: FILTER }, "controller: a filter token without an API token would leave every write open; give both"],
    [{ apiToken: API, filterToken: API }, "controller: the filter token must differ from the API token (filters must not be able to write)"],
  ])("refuses bad token settings at startup: %j", async (options, message) => {
    await expect(buildApp(options)).rejects.toThrow(message);
  });
});
