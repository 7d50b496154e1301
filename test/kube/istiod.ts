// The real istiod (pilot-discovery, built by scripts/install-kube.mjs into .tools/istiod) against a test cluster
// (cluster.ts): Istio's CRDs applied first (the published ones, .cache/mesh/istio-crds.yaml: the "mesh-schemas"
// tool), then `pilot-discovery discovery` with every listener on a free loopback port. It watches the API server
// like an in-cluster istiod and serves xDS (plain gRPC on grpcAddr) to any Envoy that connects as a sidecar; the
// debug endpoints (`/debug/syncz`, `/debug/config_dump?proxyID=...`) show what it sends each proxy.
//
//   const istiod = await startIstiod(cluster);   // { grpcAddr: "127.0.0.1:P", debugUrl, stop() }
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../../controller/src/paths.ts";
import { schemaDir } from "../mesh/k8s-schemas.ts";
import type { KubeCluster } from "./cluster.ts";
import { freePorts, logTail, startServer } from "./process.ts";

export interface StartIstiodOptions {
  /** The mesh config (MeshConfig YAML); default: the root namespace istio-system and nothing else. */
  meshConfig?: string;
  /** Bound for the CRDs to be established and for istiod's /ready (default 90 s). */
  readyTimeoutMs?: number;
}

export interface Istiod {
  /** Plain-text xDS (ADS) for Envoys: "127.0.0.1:P". */
  readonly grpcAddr: string;
  /** istiod's HTTP server: /ready, /debug/syncz, /debug/config_dump?proxyID=... */
  readonly debugUrl: string;
  /** Its self-monitoring /metrics. */
  readonly monitoringUrl: string;
  /** From start to /ready answering 200, in ms (CRDs excluded; for the report, never asserted). */
  readonly readyMs: number;
  log(): string;
  stop(): Promise<void>;
}

export const ISTIO_NAMESPACE = "istio-system";

export function istiodBinary(): string {
  const bin = process.env.ISTIOD_BIN ?? join(repoRoot, ".tools", "istiod", "pilot-discovery");
  if (!existsSync(bin)) {
    throw new Error(
      `${bin} is missing: run 'node scripts/test-tools.mjs istiod' (the test set-up does it for files listed under "istiod" in test/suites.ts NEEDS) or set ISTIOD_BIN`,
    );
  }
  return bin;
}

/** Applies Istio's published CRDs (server-side) and waits until the API server serves them. */
export async function applyIstioCrds(cluster: KubeCluster, timeoutMs = 90_000): Promise<void> {
  const file = join(schemaDir(), "istio-crds.yaml");
  await cluster.kubectlOk(["apply", "--server-side", "--force-conflicts", "-f", file], undefined, { timeoutMs });
  await cluster.kubectlOk(["wait", "--for=condition=Established", "crd", "--all", `--timeout=${Math.ceil(timeoutMs / 1000)}s`], undefined, {
    timeoutMs: timeoutMs + 5000,
  });
}

export async function startIstiod(cluster: KubeCluster, opts: StartIstiodOptions = {}): Promise<Istiod> {
  const timeoutMs = opts.readyTimeoutMs ?? 90_000;
  const bin = istiodBinary();
  await applyIstioCrds(cluster, timeoutMs);
  await cluster.kubectlOk(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ISTIO_NAMESPACE } }));

  const dir = join(cluster.dir, `istiod-${Date.now()}`);
  mkdirSync(dir);
  const meshFile = join(dir, "mesh.yaml");
  writeFileSync(meshFile, opts.meshConfig ?? `rootNamespace: ${ISTIO_NAMESPACE}\n`);
  const [grpc, http, monitoring, ctrlz] = await freePorts(4);
  const started = performance.now();
  const server = startServer(
    "istiod",
    bin,
    [
      "discovery",
      `--kubeconfig=${cluster.kubeconfig}`,
      `--meshConfig=${meshFile}`,
      `--grpcAddr=127.0.0.1:${grpc}`,
      `--httpAddr=127.0.0.1:${http}`,
      `--monitoringAddr=127.0.0.1:${monitoring}`,
      // No mTLS xDS port and no webhook port: the tests' Envoys use plain gRPC, and nothing calls webhooks.
      "--secureGRPCAddr=",
      "--httpsAddr=",
      "--ctrlz_address=127.0.0.1",
      `--ctrlz_port=${ctrlz}`,
      "--clusterID=Kubernetes",
      "--domain=cluster.local",
      "--log_output_level=default:warn",
    ],
    // istiod writes its generated certificates under ./var/run/secrets: inside the harness's directory.
    { cwd: dir, env: { POD_NAMESPACE: ISTIO_NAMESPACE, POD_NAME: "istiod-test", REVISION: "default" } },
  );
  const debugUrl = `http://127.0.0.1:${http}`;
  const deadline = Date.now() + timeoutMs;
  let last = "not answering yet";
  for (;;) {
    if (server.exited() !== null) throw new Error(`istiod exited during start-up (${server.exited()}):\n${logTail(server)}`);
    try {
      const res = await fetch(`${debugUrl}/ready`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) break;
      last = `/ready answered ${res.status}: ${(await res.text()).slice(0, 200)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`istiod not ready after ${timeoutMs} ms (last: ${last}):\n${logTail(server)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    grpcAddr: `127.0.0.1:${grpc}`,
    debugUrl,
    monitoringUrl: `http://127.0.0.1:${monitoring}`,
    readyMs: performance.now() - started,
    log: () => server.log(),
    stop: () => server.stop(),
  };
}
