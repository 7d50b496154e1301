// `npm run controller`: the controller alone (REST API, engine, state file), for Envoys started elsewhere.
// The only place that prints or exits; what to do is decided by planController (pure).
import { KubeClient } from "../kube/client.ts";
import type { LeaseTiming } from "../kube/lease-timing.ts";
import { startController, type RunningController } from "../server.ts";
import { CONTROLLER_USAGE, planController } from "./controller-plan.ts";
import { BUSY_PORT_ADVICE, busyPorts } from "./ports.ts";
import { describeSaved, installShutdown } from "./shutdown.ts";
import { resumedLines } from "./start-upstreams.ts";
import type { UpstreamReadings } from "../release/upstream-guard.ts";
import { configDelivery } from "./config-delivery.ts";

/** Where the upstreams the resumed rollouts were compared with came from, or why they could not be. */
function upstreamSource(readings: UpstreamReadings): string {
  return readings.lastError === null
    ? "    (upstreams compared with what the Envoy admins' /clusters report, again every tick)\n"
    : `    (upstreams not compared yet: ${readings.lastError}; compared every tick once an Envoy admin answers)\n`;
}

const result = planController(process.argv.slice(2), process.env);
if ("help" in result) {
  console.log(CONTROLLER_USAGE);
  process.exit(0);
}
if ("error" in result) {
  console.error(`modelroll controller: ${result.error}\n${CONTROLLER_USAGE}`);
  process.exit(2);
}
const { listen, fresh, kube: kubeFlags, delivery, ...options } = result.plan;
let kube: { client: KubeClient; namespace: string } | undefined;
let leaderElection: { leaseName: string; timing: LeaseTiming; leaseClient: KubeClient } | undefined;
let delivered: ReturnType<typeof configDelivery>;
try {
  if (kubeFlags) {
    const connect = (timeoutMs?: number) =>
      kubeFlags.kubeconfig ? KubeClient.fromKubeconfig(kubeFlags.kubeconfig, { timeoutMs }) : KubeClient.inCluster({ timeoutMs });
    const client = connect();
    kube = { client, namespace: kubeFlags.namespace ?? client.namespace };
    const { election } = kubeFlags;
    // The Lease's own connection, whose requests give up well before the renew deadline (a hung one must not
    // hold the loop past it); the state's requests keep the client's longer timeout.
    if (election.leaderElect)
      leaderElection = {
        leaseName: election.leaseName,
        timing: election.timing,
        leaseClient: connect(Math.max(250, Math.floor(election.timing.renewDeadlineMs / 2))),
      };
  }
  // The WasmPlugin is written with the same client as the state when there is one (same kubeconfig).
  delivered = configDelivery(delivery, kube?.client);
} catch (err) {
  console.error(`modelroll controller: ${(err as Error).message}`);
  process.exit(2);
}
let controller: RunningController | null = null;
const shutdown = installShutdown({
  name: "modelroll controller",
  farewell: () => (controller && !kube ? describeSaved(controller.app.modelroll.store, options.stateFile) : null),
});

const busy = await busyPorts([{ ...listen, what: "controller API (--listen)" }]);
if (busy.length > 0) {
  console.error(`modelroll controller: cannot start:\n${busy.map((b) => `  ${b}`).join("\n")}\n${BUSY_PORT_ADVICE}`);
  process.exit(1);
}

try {
  const running = await startController({
    ...options,
    configDelivery: delivered,
    freshState: fresh,
    ...(kube ? { kube, stateFile: ":memory:" } : {}),
    ...(leaderElection ? { leaderElection } : {}),
    host: listen.host,
    port: listen.port,
    logger: { level: process.env.MODELROLL_LOG_LEVEL ?? "warn" },
  });
  controller = running;
  shutdown.onStop(() => running.close());
  const store = running.app.modelroll.store;
  const setAside = running.app.modelroll.state.freshStart;
  const how = setAside
    ? `fresh; the previous ${setAside.previousRollouts} rollouts are kept in ${setAside.keptIn}`
    : store.resumed
      ? `resumed: ${store.size} rollout${store.size === 1 ? "" : "s"}, config version ${store.version}`
      : fresh
        ? "fresh"
        : "new";
  const where = kube
    ? `state in the Kubernetes API ${kube.client.server.host}, namespace ${kube.namespace} (${store.size} rollout${store.size === 1 ? "" : "s"} resumed)`
    : `state ${options.stateFile} (${how})`;
  const identity = running.app.modelroll.leadership.identity;
  const election =
    kube && leaderElection && identity !== null
      ? `; leader election: Lease ${kube.namespace}/${leaderElection.leaseName} as ${identity}`
      : kube
        ? "; no leader election (one replica only)"
        : "";
  console.log(
    `modelroll controller listening on ${running.url} (pid ${process.pid}); ${where}${election}; ` +
      `auth ${options.apiToken ? (options.filterToken ? "API and filter tokens" : "API token") : "off (loopback only)"}` +
      (store.resumed && store.size > 0 ? `\n${resumedLines(store.list())}${upstreamSource(running.app.modelroll.upstreams.guard.readings)}` : ""),
  );
} catch (err) {
  console.error(`modelroll controller: ${(err as Error).message}`);
  await shutdown.stop(1, "start-up failed");
}
