// Kubernetes mode end to end on 127.0.0.1: a real kube-apiserver and etcd (test/kube/cluster.ts) with the CRDs,
// two demo model servers, a real Envoy running build/filter.wasm whose config long-poll goes to the replicas'
// Service, and the controller replicas as real processes (replicas.ts). Every wait is bounded.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../../controller/src/envoy/process.ts";
import { startModelServer, type ModelServer } from "../../controller/src/demo/model-server.ts";
import { freePort } from "../../controller/src/net.ts";
import { CRD_FILE } from "../../controller/src/kube-state/crd-yaml.ts";
import { GROUP, ROLLOUT_PLURAL } from "../../controller/src/kube-state/crd.ts";
import { startKubeCluster, type KubeCluster } from "../kube/cluster.ts";
import { startReplicas, type Replicas, type ReplicaOptions } from "./replicas.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

export interface KubeStack {
  cluster: KubeCluster;
  replicas: Replicas;
  envoy: EnvoyProcess;
  dataUrl: string;
  adminUrl: string;
  /** Per replica, the proxy between it and the API server (cut() partitions that replica). */
  apiProxies: TcpProxy[];
  stop(): Promise<void>;
}

/** A kubeconfig reaching the API server at `server` (the cluster's, or a proxy's), with the cluster's admin token. */
function kubeconfigFor(cluster: KubeCluster, server: string, path: string): string {
  writeFileSync(
    path,
    [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: test, cluster: {server: "${server}", certificate-authority: "${cluster.caFile}"}}]`,
      `users: [{name: admin, user: {token: "${cluster.token}"}}]`,
      "contexts: [{name: test, context: {cluster: test, user: admin, namespace: default}}]",
      "current-context: test",
      "",
    ].join("\n"),
  );
  return path;
}

export async function startKubeStack(options: Partial<ReplicaOptions> & { count: number; dir: string }): Promise<KubeStack> {
  const cluster = await startKubeCluster();
  const servers: ModelServer[] = [];
  let envoy: EnvoyProcess | null = null;
  let replicas: Replicas | null = null;
  const apiProxies: TcpProxy[] = [];
  const stop = async () => {
    await replicas?.stop();
    await envoy?.stop();
    for (const p of apiProxies) await p.close();
    for (const s of servers) await s.close();
    await cluster.stop();
  };
  try {
    const applied = await cluster.kubectl(["apply", "-f", CRD_FILE]);
    if (applied.code !== 0) throw new Error(`applying the CRDs: ${applied.stderr}`);
    const established = await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", `crd/${ROLLOUT_PLURAL}.${GROUP}`]);
    if (established.code !== 0) throw new Error(`the CRD is not established: ${established.stderr}`);
    const apiPort = Number(new URL(cluster.url).port);
    for (let i = 0; i < options.count; i++) apiProxies.push(await startTcpProxy([apiPort]));
    const kubeconfigs = apiProxies.map((p, i) => kubeconfigFor(cluster, p.url("https"), join(options.dir, `kubeconfig-${i}`)));
    servers.push(await startModelServer({ version: "v1" }), await startModelServer({ version: "v2" }), await startModelServer({ version: "v3" }));
    const [listenPort, adminPort] = [await freePort(), await freePort()];
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    replicas = await startReplicas({ ...options, kubeconfig: (i) => kubeconfigs[i], envoyAdminUrls: [adminUrl] });
    const yaml = renderBootstrap({
      listen: { host: "127.0.0.1", port: listenPort },
      admin: { host: "127.0.0.1", port: adminPort },
      stable: { host: "127.0.0.1", port: servers[0].port },
      canary: { host: "127.0.0.1", port: servers[1].port },
      shadow: { host: "127.0.0.1", port: servers[2].port },
      controller: { host: "127.0.0.1", port: replicas.service.port },
      pollWaitSeconds: 5,
    });
    envoy = await startEnvoy({ bootstrapYaml: yaml, adminPort, concurrency: 1 });
    return { cluster, replicas, envoy, dataUrl: `http://127.0.0.1:${listenPort}`, adminUrl, apiProxies, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A rollout whose stages last at least `seconds` each: slow enough to kill a leader in the middle of one. */
export function slowRollout(name: string, seconds: number, pathPrefix = "/v1/predict"): Record<string, unknown> {
  return {
    name,
    match: { pathPrefix },
    stickyKey: { header: "x-user-id" },
    owner: "team-fraud",
    rollbackCondition: "errors above 5%",
    stages: [10, 30, 60, 100],
    stageDefaults: { minDurationSeconds: seconds, minRequests: 20, deadlineSeconds: 3600 },
    promotion_gates: { error_rate: { maximum: 0.05 } },
  };
}

export interface DecisionLine {
  at: number;
  kind: string;
  stage: number | null;
}

/** A rollout's decisions as a replica serves them (its watch-fed cache), holds left out. */
export async function decisionsOf(url: string, name: string): Promise<DecisionLine[]> {
  const response = await fetch(`${url}/v1/rollouts/${name}/history`, { signal: AbortSignal.timeout(5000) });
  if (response.status !== 200) throw new Error(`history of ${name} from ${url}: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { decisions: Array<{ at: number; kind: string; stage: { index: number } | null }> };
  return body.decisions.filter((d) => d.kind !== "held").map((d) => ({ at: d.at, kind: d.kind, stage: d.stage?.index ?? null }));
}

/** The rollout's status as `kubectl get` shows it. */
export async function statusOf(cluster: KubeCluster, name: string): Promise<Record<string, any>> {
  const got = await cluster.kubectl(["get", "modelrollout", name, "-o", "json"]);
  if (got.code !== 0) throw new Error(`kubectl get modelrollout ${name}: ${got.stderr}`);
  return (JSON.parse(got.stdout) as { status?: Record<string, any> }).status ?? {};
}

/** No decision lost, repeated or doubled: each stage advanced once, in order, then one end. */
export function checkHistory(decisions: readonly DecisionLine[], stages: number): string[] {
  const problems: string[] = [];
  const kinds = decisions.map((d) => d.kind);
  const expected = ["started", ...Array.from({ length: stages - 1 }, () => "advanced"), "succeeded"];
  if (JSON.stringify(kinds) !== JSON.stringify(expected)) problems.push(`kinds ${kinds.join(",")} (expected ${expected.join(",")})`);
  const advanced = decisions.filter((d) => d.kind === "advanced").map((d) => d.stage);
  if (JSON.stringify(advanced) !== JSON.stringify(advanced.map((_, i) => i))) problems.push(`advanced stages ${advanced.join(",")}`);
  for (let i = 1; i < decisions.length; i++) if (decisions[i].at < decisions[i - 1].at) problems.push(`decision ${i} is older than the one before`);
  return problems;
}
