// Decision to observed split through the real istiod against the long-poll, in one run (not a test): the real
// kube-apiserver and istiod, 1, 10 and 50 sidecar stand-ins (test/kube/sidecar.ts: plain Envoy 1.40 with the
// filter from istiod over ECDS), the compiled controller. Per fleet size and delivery, TRIALS promotions
// (10% -> 50%) and rollbacks (50% -> 0, POST /rollback), each timed from just before the API call to the moment
// every Envoy routes a probe key (whose bucket lies between the two weights) the new way; then what the
// controller holds (connections, memory) and what istiod spends, and a 2,000-sidecar estimate from the points.
//   npm run bench:istiod   (BENCH_SIZES=1,10,50  BENCH_TRIALS=10  BENCH_MODES=long-poll,istiod,both)
import { cpus, loadavg } from "node:os";
import { startRealController, type RealController } from "../test/controller/real-controller.ts";
import { startKubeCluster } from "../test/kube/cluster.ts";
import { applyWasmPlugin, ecdsReloads, NAMESPACE, PLUGIN, probeKeys, ROLLOUT, startFleet, untilEvery, untilReloaded } from "../test/kube/fleet.ts";
import { startIstiod } from "../test/kube/istiod.ts";
import { freePort } from "../controller/src/net.ts";
import { envoyVersion, median, percentile } from "./lib.ts";
import { controllerHolds } from "./proc-stats.ts";
import { extrapolate, type Point } from "./delivery-model.ts";

const SIZES = (process.env.BENCH_SIZES ?? "1,10,50").split(",").map(Number);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 10);
const MODES = (process.env.BENCH_MODES ?? "long-poll,istiod,both").split(",") as Array<"long-poll" | "istiod" | "both">;
const TOKEN = "bench-api-token-0123456789";
const FILTER_TOKEN = "bench-filter-token-0123456789";
const CONTROLLER_CLUSTER = "outbound|8080||modelroll-controller.modelroll.svc.cluster.local";

/** One unlabelled sample of istiod's self-monitoring (Go's process collector: CPU seconds, resident bytes). */
const istiodMetric = async (name: string) => {
  const text = await (await fetch(`${istiod.monitoringUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`istiod's /metrics has no ${name}`);
  return Number(line.split(" ").at(-1));
};
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
const api = async (c: RealController, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${c.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
};

console.log(
  `\nmodelroll: decision to observed split, istiod (ECDS) vs the controller's long-poll (${envoyVersion()}, ${cpus().length} cores, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")} at start)`,
);
const cluster = await startKubeCluster();
const istiod = await startIstiod(cluster);
// The filters' controller cluster (Istio's name for the Service) points at a port fixed for the run; each
// delivery's controller listens there in turn.
const controllerPort = await freePort();
const fleet = await startFleet(istiod.grpcAddr, { clusters: { [CONTROLLER_CLUSTER]: { host: "127.0.0.1", port: controllerPort } } });
const keys = await probeKeys();
const MID = keys.between(1000, 5000); // stable at 10%, canary at 50%, stable at 0
const LOW = keys.between(0, 1000); // canary at 10%
const results: Array<{
  mode: string;
  n: number;
  promotion: number[];
  rollback: number[];
  each: number[];
  holds: ReturnType<typeof controllerHolds> | null;
  held: number;
  istiodCpu: number;
}> = [];
const pluginConfigFor = (mode: string) =>
  mode === "istiod"
    ? {}
    : {
        controller: {
          cluster: CONTROLLER_CLUSTER,
          authority: "modelroll-controller.modelroll.svc.cluster.local:8080",
          pollWaitSeconds: 20,
          token: FILTER_TOKEN,
        },
      };

try {
  // The sidecars wait for their filter's first config from istiod: the WasmPlugin comes first.
  await applyWasmPlugin(cluster, pluginConfigFor(MODES[0] as string));
  for (const n of SIZES) {
    await fleet.grow(n - fleet.sidecars.length, 5);
    const interval = Math.min(50, Math.max(2, n));
    for (const mode of MODES) {
      await applyWasmPlugin(cluster, pluginConfigFor(mode));
      const controller = await startRealController(
        ["--config-delivery", mode, ...(mode === "long-poll" ? [] : ["--wasmplugin", `${NAMESPACE}/${PLUGIN}`, "--kubeconfig", cluster.kubeconfig])],
        { MODELROLL_API_TOKEN: TOKEN, MODELROLL_FILTER_TOKEN: FILTER_TOKEN },
        { port: controllerPort },
      );
      try {
        await api(controller, "POST", "/v1/rollouts", {
          name: ROLLOUT,
          match: { pathPrefix: "/v1/models/fraud-model" },
          stickyKey: { header: "x-user-id" },
          canaryPercent: 10,
        });
        await untilEvery(fleet.sidecars, LOW, "canary", { since: performance.now(), intervalMs: 50, timeoutMs: 60_000 });
        const row = {
          mode,
          n,
          promotion: [] as number[],
          rollback: [] as number[],
          each: [] as number[],
          holds: null as ReturnType<typeof controllerHolds> | null,
          held: 0,
          istiodCpu: 0,
        };
        // Between changes the fleet is let settle as between the stages of a real rollout (minutes apart): with
        // istiod in the path, every sidecar has applied the change's push before the next change starts.
        const pushes = mode !== "long-poll";
        const change = async (send: () => Promise<unknown>, key: string, variant: string, timed: number[] | null) => {
          const before = pushes ? await ecdsReloads(fleet.sidecars) : [];
          const since = performance.now();
          await send();
          const seen = await untilEvery(fleet.sidecars, key, variant, { since, intervalMs: timed ? interval : 50, timeoutMs: 60_000 });
          if (timed) timed.push(seen.all);
          if (pushes) await untilReloaded(fleet.sidecars, before, 60_000);
          return seen;
        };
        // One untimed round first: the filters' polls may still be backing off from the previous controller on
        // this port, and the WasmPlugin may hold an older static table that already routes the probe key.
        await change(() => api(controller, "PUT", `/v1/rollouts/${ROLLOUT}/weight`, { canaryPercent: 50 }), MID, "canary", null);
        await change(() => api(controller, "PUT", `/v1/rollouts/${ROLLOUT}/weight`, { canaryPercent: 10 }), MID, "stable", null);
        const cpu0 = await istiodMetric("process_cpu_seconds_total");
        for (let t = 0; t < TRIALS; t++) {
          await change(() => api(controller, "PUT", `/v1/rollouts/${ROLLOUT}/weight`, { canaryPercent: 50 }), MID, "canary", row.promotion);
          const down = await change(() => api(controller, "POST", `/v1/rollouts/${ROLLOUT}/rollback`, { reason: "bench" }), MID, "stable", row.rollback);
          row.each.push(...down.each);
          await change(() => api(controller, "PUT", `/v1/rollouts/${ROLLOUT}/weight`, { canaryPercent: 10 }), LOW, "canary", null);
        }
        row.istiodCpu = ((await istiodMetric("process_cpu_seconds_total")) - cpu0) / (3 * TRIALS);
        row.holds = controllerHolds(controller.child.pid as number, controllerPort);
        const metrics = await (await fetch(`${controller.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
        row.held = Number(/^modelroll_config_polls_held (\S+)$/m.exec(metrics)?.[1] ?? Number.NaN);
        results.push(row);
        console.log(
          `${mode.padEnd(9)} ${String(n).padStart(2)} Envoys: promotion p50 ${fmt(median(row.promotion))} p99 ${fmt(percentile(row.promotion, 0.99))}, ` +
            `rollback p50 ${fmt(median(row.rollback))} p99 ${fmt(percentile(row.rollback, 0.99))} (per Envoy p50 ${fmt(median(row.each))}); ` +
            `controller: ${row.held} polls held, ${row.holds.text}; istiod ${(row.istiodCpu * 1000).toFixed(0)} ms CPU per change, RSS ${((await istiodMetric("process_resident_memory_bytes")) / 2 ** 20).toFixed(0)} MiB; load ${loadavg()[0].toFixed(2)}`,
        );
      } finally {
        await controller.stop();
      }
    }
  }
  const points: Point[] = results.map((r) => ({
    mode: r.mode,
    n: r.n,
    rollbackMs: median(r.rollback),
    istiodCpuS: r.istiodCpu,
    accepted: r.holds?.accepted ?? 0,
    held: r.held,
    rssMiB: r.holds?.rss ?? 0,
  }));
  console.log(`\n${extrapolate(points, 2000)}`);
} finally {
  await fleet.stop();
  await istiod.stop();
  await cluster.stop();
}
