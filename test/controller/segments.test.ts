import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parsePrometheusText } from "../../controller/src/metrics/prometheus-text.ts";
import { rolloutCountsFromSamples } from "../../controller/src/metrics/rollout-counts.ts";
import { createRollout, spec, testApp } from "./helpers.ts";

const segments = [
  { name: "tenant_tier", header: "x-tenant-tier", values: ["free", "pro", "enterprise"] },
  { name: "endpoint", endpoints: [{ value: "score", pathPrefix: "/v1/predict/score" }] },
  { name: "size", requestSizeBytes: [1024, 16384] },
];

describe("rollout segments", () => {
  it("are accepted, kept in the spec and sent to the filter with derived values", async () => {
    const app = await testApp();
    const created = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec({ segments }) });
    expect(created.statusCode).toBe(201);
    expect(created.json().spec.segments).toEqual(segments);
    const config = (await app.inject({ url: "/v1/filter-config" })).json();
    expect(config.rollouts[0].segments).toEqual([
      { name: "tenant_tier", header: "x-tenant-tier", values: ["free", "pro", "enterprise"] },
      { name: "endpoint", prefixes: ["/v1/predict/score"], values: ["score"] },
      { name: "size", bounds: [1024, 16384], values: ["le_1024", "le_16384", "gt_16384"] },
    ]);
  });

  it.each([
    [[{ name: "tier", header: "x-tier" }], "/segments/0/values", "a header dimension lists its allowed values"],
    [[{ name: "tier", values: ["a"] }], "/segments/0", "needs exactly one of header (with values), endpoints, requestSizeBytes"],
    [
      [{ name: "tier", header: "x-tier", values: ["a"], requestSizeBytes: [1] }],
      "/segments/0",
      "needs exactly one of header (with values), endpoints, requestSizeBytes",
    ],
    [[{ name: "tier", header: "x-tier", values: ["other"] }], "/segments/0/values/0", "'other' is reserved for values not listed"],
    [[{ name: "size", requestSizeBytes: [100, 100] }], "/segments/0/requestSizeBytes/1", "must be greater than the previous bound"],
    [
      [
        {
          name: "ep",
          endpoints: [
            { value: "a", pathPrefix: "/a" },
            { value: "a", pathPrefix: "/b" },
          ],
        },
      ],
      "/segments/0/endpoints/1/value",
      "duplicate value 'a'",
    ],
    [
      [
        { name: "t", header: "x", values: ["a"] },
        { name: "t", header: "y", values: ["b"] },
      ],
      "/segments/1/name",
      "duplicate dimension 't'",
    ],
    [[{ name: "Tier", header: "x-tier", values: ["a"] }], "/segments/0/name", "must be 1 to 32 of a-z, 0-9, '_' and '-' (it becomes a stat label)"],
    [[{ name: "tier", header: "x-tier", values: ["a.b"] }], "/segments/0/values/0", "must be 1 to 32 of a-z, 0-9, '_' and '-' (it becomes a stat label)"],
    [[{ name: "tier", header: "x-tier", values: ["a"], typo: 1 }], "/segments/0/typo", "is not a known field"],
  ])("refuses %j with the field and reason", async (segs, path, reason) => {
    const app = await testApp();
    const res = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec({ segments: segs }) });
    expect(res.statusCode).toBe(400);
    const details = res.json().details as { path: string; reason: string }[];
    expect(
      details.some((d) => d.path === path && d.reason.includes(reason)),
      JSON.stringify(details),
    ).toBe(true);
    expect((await app.inject({ url: "/v1/rollouts" })).json().rollouts).toEqual([]);
  });
});

describe("segment counts from Envoy's stats", () => {
  it("keeps overall series apart from segment series", () => {
    const text = readFileSync(join(import.meta.dirname, "fixtures", "envoy-segments.prom"), "utf8");
    const counts = rolloutCountsFromSamples(parsePrometheusText(text).samples, "fraud-model");
    expect(counts.canary.requests).toBe(10);
    expect(counts.stable.requests).toBe(90);
    expect(counts.segments.tenant_tier.pro.canary.requests).toBe(4);
    expect(counts.segments.tenant_tier.other.canary.requests).toBe(6);
    expect(counts.segments.tenant_tier.pro.stable.responses["5xx"]).toBe(2);
    expect(counts.segments.tenant_tier.pro.stable.latency.count).toBe(30);
    expect(Object.keys(counts.segments)).toEqual(["tenant_tier"]);
  });
});

void createRollout;
