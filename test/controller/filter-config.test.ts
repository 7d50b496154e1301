import { performance } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { holdMilliseconds } from "../../controller/src/filter-config/routes.ts";
import { within } from "../bounded.ts";
import { EPOCH, createRollout, metricValue, spec, testApp } from "./helpers.ts";

type App = Awaited<ReturnType<typeof testApp>>;

/** Starts a poll and reports when it settled, so tests can tell "held" from "answered". */
function poll(app: App, query: string) {
  const started = performance.now();
  let settledAt: number | undefined;
  const response = app.inject({ url: `/v1/filter-config?${query}` }).then((r) => {
    settledAt = performance.now();
    return r;
  });
  return { response, started, settled: () => settledAt };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("filter config body", () => {
  it("is exactly epoch, version and rollouts sorted by name with basis points", async () => {
    const app = await testApp();
    await createRollout(app, spec({ name: "zeta", match: { pathPrefix: "/z" }, stickyKey: { header: "x-tenant-id" }, canaryPercent: 5 }));
    await createRollout(app, spec({ name: "alpha", match: { pathPrefix: "/a" }, canaryPercent: 0.01 }));
    const response = await app.inject({ url: "/v1/filter-config" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^application\/json/);
    expect(response.json()).toStrictEqual({
      epoch: EPOCH,
      version: 3,
      rollouts: [
        {
          name: "alpha",
          pathPrefix: "/a",
          stickyHeader: "x-user-id",
          canaryBasisPoints: 1,
          segments: [],
          output: {
            analyze: false,
            maxBodyBytes: 65536,
            predictionField: "prediction",
            confidenceField: "confidence",
            labels: [],
            promptTokensField: "usage.prompt_tokens",
            completionTokensField: "usage.completion_tokens",
            guard: false,
            guardCluster: "stable",
            guardTimeoutMs: 2000,
          },
        },
        {
          name: "zeta",
          pathPrefix: "/z",
          stickyHeader: "x-tenant-id",
          canaryBasisPoints: 500,
          segments: [],
          output: {
            analyze: false,
            maxBodyBytes: 65536,
            predictionField: "prediction",
            confidenceField: "confidence",
            labels: [],
            promptTokensField: "usage.prompt_tokens",
            completionTokensField: "usage.completion_tokens",
            guard: false,
            guardCluster: "stable",
            guardTimeoutMs: 2000,
          },
        },
      ],
    });
  });

  it("starts at version 1 with a random 16-hex-character epoch per app", async () => {
    const { buildApp } = await import("../../controller/src/app.ts");
    const [a, b] = await Promise.all([buildApp(), buildApp()]);
    try {
      const bodyA = (await a.inject({ url: "/v1/filter-config" })).json();
      const bodyB = (await b.inject({ url: "/v1/filter-config" })).json();
      expect(bodyA.version).toBe(1);
      expect(bodyA.rollouts).toEqual([]);
      expect(bodyA.epoch).toMatch(/^[0-9a-f]{16}$/);
      expect(bodyB.epoch).toMatch(/^[0-9a-f]{16}$/);
      expect(bodyA.epoch).not.toBe(bodyB.epoch);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe("long-poll", () => {
  it.each([
    ["no parameters", ""],
    ["no version", `epoch=${EPOCH}&wait=10`],
    ["no epoch", "version=2&wait=10"],
    ["another epoch with the same version", "version=2&epoch=ffffffffffffffff&wait=10"],
    ["a stale version", `version=1&epoch=${EPOCH}&wait=10`],
    ["a version from the future", `version=7&epoch=${EPOCH}&wait=10`],
  ])("answers at once for %s", async (_label, query) => {
    const app = await testApp();
    await createRollout(app);
    // Order, not a wall-clock threshold: a current poll with a shorter wait (9 s) is still held when this
    // one (wait=10) answers; had this one been held, the current poll's own timeout would have come first.
    const current = poll(app, `version=2&epoch=${EPOCH}&wait=9`);
    const response = await app.inject({ url: `/v1/filter-config?${query}` });
    expect(response.statusCode).toBe(200);
    expect(response.json().version).toBe(2);
    expect(current.settled()).toBeUndefined();
    expect(await metricValue(app, "modelroll_config_polls_held")).toBe(1);
    await app.close();
    expect((await current.response).statusCode).toBe(304);
  });

  it("holds a current poll and releases it with the new config on a weight change", async () => {
    const app = await testApp();
    await createRollout(app);
    const held = poll(app, `version=2&epoch=${EPOCH}&wait=30`);
    await sleep(100);
    expect(held.settled()).toBeUndefined();
    expect(await metricValue(app, "modelroll_config_polls_held")).toBe(1);

    const change = await app.inject({
      method: "PUT",
      url: "/v1/rollouts/fraud-model/weight",
      payload: { canaryPercent: 10 },
    });
    // Released by the change, not by its 30 s wait (that would be a 304): by the time the change is answered
    // the poll has its answer, carrying the new version. How fast is bench/ territory (npm run bench).
    expect(change.statusCode).toBe(200);
    expect(held.settled(), "the held poll is answered by the time the weight change is").toBeDefined();
    const response = await held.response;
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ version: 3, rollouts: [{ canaryBasisPoints: 1000 }] });
    expect(await metricValue(app, "modelroll_config_polls_held")).toBe(0);
  });

  it.each([
    ["a rollback", { method: "POST" as const, url: "/v1/rollouts/fraud-model/rollback" }],
    ["a delete", { method: "DELETE" as const, url: "/v1/rollouts/fraud-model" }],
    ["a create", { method: "POST" as const, url: "/v1/rollouts", payload: spec({ name: "other", match: { pathPrefix: "/o" } }) }],
  ])("releases every held poll on %s", async (_label, request) => {
    const app = await testApp();
    await createRollout(app, spec({ canaryPercent: 20 }));
    const polls = [1, 2, 3].map(() => poll(app, `version=2&epoch=${EPOCH}&wait=30`));
    await sleep(50);
    expect(polls.map((p) => p.settled())).toEqual([undefined, undefined, undefined]);
    await app.inject(request);
    const responses = await Promise.all(polls.map((p) => p.response));
    expect(responses.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect(responses.map((r) => r.json().version)).toEqual([3, 3, 3]);
  });

  it("answers 304 with an empty body when nothing changes within wait", async () => {
    const app = await testApp();
    // Asked together, the wait=0.3 poll is held (a lower bound on time cannot flake: timers never fire early)
    // and then answered on its own while a wait=20 poll is still held.
    const longer = poll(app, `version=1&epoch=${EPOCH}&wait=20`);
    const started = performance.now();
    const response = await app.inject({ url: `/v1/filter-config?version=1&epoch=${EPOCH}&wait=0.3` });
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(response.statusCode).toBe(304);
    expect(response.body).toBe("");
    expect(longer.settled()).toBeUndefined();
    expect(await metricValue(app, "modelroll_config_polls_held")).toBe(1);
    await app.close();
    expect((await longer.response).statusCode).toBe(304);
  });

  it("answers 304 at once for wait=0", async () => {
    const app = await testApp();
    // Order, not a wall-clock threshold: asked together, the wait=0 call is answered while a wait=20 call is
    // still held (closing the app then releases the held one).
    const order: string[] = [];
    const answered = (what: string) => (r: { statusCode: number }) => {
      order.push(what);
      return r.statusCode;
    };
    const held = app.inject({ url: `/v1/filter-config?version=1&epoch=${EPOCH}&wait=20` }).then(answered("wait=20"));
    const atOnce = await app.inject({ url: `/v1/filter-config?version=1&epoch=${EPOCH}&wait=0` }).then(answered("wait=0"));
    expect(atOnce).toBe(304);
    expect(order).toEqual(["wait=0"]);
    await app.close();
    expect(await held).toBe(304);
    expect(order).toEqual(["wait=0", "wait=20"]);
  });

  it("defaults wait to 20 s and clamps it to 60 s", () => {
    expect(holdMilliseconds(undefined)).toBe(20_000);
    expect(holdMilliseconds("0")).toBe(0);
    expect(holdMilliseconds("2.5")).toBe(2500);
    expect(holdMilliseconds("61")).toBe(60_000);
    expect(holdMilliseconds("999999")).toBe(60_000);
  });

  it.each([
    ["version=-1", "/version"],
    ["version=abc", "/version"],
    ["version=1&wait=soon", "/wait"],
  ])("rejects %s with 400", async (query, path) => {
    const app = await testApp();
    const response = await app.inject({ url: `/v1/filter-config?${query}` });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatch(/^filter-config: invalid query string/);
    expect(response.json().details.map((d: { path: string }) => d.path)).toEqual([path]);
  });

  it("does not let app.close() hang on a held poll", async () => {
    const { buildApp } = await import("../../controller/src/app.ts");
    const app = await buildApp({ epoch: EPOCH });
    const held = poll(app, `version=1&epoch=${EPOCH}&wait=60`);
    await sleep(50);
    expect(held.settled()).toBeUndefined();
    // The poll would otherwise be held for 60 s: close must answer it, well before that.
    await within(20_000, "app.close() with a poll held for 60 s", app.close());
    const response = await within(5_000, "the held poll's answer after close", held.response);
    expect(response.statusCode).toBe(304);
  });
});

describe("controller metrics", () => {
  it("counts config pushes, version, rollouts and held polls", async () => {
    const app = await testApp();
    expect(await metricValue(app, "modelroll_config_pushes_total")).toBe(0);
    expect(await metricValue(app, "modelroll_config_version")).toBe(1);
    expect(await metricValue(app, "modelroll_rollouts")).toBe(0);

    await createRollout(app);
    await app.inject({ url: "/v1/filter-config" });
    await app.inject({ url: "/v1/filter-config?version=1" });
    await app.inject({ url: `/v1/filter-config?version=2&epoch=${EPOCH}&wait=0` }); // 304: not a push
    expect(await metricValue(app, "modelroll_config_pushes_total")).toBe(2);
    expect(await metricValue(app, "modelroll_config_version")).toBe(2);
    expect(await metricValue(app, "modelroll_rollouts")).toBe(1);
  });
});
