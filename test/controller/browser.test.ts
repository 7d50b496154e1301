// What the dashboard needs from the controller: its files, security headers, GET /v1/session, and writes
// refused when a browser sends them on behalf of another site (CSRF) or a rebound DNS name.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDashboard } from "../../scripts/build-dashboard.mjs";
import { CONTENT_SECURITY_POLICY } from "../../controller/src/http/browser-guard.ts";
import { createRollout, spec, testApp } from "./helpers.ts";

const API = "api-token-0123456789abcdef";
const FILTER = "filter-token-0123456789abcdef";

let dashboardDir: string;
beforeAll(async () => {
  dashboardDir = (await buildDashboard({ quiet: true })).dir;
});

describe("dashboard files", () => {
  it("serves the page at / and /rollouts/{name} with a strict CSP and no inline script or style", async () => {
    const app = await testApp({ dashboardDir });
    for (const url of ["/", "/rollouts/fraud-model"]) {
      const res = await app.inject({ url });
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toContain("text/html");
      expect(res.headers["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
      expect(res.headers["content-security-policy"]).not.toContain("unsafe-inline");
      expect(res.headers["x-frame-options"]).toBe("DENY");
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      const scripts = [...res.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length).toBeGreaterThan(0);
      for (const [, attributes, content] of scripts) {
        expect(attributes).toMatch(/src="\/assets\/app-[A-Z0-9]+\.js"/);
        expect(content.trim()).toBe("");
      }
      expect(res.body).not.toMatch(/<style|\son[a-z]+=|style="/i);
    }
    const script = /src="(\/assets\/[^"]+)"/.exec((await app.inject({ url: "/" })).body)![1];
    const js = await app.inject({ url: script });
    expect(js.statusCode).toBe(200);
    expect(js.headers["content-type"]).toContain("javascript");
    expect(js.headers["cache-control"]).toContain("immutable");
    expect((await app.inject({ url: "/assets/nope.js" })).statusCode).toBe(404);
  });

  it("answers 503 with what to do when the dashboard was not built", async () => {
    const empty = mkdtempSync(join(tmpdir(), "modelroll-nodash-"));
    try {
      const app = await testApp({ dashboardDir: empty });
      const res = await app.inject({ url: "/" });
      expect(res.statusCode).toBe(503);
      expect(res.body).toContain("npm run build:dashboard");
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("puts the security headers on API answers too", async () => {
    const app = await testApp();
    const res = await app.inject({ url: "/v1/rollouts" });
    expect(res.headers["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
  });
});

describe("GET /v1/session", () => {
  it("says the open API lets anyone write", async () => {
    const app = await testApp();
    expect((await app.inject({ url: "/v1/session" })).json()).toEqual({ tokensRequired: false, access: "write" });
  });

  it("tells the API token, the read-only token, no token and a wrong one apart", async () => {
    const app = await testApp({ apiToken: API, filterToken: FILTER });
    const as = (token?: string) => app.inject({ url: "/v1/session", headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await as()).json()).toEqual({ tokensRequired: true, access: null });
    expect((await as(API)).json()).toEqual({ tokensRequired: true, access: "write" });
    expect((await as(FILTER)).json()).toEqual({ tokensRequired: true, access: "read" });
    const wrong = await as("not-the-token-0123456789");
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toContain("unknown bearer token");
    // The page needs no token to load; the data does.
    expect((await app.inject({ url: "/v1/rollouts" })).statusCode).toBe(401);
  });
});

describe("writes from other sites (CSRF) on the open loopback API", () => {
  const rollback = (headers: Record<string, string>) => ({
    method: "POST" as const,
    url: "/v1/rollouts/fraud-model/rollback",
    headers: { host: "127.0.0.1:8080", ...headers },
  });

  it("refuses a cross-site or same-site browser write and changes nothing", async () => {
    const app = await testApp();
    await createRollout(app, spec({ canaryPercent: 20 }));
    for (const headers of <Array<Record<string, string>>>[
      { "sec-fetch-site": "cross-site", origin: "http://evil.example" },
      { "sec-fetch-site": "same-site", origin: "http://127.0.0.1:3000" },
      { origin: "http://evil.example" },
      { origin: "null" },
      { "sec-fetch-site": "cross-site" },
    ]) {
      const res = await app.inject(rollback(headers));
      expect(res.statusCode, JSON.stringify(headers)).toBe(403);
      expect(res.json().error).toMatch(/refused: a write from another (site|origin)/);
    }
    // A plain HTML form post (no JSON, no preflight) too.
    const form = await app.inject({
      ...rollback({ "sec-fetch-site": "cross-site", origin: "http://evil.example", "content-type": "application/x-www-form-urlencoded" }),
      payload: "",
    });
    expect(form.statusCode).toBe(403);
    expect((await app.inject({ url: "/v1/rollouts/fraud-model" })).json()).toMatchObject({ canaryPercent: 20, revision: 1 });
  });

  it("lets the page's own writes, curl and the CLI through", async () => {
    const app = await testApp();
    await createRollout(app, spec({ canaryPercent: 20 }));
    const own = await app.inject({
      method: "PUT",
      url: "/v1/rollouts/fraud-model/weight",
      headers: { host: "127.0.0.1:8080", "sec-fetch-site": "same-origin", origin: "http://127.0.0.1:8080" },
      payload: { canaryPercent: 30 },
    });
    expect(own.statusCode, own.body).toBe(200);
    const curl = await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload: { canaryPercent: 40 } });
    expect(curl.statusCode).toBe(200);
    expect((await app.inject(rollback({}))).statusCode).toBe(200);
  });

  it("refuses browser requests for a name that is not loopback when the API is open (DNS rebinding)", async () => {
    const app = await testApp();
    await createRollout(app, spec({ canaryPercent: 20 }));
    const read = await app.inject({ url: "/v1/rollouts", headers: { host: "rebound.example:8080", "sec-fetch-site": "same-origin" } });
    expect(read.statusCode).toBe(403);
    expect(read.json().error).toContain("loopback");
    const write = await app.inject(rollback({ host: "rebound.example:8080", origin: "http://rebound.example:8080", "sec-fetch-site": "same-origin" }));
    expect(write.statusCode).toBe(403);
    // localhost is loopback.
    expect((await app.inject({ url: "/v1/rollouts", headers: { host: "localhost:8080", "sec-fetch-site": "same-origin" } })).statusCode).toBe(200);
  });

  it("with tokens, a cross-site write is refused before the token is even looked at", async () => {
    const app = await testApp({ apiToken: API, filterToken: FILTER });
    const res = await app.inject({
      method: "POST",
      url: "/v1/rollouts/x/rollback",
      headers: { host: "modelroll.internal:8080", origin: "http://evil.example", authorization: `Bearer ${API}` },
    });
    expect(res.statusCode).toBe(403);
  });
});

afterAll(() => undefined);
