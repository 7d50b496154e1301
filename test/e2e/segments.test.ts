// Per-segment stats on real Envoy: the filter counts every request overall and under its value in each
// dimension (header value, endpoint, request size), and the controller reports them per variant.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, sendMany, startStack, waitFor, waitForRolloutActive, type Stack } from "./harness.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const TIERS = ["free", "pro", "enterprise", "platinum", ""]; // platinum: not listed; "": header absent
const PATHS = ["/seg/score", "/seg/score/batch", "/seg/explain"];
const SIZES = [10, 2000, 20000];

describe("segments on real Envoy", () => {
  it("counts each request under its value in every dimension, unlisted values as 'other'", async () => {
    const created = await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "segmented",
      match: { pathPrefix: "/seg" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 40,
      segments: [
        { name: "tenant_tier", header: "x-tenant-tier", values: ["free", "pro", "enterprise"] },
        {
          name: "endpoint",
          endpoints: [
            { value: "score", pathPrefix: "/seg/score" },
            { value: "batch", pathPrefix: "/seg/score/batch" },
          ],
        },
        { name: "size", requestSizeBytes: [1024, 16384] },
      ],
    });
    expect(created.status).toBe(201);
    await waitForRolloutActive(`${stack.dataUrl}/seg`);
    const before = (await api(stack.controller!.url, "GET", "/v1/rollouts/segmented/stats")).json;

    const n = 900;
    const tierOf = (i: number) => TIERS[i % TIERS.length];
    const pathOf = (i: number) => PATHS[Math.floor(i / 5) % PATHS.length];
    const sizeOf = (i: number) => SIZES[Math.floor(i / 15) % SIZES.length];
    const replies = await sendMany(
      (i) => `${stack.dataUrl}${pathOf(i)}`,
      n,
      (i) => ({ "x-user-id": `seg-${i}`, ...(tierOf(i) ? { "x-tenant-tier": tierOf(i) } : {}) }),
      16,
      (i) =>
        JSON.stringify({ pad: "x".repeat(sizeOf(i) - 10) })
          .slice(0, sizeOf(i))
          .padEnd(sizeOf(i), " "),
    );
    expect(replies.every((r) => r.status === 200 && r.variant !== null)).toBe(true);

    // What the test expects per dimension, value and variant, from what it sent and what the filter chose.
    const expected: Record<string, Record<string, Record<string, number>>> = { tenant_tier: {}, endpoint: {}, size: {} };
    const bump = (dim: string, value: string, variant: string) => {
      expected[dim][value] ??= { stable: 0, canary: 0 };
      expected[dim][value][variant]++;
    };
    replies.forEach((r, i) => {
      const tier = tierOf(i);
      bump("tenant_tier", ["free", "pro", "enterprise"].includes(tier) ? tier : "other", r.variant!);
      const path = pathOf(i);
      bump("endpoint", path.startsWith("/seg/score/batch") ? "batch" : path.startsWith("/seg/score") ? "score" : "other", r.variant!);
      const size = sizeOf(i);
      bump("size", size <= 1024 ? "le_1024" : size <= 16384 ? "le_16384" : "gt_16384", r.variant!);
    });

    const delta = (stats: any, dim: string, value: string, variant: string) =>
      (stats.segments[dim]?.[value]?.[variant]?.requests ?? 0) - (before.segments[dim]?.[value]?.[variant]?.requests ?? 0);
    let stats: any;
    await waitFor(
      "segment counts",
      async () => {
        stats = (await api(stack.controller!.url, "GET", "/v1/rollouts/segmented/stats")).json;
        return Object.entries(expected).every(([dim, values]) =>
          Object.entries(values).every(
            ([value, byVariant]) => delta(stats, dim, value, "stable") === byVariant.stable && delta(stats, dim, value, "canary") === byVariant.canary,
          ),
        );
      },
      10_000,
      200,
    );
    console.log("expected per segment:", JSON.stringify(expected));
    for (const [dim, values] of Object.entries(expected)) {
      for (const [value, byVariant] of Object.entries(values)) {
        expect(delta(stats, dim, value, "stable"), `${dim}=${value} stable`).toBe(byVariant.stable);
        expect(delta(stats, dim, value, "canary"), `${dim}=${value} canary`).toBe(byVariant.canary);
      }
      // Every request lands in exactly one value of each dimension: the values add up to the overall count.
      for (const variant of ["stable", "canary"]) {
        const sum = Object.keys(stats.segments[dim]).reduce((s, value) => s + stats.segments[dim][value][variant].requests, 0);
        expect(sum, `${dim} ${variant}`).toBe(stats.variants[variant].requests);
      }
    }
    expect(Object.keys(stats.segments.tenant_tier).sort()).toEqual(["enterprise", "free", "other", "pro"]);
  });
});
