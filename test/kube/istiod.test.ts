// The real istiod against the real API server (istiod.ts on cluster.ts): ready, watching the API (a WasmPlugin
// applied through kubectl reaches its config store), and answering its debug endpoints.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type KubeCluster, startKubeCluster } from "./cluster.ts";
import { type Istiod, startIstiod } from "./istiod.ts";

let cluster: KubeCluster;
let istiod: Istiod;

beforeAll(async () => {
  cluster = await startKubeCluster();
  istiod = await startIstiod(cluster);
  console.log(`kube-apiserver ready in ${(cluster.readyMs / 1000).toFixed(1)} s; istiod ready in ${(istiod.readyMs / 1000).toFixed(1)} s after its CRDs`);
}, 240_000);

afterAll(async () => {
  await istiod?.stop();
  await cluster?.stop();
});

const plugin = (name: string) => ({
  apiVersion: "extensions.istio.io/v1alpha1",
  kind: "WasmPlugin",
  metadata: { name, namespace: "ml" },
  spec: { selector: { matchLabels: { app: "caller" } }, url: "oci://registry.example.com/modelroll/filter:0.1.0", pluginConfig: { canaryBasisPoints: 100 } },
});

describe("istiod (pilot-discovery) against the test cluster", () => {
  it("is ready, serves xDS on its gRPC port and answers its debug endpoints", async () => {
    expect(istiod.grpcAddr).toMatch(/^127\.0\.0\.1:\d+$/);
    const ready = await fetch(`${istiod.debugUrl}/ready`);
    expect(ready.status).toBe(200);
    // No proxy is connected yet: an empty sync list, as JSON.
    const syncz = await fetch(`${istiod.debugUrl}/debug/syncz`);
    expect(syncz.status).toBe(200);
    expect(await syncz.json()).toEqual([]);
    const metrics = await (await fetch(`${istiod.monitoringUrl}/metrics`)).text();
    // It runs the API server as its one local cluster.
    expect(metrics).toMatch(/^istiod_managed_clusters\{cluster_type="local"\} 1$/m);
  });

  it("reads WasmPlugins from the API server as they are applied", async () => {
    await cluster.kubectlOk(["create", "namespace", "ml"]);
    await cluster.kubectlOk(["apply", "-f", "-"], JSON.stringify(plugin("modelroll-filter")));
    // istiod's config store, as its debug endpoint lists it: the applied object appears once its watch delivered it.
    const deadline = Date.now() + 60_000;
    let seen: Array<{ metadata?: { name?: string; namespace?: string } }> = [];
    while (Date.now() < deadline) {
      const res = await fetch(`${istiod.debugUrl}/debug/configz`);
      if (res.status === 200) {
        seen = ((await res.json()) as typeof seen).filter((c) => c.metadata?.namespace === "ml");
        if (seen.some((c) => c.metadata?.name === "modelroll-filter")) break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(seen.map((c) => c.metadata?.name)).toContain("modelroll-filter");
  });
});
