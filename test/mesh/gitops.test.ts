// GitOps mode on real Envoy: no controller; the weights are deploy/istio/filter.gitops.wasmplugin.yaml's
// pluginConfig.rollouts, delivered by ECDS as istiod + istio-agent deliver them (module from a real registry,
// fetched and rewritten by Istio's own code). A change to the manifest is the rollout step.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { send, sendMany, waitFor, type Reply } from "../e2e/harness.ts";
import { envoyStat, rssBytes } from "./ecds.ts";
import { manifestFrom, startMeshStack, type MeshStack } from "./mesh-stack.ts";

let stack: MeshStack;
const fraud = () => `${stack.dataUrl}/v1/models/fraud-model:predict`;
const churn = () => `${stack.dataUrl}/v1/models/churn-model:predict`;
const USERS = Array.from({ length: 400 }, (_, i) => `user-${i}`);

/** The manifest's pluginConfig with other weights, as an edited and re-applied manifest would carry. */
function weights(fraudBp: number, churnBp: number): Record<string, any> {
  const config = structuredClone(stack.manifest.spec.pluginConfig);
  config.rollouts.find((r: any) => r.name === "fraud-model").canaryBasisPoints = fraudBp;
  config.rollouts.find((r: any) => r.name === "churn-model").canaryBasisPoints = churnBp;
  return config;
}

async function variantsOf(users: string[]): Promise<Map<string, string | null>> {
  const replies = await sendMany(fraud(), users.length, (i) => ({ "x-user-id": users[i] }), 16);
  return new Map(users.map((u, i) => [u, replies[i].variant]));
}

/** Prometheus text of the filter's request counters: every (name, labels) series once, with its value. */
async function requestSeries(): Promise<{ types: number; series: Map<string, number>; duplicates: string[] }> {
  const text = await (await fetch(`${stack.adminUrl}/stats/prometheus`)).text();
  const series = new Map<string, number>();
  const duplicates: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("modelroll_requests{")) continue;
    const cut = line.lastIndexOf(" ");
    const key = line.slice(0, cut);
    if (series.has(key)) duplicates.push(key);
    series.set(key, Number(line.slice(cut + 1)));
  }
  return { types: text.split("\n").filter((l) => l === "# TYPE modelroll_requests counter").length, series, duplicates };
}

const overall = (rollout: string, variant: string) => `modelroll_requests{modelroll_rollout="${rollout}",modelroll_variant="${variant}"}`;

beforeAll(async () => {
  stack = await startMeshStack({ manifest: manifestFrom("filter.gitops.wasmplugin.yaml", "WasmPlugin") });
});

afterAll(async () => {
  await stack?.stop();
});

describe("GitOps mode: the WasmPlugin's static rollouts, changed by ECDS", () => {
  it("routes by the manifest's own weights: fraud-model 5% canary, churn-model none", async () => {
    const variants = [...(await variantsOf(USERS)).values()];
    const canary = variants.filter((v) => v === "canary").length;
    expect(variants.every((v) => v === "stable" || v === "canary")).toBe(true);
    // 400 sticky users at 5%: the hash puts 3-37 of them in the canary with overwhelming probability.
    expect(canary).toBeGreaterThan(3);
    expect(canary).toBeLessThan(40);
    const churnReplies = await sendMany(churn(), 50, (i) => ({ "x-customer-id": `c-${i}` }));
    expect(churnReplies.every((r) => r.variant === "stable" && r.modelVersion === "v1")).toBe(true);
  });

  it("a changed manifest is the rollout step: new weights apply without a restart or a dropped request, users stay sticky, counters go on", async () => {
    const pid = stack.envoy.child.pid!;
    const before = await variantsOf(USERS);
    const countsBefore = await requestSeries();
    const sentBefore = (countsBefore.series.get(overall("fraud-model", "stable")) ?? 0) + (countsBefore.series.get(overall("fraud-model", "canary")) ?? 0);

    // Traffic keeps flowing while the update lands; a failed send counts as status 0.
    let running = true;
    const during: Reply[] = [];
    const background = (async () => {
      for (let i = 0; running && i < 5000; i++) {
        try {
          during.push(await send(fraud(), { "x-user-id": `bg-${i % 50}` }));
        } catch (error) {
          during.push({ status: 0, variant: null, modelVersion: null, body: String(error) });
        }
      }
    })();
    try {
      await waitFor("some traffic before the update", async () => during.length >= 20, 10_000, 5);
      await stack.update(weights(5000, 10_000));
      // Every worker's filter has the new config once churn-model (now 100%) answers canary every time.
      await waitFor(
        "churn-model at 100%",
        async () => (await sendMany(churn(), 40, (i) => ({ "x-customer-id": `c-${i}` }), 8)).every((r) => r.variant === "canary"),
        10_000,
        10,
      );
      const countAtUpdate = during.length;
      await waitFor("traffic after the update", async () => during.length >= countAtUpdate + 20, 10_000, 5);
    } finally {
      running = false;
      await background;
    }

    expect(stack.envoy.child.pid).toBe(pid);
    expect(stack.envoy.log()).not.toMatch(/plugin configuration refused/);
    expect(during.filter((r) => r.status !== 200)).toEqual([]);
    const after = await variantsOf(USERS);
    // Sticky while the weight grows: nobody who had the canary at 5% is back on stable at 50%.
    const lost = USERS.filter((u) => before.get(u) === "canary" && after.get(u) !== "canary");
    expect(lost).toEqual([]);
    const share = [...after.values()].filter((v) => v === "canary").length / USERS.length;
    expect(share).toBeGreaterThan(0.4);
    expect(share).toBeLessThan(0.6);

    // Counters were defined again by the new root context: same series, counting on from where they were.
    const countsAfter = await requestSeries();
    expect(countsAfter.types).toBe(1);
    expect(countsAfter.duplicates).toEqual([]);
    const sentAfter = (countsAfter.series.get(overall("fraud-model", "stable")) ?? 0) + (countsAfter.series.get(overall("fraud-model", "canary")) ?? 0);
    expect(sentAfter - sentBefore).toBe(during.length + USERS.length);
  });

  it("100 more updates: the same VMs are reused, memory stays flat, and the last weights are in force", async () => {
    const active = () => envoyStat(stack.adminUrl, "wasm.envoy.wasm.runtime.v8.active");
    const vmsBefore = await active();
    const samples: Array<{ update: number; rssMiB: number }> = [];
    for (let n = 1; n <= 100; n++) {
      await stack.update(weights(n % 2 === 0 ? 2000 : 3000, n % 2 === 0 ? 0 : 10_000));
      // A little traffic per version, so every new root context is also used.
      await sendMany(fraud(), 4, (i) => ({ "x-user-id": `m-${n}-${i}` }), 4);
      if (n === 10 || n === 100) samples.push({ update: n, rssMiB: rssBytes(stack.envoy.child.pid!) / 2 ** 20 });
    }
    console.log(`Envoy RSS over 100 ECDS updates: ${samples.map((s) => `${s.rssMiB.toFixed(1)} MiB after ${s.update}`).join(", ")}`);
    expect(await active()).toBe(vmsBefore);
    // A generous bound (this is not a benchmark): a leak of a root context, its config or its metrics per update
    // would show as steady growth; bench/ecds-memory.ts prints the curve.
    expect(samples[1].rssMiB - samples[0].rssMiB).toBeLessThan(16);
    // The last update (n = 100, even) set churn-model to 0%.
    await waitFor(
      "churn-model back at 0%",
      async () => (await sendMany(churn(), 40, (i) => ({ "x-customer-id": `c-${i}` }), 8)).every((r) => r.variant === "stable"),
      10_000,
      10,
    );
    expect((await requestSeries()).duplicates).toEqual([]);
  });
});
