// Which model is which, through the API: the view's `variants` (declared versions, else the upstream hosts the
// Envoys' admin endpoints say each cluster reaches), the same words in the list and the report; the spec's
// expectedTraffic echoed back; a report segment row with no requests shows no p95.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterHosts } from "../../controller/src/metrics/envoy-upstreams.ts";
import { buildReport, reportMarkdown } from "../../controller/src/release/report.ts";
import type { Rollout } from "../../controller/src/rollouts/model.ts";
import { createRollout, spec, testApp } from "../controller/helpers.ts";
import { harness, managedSpec } from "./harness.ts";

/** Envoy's admin /clusters?format=json, as Envoy 1.3x writes it (trimmed to what is read). */
const host = (address: string, port: number, hostname?: string) => ({
  address: { socket_address: { address, port_value: port } },
  stats: [],
  ...(hostname ? { hostname } : {}),
});
let clusters: Record<string, unknown> = {};
let asked = 0;
let admin: Server;
let adminUrl: string;
beforeAll(async () => {
  admin = createServer((req, res) => {
    if (req.url !== "/clusters?format=json") {
      res.writeHead(404).end();
      return;
    }
    asked++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(clusters));
  });
  await new Promise<void>((resolve) => admin.listen(0, "127.0.0.1", resolve));
  adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => admin.close(() => resolve())));

const STATUSES = {
  cluster_statuses: [
    { name: "stable", host_statuses: [host("127.0.0.1", 9001)] },
    { name: "canary", host_statuses: [host("127.0.0.1", 9002)] },
    { name: "fraud-canary", host_statuses: [host("10.0.0.7", 80, "fraud-v2.internal"), host("10.0.0.8", 80, "fraud-v2.internal")] },
    { name: "empty", host_statuses: [] },
  ],
};

describe("parseClusterHosts", () => {
  it("reads host:port per cluster, names a DNS host by its name, and skips what it cannot read", () => {
    const parsed = parseClusterHosts({ cluster_statuses: [...STATUSES.cluster_statuses, { name: 7 }, { name: "odd", host_statuses: [{ address: {} }] }] });
    expect([...parsed]).toEqual([
      ["stable", ["127.0.0.1:9001"]],
      ["canary", ["127.0.0.1:9002"]],
      ["fraud-canary", ["fraud-v2.internal:80 (10.0.0.7)", "fraud-v2.internal:80 (10.0.0.8)"]],
      ["empty", []],
      ["odd", []],
    ]);
    expect(parseClusterHosts("not json").size).toBe(0);
  });
});

describe("the view's variants", () => {
  it("names the declared versions and the hosts Envoy reaches, in the view, the list, the write answers and the report", async () => {
    clusters = STATUSES;
    const before = asked;
    const app = await testApp({ envoyAdminUrls: [adminUrl], upstreamsIntervalMs: 0, tickIntervalMs: 0 });
    await app.ready();
    // Read at start, before any view is asked for (the upstream guard reads it too).
    expect(asked).toBeGreaterThan(before);
    const created = await createRollout(app, spec({ models: { stable: "v1", canary: "v2" } }));
    expect(created.variants).toEqual({
      stable: { model: "v1", cluster: "stable", upstreams: ["127.0.0.1:9001"] },
      canary: { model: "v2", cluster: "canary", upstreams: ["127.0.0.1:9002"] },
      text: "stable v1 at 127.0.0.1:9001 · canary v2 at 127.0.0.1:9002",
    });
    // No versions declared, clusters of another model: the hosts are the identity.
    await createRollout(app, spec({ name: "other", match: { pathPrefix: "/other" }, clusters: { stable: "stable", canary: "fraud-canary" } }));
    const listAnswer = await app.inject({ url: "/v1/rollouts" });
    const list = listAnswer.json();
    const other = list.rollouts.find((r: { name: string }) => r.name === "other");
    expect(other.variants.text).toBe("stable 127.0.0.1:9001 · canary fraud-v2.internal:80 (10.0.0.7), fraud-v2.internal:80 (10.0.0.8)");

    // The Envoy's clusters change (an upgrade points canary elsewhere): the next read says so.
    clusters = {
      cluster_statuses: [
        { name: "stable", host_statuses: [host("127.0.0.1", 9001)] },
        { name: "canary", host_statuses: [] },
      ],
    };
    await app.modelroll.envoyUpstreams.refresh();
    const after = (await app.inject({ url: "/v1/rollouts/fraud-model" })).json();
    expect(after.variants.text).toBe("stable v1 at 127.0.0.1:9001 · canary v2 at no hosts");
    // The list is cached as text per rollout and per reading of the clusters: it says the same, with a new ETag
    // (no rollout changed, so a cache keyed on the rollouts alone would still answer the old hosts, and a 304).
    const listed = await app.inject({ url: "/v1/rollouts", headers: { "if-none-match": String(listAnswer.headers.etag) } });
    expect(listed.statusCode).toBe(200);
    expect(listed.json().rollouts.find((r: { name: string }) => r.name === "fraud-model").variants.text).toBe(after.variants.text);
  });

  it("says unknown when no Envoy is asked or none names the cluster; an endpoint that refuses hides nothing", async () => {
    const none = await testApp({ tickIntervalMs: 0 });
    const created = await createRollout(none, spec());
    expect(created.variants.text).toBe("stable cluster stable (upstream unknown) · canary cluster canary (upstream unknown)");

    clusters = STATUSES;
    const app = await testApp({ envoyAdminUrls: [adminUrl, "http://127.0.0.1:1"], upstreamsIntervalMs: 0, tickIntervalMs: 0 });
    await app.ready();
    expect((await createRollout(app, spec())).variants.canary.upstreams).toEqual(["127.0.0.1:9002"]);
    clusters = { nonsense: true };
    await app.modelroll.envoyUpstreams.refresh();
    // An answer without clusters is an answer (nothing known now); a refused connection is not.
    expect((await app.inject({ url: "/v1/rollouts/fraud-model" })).json().variants.canary.upstreams).toBeNull();
  });

  it("puts the models line in the report of a managed rollout", async () => {
    clusters = STATUSES;
    const h = await harness({ app: { envoyAdminUrls: [adminUrl], upstreamsIntervalMs: 0 } });
    await h.app.ready();
    expect((await h.app.inject({ method: "POST", url: "/v1/rollouts", payload: managedSpec({ models: { stable: "v7", canary: "v8" } }) })).statusCode).toBe(
      201,
    );
    await h.round();
    const report = (await h.app.inject({ url: "/v1/rollouts/fraud-model/report" })).json();
    expect(report.variants.text).toBe("stable v7 at 127.0.0.1:9001 · canary v8 at 127.0.0.1:9002");
    const markdown = (await h.app.inject({ url: "/v1/rollouts/fraud-model/report?format=markdown" })).body;
    expect(markdown).toContain("- models: stable v7 at 127.0.0.1:9001 · canary v8 at 127.0.0.1:9002\n");
  });
});

describe("the spec as echoed", () => {
  it("keeps expectedTraffic in the create answer and in GET", async () => {
    const app = await testApp({ tickIntervalMs: 0 });
    const given = { requestsPerSecond: 80, smallestSegmentShare: 0.1 };
    const created = await createRollout(app, { ...managedSpec(), expectedTraffic: given });
    expect(created.spec.expectedTraffic).toEqual(given);
    expect((await app.inject({ url: "/v1/rollouts/fraud-model" })).json().spec.expectedTraffic).toEqual(given);
    await createRollout(app, { ...managedSpec({ name: "bare", match: { pathPrefix: "/bare" } }) });
    expect((await app.inject({ url: "/v1/rollouts/bare" })).json().spec).not.toHaveProperty("expectedTraffic");
  });
});

describe("the report's segment rows", () => {
  it("show no p95 or error rate for a variant with no requests in the window", async () => {
    const h = await harness();
    expect(
      (
        await h.app.inject({
          method: "POST",
          url: "/v1/rollouts",
          payload: managedSpec({ segments: [{ name: "tier", header: "x-tier", values: ["free", "pro"] }] }),
        })
      ).statusCode,
    ).toBe(201);
    for (let i = 0; i < 10; i++) await h.round();
    const rollout = h.app.modelroll.store.get("fraud-model");
    const decisions = rollout.engine!.decisions;
    const withWindow = decisions.map((d) => d.window !== null).lastIndexOf(true);
    expect(withWindow, "a decision with a window").toBeGreaterThanOrEqual(0);
    // As a 100% stage records it: stable got no request, yet late-flushed answers of the stage before give it a p95.
    const late = { requests: 0, errorRate: 0, p95Ms: 41.5 };
    const window = decisions[withWindow]!.window!;
    const patched: Rollout = {
      ...rollout,
      engine: {
        ...rollout.engine!,
        decisions: decisions.map((d, i) =>
          i === withWindow ? { ...d, window: { ...window, slices: window.slices.map((s) => ({ ...s, stable: late })) } } : d,
        ),
      },
    };
    const report = buildReport(patched)!;
    expect(report.segments.length).toBeGreaterThan(0);
    for (const s of report.segments) expect(s.stable).toEqual({ requests: 0, errorRate: null, p95Ms: null });
    expect(report.segments.some((s) => s.candidate.requests > 0 && s.candidate.p95Ms !== null)).toBe(true);
    const row = reportMarkdown(report)
      .split("\n")
      .find((l) => l.startsWith("| overall |"));
    expect(row).toMatch(/^\| overall \| 0 \| - \| - \| \d+ \| /);
  });
});
