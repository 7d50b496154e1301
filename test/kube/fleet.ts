// A fleet of sidecar stand-ins (sidecar.ts) behind the real istiod, the WasmPlugin they get their filter from, and
// how a test or bench sees which weight each one routes with: shared by test/kube/istiod-delivery.test.ts and
// bench/istiod-delivery.ts.
import { join } from "node:path";
import { stringify } from "yaml";
import { startModelServer, type ModelServer } from "../../controller/src/demo/model-server.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { loadManifests } from "../mesh/k8s-schemas.ts";
import { envoyStat } from "../mesh/ecds.ts";
import { loadFilterTesting } from "../unit/filter-testing.ts";
import type { KubeCluster } from "./cluster.ts";
import { startSidecar, variantAt, wasmPluginResourceName, type Sidecar } from "./sidecar.ts";

export const NAMESPACE = "ml";
export const PLUGIN = "modelroll-filter";
export const ROLLOUT = "fraud-model";
export const PATH = "/v1/models/fraud-model:predict";
export const LABELS = { app: "scoring-api", "modelroll.io/filter": "enabled" };

/** deploy/istio/filter.istiod.wasmplugin.yaml, with the module as a file on this machine. */
export function istiodManifests(pluginConfigExtra: Record<string, unknown> = {}): Array<Record<string, any>> {
  const docs = loadManifests([join(repoRoot, "deploy", "istio", "filter.istiod.wasmplugin.yaml")]).map((d) => structuredClone(d.object));
  const plugin = docs.find((d) => d.kind === "WasmPlugin");
  if (!plugin) throw new Error("filter.istiod.wasmplugin.yaml: no WasmPlugin");
  // The one change: istiod hands a file:// url to the proxy as a local file name (no registry, no istio-agent).
  plugin.spec.url = `file://${join(repoRoot, "build", "filter.wasm")}`;
  Object.assign(plugin.spec.pluginConfig, pluginConfigExtra);
  return docs;
}

export const yamlOf = (docs: Array<Record<string, unknown>>) => docs.map((d) => stringify(d)).join("---\n");

/** What the controller's ServiceAccount needs for the WasmPlugin: deploy/istio/controller-ha.yaml's Role and RoleBinding in ml. */
export function controllerRbac(): Array<Record<string, any>> {
  return loadManifests([join(repoRoot, "deploy", "istio", "controller-ha.yaml")])
    .map((d) => structuredClone(d.object))
    .filter((o) => (o.kind === "Role" || o.kind === "RoleBinding") && o.metadata.namespace === NAMESPACE);
}

/** The namespaces, the WasmPlugin and the controller's Role and RoleBinding, applied as a user would (kubectl apply). */
export async function applyWasmPlugin(cluster: KubeCluster, pluginConfigExtra: Record<string, unknown> = {}): Promise<void> {
  for (const ns of [NAMESPACE, "modelroll"]) {
    const exists = await cluster.kubectl(["get", "namespace", ns]);
    if (exists.code !== 0) await cluster.kubectlOk(["create", "namespace", ns]);
  }
  await cluster.kubectlOk(["apply", "-f", "-"], yamlOf([...istiodManifests(pluginConfigExtra), ...controllerRbac()]));
}

/** Sticky keys by the weights they tell apart: `between(lo, hi)` is a key whose bucket is in [lo, hi). */
export async function probeKeys(): Promise<{ between(lo: number, hi: number): string }> {
  const filter = await loadFilterTesting();
  const cache = new Map<string, string>();
  return {
    between(lo, hi) {
      const id = `${lo}-${hi}`;
      const known = cache.get(id);
      if (known) return known;
      for (let i = 0; i < 100_000; i++) {
        const key = `probe-${i}`;
        const bucket = filter.call("bucketFor", ROLLOUT, key) as number;
        if (bucket >= lo && bucket < hi) {
          cache.set(id, key);
          return key;
        }
      }
      throw new Error(`no probe key with a bucket in [${lo}, ${hi})`);
    },
  };
}

export interface Fleet {
  sidecars: Sidecar[];
  stable: ModelServer;
  canary: ModelServer;
  /** Starts `n` more stand-ins, `parallel` at a time. */
  grow(n: number, parallel?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Stand-ins for pods scoring-api-<i> in namespace ml (labels LABELS), each with one worker. */
export async function startFleet(istiodGrpc: string, options: { clusters?: Record<string, { host: string; port: number }> } = {}): Promise<Fleet> {
  const stable = await startModelServer({ version: "v1" });
  const canary = await startModelServer({ version: "v2" });
  const sidecars: Sidecar[] = [];
  const start = (i: number) =>
    startSidecar({
      istiodGrpc,
      filterName: wasmPluginResourceName(NAMESPACE, PLUGIN),
      namespace: NAMESPACE,
      pod: `scoring-api-${i}`,
      ip: `10.244.${Math.floor(i / 250)}.${(i % 250) + 2}`,
      labels: LABELS,
      stable: { host: "127.0.0.1", port: stable.port },
      canary: { host: "127.0.0.1", port: canary.port },
      ...(options.clusters ? { clusters: options.clusters } : {}),
    });
  return {
    sidecars,
    stable,
    canary,
    async grow(n, parallel = 5) {
      const first = sidecars.length;
      for (let i = first; i < first + n; i += parallel) {
        const batch = await Promise.allSettled(Array.from({ length: Math.min(parallel, first + n - i) }, (_, j) => start(i + j)));
        for (const r of batch) if (r.status === "fulfilled") sidecars.push(r.value);
        const failed = batch.find((r) => r.status === "rejected");
        if (failed) throw (failed as PromiseRejectedResult).reason;
      }
    },
    async stop() {
      await Promise.all(sidecars.splice(0).map((s) => s.stop()));
      await stable.close();
      await canary.close();
    },
  };
}

/**
 * Milliseconds from `since` until every sidecar routed `key` to `variant` (each probed every `intervalMs`, one
 * request in flight per sidecar); per sidecar, when it was first seen doing so. Throws naming the laggards after
 * `timeoutMs`.
 */
export async function untilEvery(
  sidecars: readonly Sidecar[],
  key: string,
  variant: string,
  opts: { since: number; intervalMs: number; timeoutMs: number },
): Promise<{ all: number; each: number[] }> {
  const each = await Promise.all(
    sidecars.map(async (s) => {
      for (;;) {
        let seen: string | null = null;
        try {
          seen = await variantAt(s, PATH, key);
        } catch {
          // not answering this instant: probe again
        }
        const now = performance.now();
        if (seen === variant) return now - opts.since;
        if (now - opts.since > opts.timeoutMs) throw new Error(`${s.id} still routes ${key} to ${seen} (want ${variant}) after ${opts.timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, opts.intervalMs));
      }
    }),
  );
  return { all: Math.max(...each), each };
}

/** How many filter configs each sidecar applied from istiod so far (Envoy's ECDS reload counter). */
export async function ecdsReloads(sidecars: readonly Sidecar[]): Promise<number[]> {
  const stat = `extension_config_discovery.http_filter.${wasmPluginResourceName(NAMESPACE, PLUGIN)}.config_reload`;
  return Promise.all(sidecars.map((s) => envoyStat(s.adminUrl, stat)));
}

/** Waits until every sidecar applied a filter config from istiod after `before` (ecdsReloads' answer). */
export async function untilReloaded(sidecars: readonly Sidecar[], before: readonly number[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const now = await ecdsReloads(sidecars);
    const behind = sidecars.filter((_, i) => (now[i] as number) <= (before[i] as number));
    if (behind.length === 0) return;
    if (performance.now() > deadline) throw new Error(`no new config from istiod after ${timeoutMs} ms on ${behind.map((s) => s.id).join(", ")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
