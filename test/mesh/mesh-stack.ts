// One sidecar-like Envoy whose modelroll filter arrives by ECDS from a deploy/istio manifest, with the module
// pulled from a real registry by istio-agent's code; stable and canary demo models behind it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startModelServer, type ModelServer } from "../../controller/src/demo/model-server.ts";
import { startEnvoy, type EnvoyProcess } from "../../controller/src/envoy/process.ts";
import { freePort } from "../../controller/src/net.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { buildImage } from "../../scripts/build-image.mjs";
import { agentConvert, EcdsFile, ecdsBootstrap, ecdsName, envoyStat, istiodResource, withPluginConfig } from "./ecds.ts";
import { loadManifests } from "./k8s-schemas.ts";
import { pushImage, startRegistry, type Registry } from "./tools.ts";
import { waitFor } from "../e2e/harness.ts";

export interface MeshStack {
  manifest: Record<string, any>;
  envoy: EnvoyProcess;
  dataUrl: string;
  adminUrl: string;
  stable: ModelServer;
  canary: ModelServer;
  /** The ECDS resource after istio-agent's rewrite, for the first version. */
  converted: Record<string, any>;
  /** Pushes a new pluginConfig as istiod + the agent would and waits until Envoy applied it. */
  update(pluginConfig: unknown): Promise<void>;
  /** Versions Envoy applied so far. */
  reloads(): Promise<number>;
  stop(): Promise<void>;
}

export function manifestFrom(file: string, kind: string): Record<string, any> {
  const found = loadManifests([join(repoRoot, "deploy", "istio", file)]).filter((d) => d.object.kind === kind);
  if (found.length !== 1) throw new Error(`${file}: expected one ${kind}`);
  return found[0].object;
}

export async function startMeshStack(opts: {
  manifest: Record<string, any>;
  /** Extra STATIC clusters, by their Istio names. */
  clusters?: Record<string, { host: string; port: number }>;
  concurrency?: number;
}): Promise<MeshStack> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const c of cleanups.reverse()) await c();
  };
  try {
    const image = buildImage({ stamp: false });
    const registry: Registry = await startRegistry();
    cleanups.push(() => registry.stop());
    const ref = await pushImage(registry, image.tag);
    const manifest = structuredClone(opts.manifest);
    const wasm = manifest.kind === "WasmPlugin" ? manifest.spec : manifest.spec.wasm;
    // The one change to the manifest: the local registry instead of registry.example.com (same repository and tag).
    const url = `oci://${ref}`;
    wasm.sha256 = image.digest;
    const cache = mkdtempSync(join(tmpdir(), "modelroll-agent-cache-"));
    cleanups.push(() => rmSync(cache, { recursive: true, force: true }));
    let version = 1;
    const converted = await agentConvert(istiodResource(manifest, String(version), url), cache);
    const ecds = new EcdsFile();
    cleanups.push(() => ecds.remove());
    ecds.write(converted, String(version));

    const stable = await startModelServer({ version: "v1" });
    cleanups.push(() => stable.close());
    const canary = await startModelServer({ version: "v2" });
    cleanups.push(() => canary.close());
    const [listen, admin] = [await freePort(), await freePort()];
    const filterName = ecdsName(manifest);
    const yaml = ecdsBootstrap(
      {
        listen: { host: "127.0.0.1", port: listen },
        admin: { host: "127.0.0.1", port: admin },
        stable: { host: "127.0.0.1", port: stable.port },
        canary: { host: "127.0.0.1", port: canary.port },
        controller: { host: "127.0.0.1", port: 1 },
      },
      ecds,
      filterName,
      opts.clusters ?? {},
    );
    const envoy = await startEnvoy({ bootstrapYaml: yaml, adminPort: admin, concurrency: opts.concurrency ?? 2 });
    cleanups.push(() => envoy.stop());
    const adminUrl = `http://127.0.0.1:${admin}`;
    const reloadStat = `extension_config_discovery.http_filter.${filterName}.config_reload`;
    const reloads = () => envoyStat(adminUrl, reloadStat);
    await waitFor("Envoy to apply the first ECDS version", async () => (await reloads()) >= 1, 15_000, 20);
    return {
      manifest,
      envoy,
      dataUrl: `http://127.0.0.1:${listen}`,
      adminUrl,
      stable,
      canary,
      converted,
      reloads,
      async update(pluginConfig) {
        const before = await reloads();
        version++;
        ecds.write(withPluginConfig(converted, pluginConfig), String(version));
        await waitFor(`Envoy to apply ECDS version ${version}`, async () => (await reloads()) > before, 15_000, 5);
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
