// Kubernetes mode at scale: BENCH_ROLLOUTS (default 1,000) managed ModelRollouts in one real kube-apiserver, one
// controller process (--state kube, leader election on, the default 5 s tick) whose Envoy admin answers empty
// stats (no traffic: every gate waits for data, as at the start of a release). Measured: the controller's memory
// (RSS, baseline: the same process with no rollout, in the same run), the API writes per tick (the API server's
// own apiserver_request_total over BENCH_TICKS ticks, default 6), the time of a tick
// (modelroll_engine_tick_seconds), the time for all objects created with the API to be accepted, and the time
// for a change made through the controller's REST API (pause) to reach what `kubectl get` reads.
// `npm run bench:kube-scale`.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { KubeClient } from "../controller/src/kube/client.ts";
import { CRD_FILE } from "../controller/src/kube-state/crd-yaml.ts";
import { GROUP, ROLLOUT_PLURAL, VERSION } from "../controller/src/kube-state/crd.ts";
import { startKubeCluster } from "../test/kube/cluster.ts";
import { startReplicas } from "../test/leader/replicas.ts";

const N = Number(process.env.BENCH_ROLLOUTS ?? "1000");
const TICKS = Number(process.env.BENCH_TICKS ?? "6");
const TICK_MS = 5000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

const cluster = await startKubeCluster();
const admin = createServer((_req, res) => res.end("")).listen(0, "127.0.0.1");
await new Promise((r) => admin.once("listening", r));
const adminUrl = `http://127.0.0.1:${(admin.address() as { port: number }).port}`;
const client = KubeClient.fromKubeconfig(cluster.kubeconfig);
const ref = { group: GROUP, version: VERSION, plural: ROLLOUT_PLURAL, namespace: "default" };
let replicas: Awaited<ReturnType<typeof startReplicas>> | null = null;

/** The API server's write requests so far, by resource. */
async function apiWrites(): Promise<Map<string, number>> {
  const text = await cluster.kubectlOk(["get", "--raw", "/metrics"]);
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const verb = /verb="([A-Z]+)"/.exec(line)?.[1] ?? "";
    const resource = /resource="([a-z]+)"/.exec(line)?.[1] ?? "";
    if (!["POST", "PUT", "PATCH", "DELETE"].includes(verb) || !["modelrollouts", "modelrolloutdecisions", "leases"].includes(resource)) continue;
    const key = resource + (/subresource="status"/.test(line) ? "/status" : "");
    out.set(key, (out.get(key) ?? 0) + Number(line.split(" ").at(-1)));
  }
  return out;
}

async function controllerMetric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
}

try {
  await cluster.kubectlOk(["apply", "-f", CRD_FILE]);
  await cluster.kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", `crd/${ROLLOUT_PLURAL}.${GROUP}`]);
  replicas = await startReplicas({
    count: 1,
    kubeconfig: () => cluster.kubeconfig,
    envoyAdminUrls: [adminUrl],
    tickMs: TICK_MS,
    // BENCH_LEASE_ARGS, e.g. "--lease-duration 6s --renew-deadline 4s --retry-period 1s" (default: the defaults).
    args: (process.env.BENCH_LEASE_ARGS ?? "").split(" ").filter((a) => a !== ""),
    env: { MODELROLL_LOG_LEVEL: "warn" },
  });
  const replica = await replicas.start(0);
  const pid = replica.child.pid;
  if (pid === undefined) throw new Error("bench: the controller has no pid");
  await sleep(3 * TICK_MS);
  const idleRss = rssMiB(pid);

  // Created with the API, as kubectl apply or a GitOps tool would; the leader accepts each (status written).
  const createdAt = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < N) {
        const i = next++;
        await client.create(ref, {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: "ModelRollout",
          metadata: { name: `model-${i}` },
          spec: {
            match: { pathPrefix: `/m${i}` },
            stickyKey: { header: "x-user-id" },
            owner: "team",
            rollbackCondition: "errors above 1%",
            stages: [5, 25, 50, 100],
            promotion_gates: { error_rate: { maximum: 0.01 } },
          },
        });
      }
    }),
  );
  const createMs = performance.now() - createdAt;
  let accepted = 0;
  for (;;) {
    const phases = await cluster.kubectlOk(["get", "modelrollouts", "-o", "jsonpath={range .items[*]}{.status.phase}{'\\n'}{end}"]);
    accepted = phases.split("\n").filter((p) => p !== "").length;
    if (accepted >= N || performance.now() - createdAt > 900_000) break;
    await sleep(2000);
  }
  const acceptMs = performance.now() - createdAt;
  // Past the first decisions (each rollout's "started" written once): the steady state is measured.
  const ticksAt = async () => controllerMetric(replica.url, "modelroll_engine_tick_seconds_count");
  const settledFrom = await ticksAt();
  while ((await ticksAt()) < settledFrom + 3) await sleep(500);

  const ticksBefore = await ticksAt();
  const secondsBefore = await controllerMetric(replica.url, "modelroll_engine_tick_seconds_sum");
  const writesBefore = await apiWrites();
  const windowStart = performance.now();
  while ((await ticksAt()) < ticksBefore + TICKS && performance.now() - windowStart < 20 * TICKS * TICK_MS) await sleep(250);
  const windowSeconds = (performance.now() - windowStart) / 1000;
  const writesAfter = await apiWrites();
  const ticks = (await ticksAt()) - ticksBefore;
  const tickSeconds = ((await controllerMetric(replica.url, "modelroll_engine_tick_seconds_sum")) - secondsBefore) / Math.max(1, ticks);
  const rss = rssMiB(pid);
  const perTick = [...writesAfter].map(([k, v]) => `${k} ${((v - (writesBefore.get(k) ?? 0)) / Math.max(1, ticks)).toFixed(1)}`);
  const totalPerTick = [...writesAfter].reduce((sum, [k, v]) => sum + v - (writesBefore.get(k) ?? 0), 0) / Math.max(1, ticks);

  // A change through the REST API until the API server (what kubectl get reads) has it.
  const reach: number[] = [];
  for (const i of [1, 101, 201, 301, 401].filter((n) => n < N)) {
    const at = performance.now();
    const paused = await fetch(`${replica.url}/v1/rollouts/model-${i}/pause`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    if (paused.status !== 200) throw new Error(`bench: pause answered ${paused.status}: ${await paused.text()}`);
    for (;;) {
      const object = await client.get<{ metadata: { name: string }; status?: { phase?: string } }>(ref, `model-${i}`);
      if (object.status?.phase === "Paused") break;
      await sleep(10);
    }
    reach.push(Math.round(performance.now() - at));
  }
  const shown = await cluster.kubectlOk(["get", "modelrollout", "model-1", "-o", "jsonpath={.status.phase}"]);

  console.log(`\nKubernetes mode at scale: ${N} ModelRollouts, one controller (leader), tick ${TICK_MS / 1000} s, no traffic`);
  console.log(
    `  created through the API in ${(createMs / 1000).toFixed(1)} s; ${accepted} accepted by the controller (status written) ${(acceptMs / 1000).toFixed(1)} s after the first`,
  );
  console.log(
    `  controller RSS: ${idleRss.toFixed(0)} MiB with none, ${rss.toFixed(0)} MiB with ${N} (ratio ${(rss / idleRss).toFixed(2)}; ${(((rss - idleRss) * 1024) / N).toFixed(0)} KiB per rollout)`,
  );
  console.log(`  tick: ${ticks} ticks, ${(tickSeconds * 1000).toFixed(0)} ms each on average (all ${N} stepped)`);
  console.log(`  API writes per tick: ${totalPerTick.toFixed(1)} (${perTick.join(", ")}) over ${ticks} ticks in ${windowSeconds.toFixed(0)} s`);
  const stepDowns = replica
    .output()
    .split("\n")
    .filter((l) => l.includes("stopped leading")).length;
  console.log(`  leadership: ${stepDowns} step-downs during the run (${stepDowns === 0 ? "the Lease was renewed throughout" : "renews were late"})`);
  console.log(`  REST pause -> API server (kubectl get): ${reach.join(", ")} ms; kubectl get shows ${shown}`);
} finally {
  await replicas?.stop();
  admin.close();
  client.close();
  await cluster.stop();
}
