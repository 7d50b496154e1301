// Benchmark (not a test): what the filter costs against Envoy's native weighted routing, and how fast a
// rollback propagates. Both Envoys run one worker in front of the same upstream (a second Envoy that
// answers with a fixed model response), driven by wrk, in one run, so the ratios compare like with like.
//   npm run bench            (needs wrk: apt-get install wrk)
// BENCH_BASELINE_WASM=/path/to/filter.wasm also runs a third Envoy with that build of the filter (e.g. main's), in
// the same rounds, and prints this build's figures against it.
import { renderBootstrap } from "../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../controller/src/envoy/process.ts";
import { startController } from "../controller/src/server.ts";
import { api, freePort, sendMany, waitFor } from "../test/e2e/harness.ts";
import { envoyVersion, fixedUpstreamYaml, keysScript, median, percentile, requireWrk, wrk as runWrk, type WrkResult } from "./lib.ts";

const DURATION_S = Number(process.env.BENCH_SECONDS ?? 10);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const ROLLBACKS = Number(process.env.BENCH_ROLLBACKS ?? 50);
const BASELINE_WASM = process.env.BENCH_BASELINE_WASM;

const MODEL_BODY = JSON.stringify({ prediction: "approve", confidence: 0.93, model_version: "v1" });

/** Envoy's own weighted_clusters: the baseline the filter is measured against. */
function nativeYaml(adminPort: number, listenPort: number, stablePort: number, canaryPort: number): string {
  const cluster = (name: string, port: number) => `
  - name: ${name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: ${name}
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${port} } } } }] }]`;
  return `admin: { address: { socket_address: { address: 127.0.0.1, port_value: ${adminPort} } } }
static_resources:
  listeners:
  - name: models
    address: { socket_address: { address: 127.0.0.1, port_value: ${listenPort} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: models
          route_config:
            virtual_hosts:
            - name: models
              domains: ["*"]
              routes:
              - match: { prefix: / }
                route:
                  timeout: 30s
                  weighted_clusters:
                    clusters: [{ name: stable, weight: 95 }, { name: canary, weight: 5 }]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:${cluster("stable", stablePort)}${cluster("canary", canaryPort)}
`;
}

const luaPath = keysScript();
const wrk = (url: string, connections: number, seconds: number): Promise<WrkResult> =>
  runWrk(new URL(url).pathname === "/" ? `${url}/v1/predict` : url, connections, seconds, luaPath);

requireWrk();
const stopList: Array<() => Promise<void>> = [];
try {
  const [upAdmin, upStable, upCanary] = [await freePort(), await freePort(), await freePort()];
  const upstream = await startEnvoy({
    bootstrapYaml: fixedUpstreamYaml(upAdmin, [
      { name: "stable", port: upStable, routes: [{ prefix: "/", body: MODEL_BODY }] },
      { name: "canary", port: upCanary, routes: [{ prefix: "/", body: MODEL_BODY }] },
    ]),
    adminPort: upAdmin,
    concurrency: 1,
  });
  stopList.push(() => upstream.stop());

  const [natAdmin, natListen] = [await freePort(), await freePort()];
  const native = await startEnvoy({ bootstrapYaml: nativeYaml(natAdmin, natListen, upStable, upCanary), adminPort: natAdmin, concurrency: 1 });
  stopList.push(() => native.stop());

  const [ctlPort, wasmAdmin, wasmListen] = [await freePort(), await freePort(), await freePort()];
  const controller = await startController({ host: "127.0.0.1", port: ctlPort, envoyAdminUrls: [`http://127.0.0.1:${wasmAdmin}`], logger: false });
  stopList.push(() => controller.close());
  const withFilter: EnvoyProcess = await startEnvoy({
    bootstrapYaml: renderBootstrap({
      listen: { host: "127.0.0.1", port: wasmListen },
      admin: { host: "127.0.0.1", port: wasmAdmin },
      stable: { host: "127.0.0.1", port: upStable },
      canary: { host: "127.0.0.1", port: upCanary },
      controller: { host: "127.0.0.1", port: ctlPort },
    }),
    adminPort: wasmAdmin,
    concurrency: 1,
  });
  stopList.push(() => withFilter.stop());
  let baselineUrl: string | null = null;
  if (BASELINE_WASM) {
    const [baseAdmin, baseListen] = [await freePort(), await freePort()];
    const baseline = await startEnvoy({
      bootstrapYaml: renderBootstrap({
        listen: { host: "127.0.0.1", port: baseListen },
        admin: { host: "127.0.0.1", port: baseAdmin },
        stable: { host: "127.0.0.1", port: upStable },
        canary: { host: "127.0.0.1", port: upCanary },
        controller: { host: "127.0.0.1", port: ctlPort },
        wasmPath: BASELINE_WASM,
      }),
      adminPort: baseAdmin,
      concurrency: 1,
    });
    stopList.push(() => baseline.stop());
    baselineUrl = `http://127.0.0.1:${baseListen}`;
  }
  const created = await api(controller.url, "POST", "/v1/rollouts", {
    name: "bench",
    match: { pathPrefix: "/v1/predict" },
    stickyKey: { header: "x-user-id" },
    canaryPercent: 5,
  });
  if (created.status !== 201) throw new Error(`bench: could not create the rollout: ${JSON.stringify(created.json)}`);
  const wasmUrl = `http://127.0.0.1:${wasmListen}`;
  for (const url of [wasmUrl, ...(baselineUrl ? [baselineUrl] : [])]) {
    await waitFor(
      "the filter to get the rollout",
      async () => (await sendMany(`${url}/v1/predict`, 8, (i) => ({ "x-user-id": `w${i}` }), 2)).every((r) => r.variant !== null),
      15_000,
      50,
    );
  }
  const nativeUrl = `http://127.0.0.1:${natListen}`;

  // Warm up every side, then alternate runs so drift on the machine hits all sides alike.
  await wrk(nativeUrl, 8, 2);
  await wrk(wasmUrl, 8, 2);
  if (baselineUrl) await wrk(baselineUrl, 8, 2);
  const sat = { a: [] as WrkResult[], b: [] as WrkResult[], base: [] as WrkResult[] };
  const light = { a: [] as WrkResult[], b: [] as WrkResult[], base: [] as WrkResult[] };
  for (let i = 0; i < REPEATS; i++) {
    // The two filter builds swap places every round, so neither always follows the same neighbour.
    const filters = [{ url: wasmUrl, sat: sat.b, light: light.b }, ...(baselineUrl ? [{ url: baselineUrl, sat: sat.base, light: light.base }] : [])];
    if (i % 2 === 1) filters.reverse();
    sat.a.push(await wrk(nativeUrl, 32, DURATION_S));
    for (const f of filters) f.sat.push(await wrk(f.url, 32, DURATION_S));
    light.a.push(await wrk(nativeUrl, 2, DURATION_S));
    for (const f of filters) f.light.push(await wrk(f.url, 2, DURATION_S));
  }
  const m = (rs: WrkResult[], k: keyof WrkResult) => median(rs.map((r) => r[k]));
  const errors = [...sat.a, ...sat.b, ...sat.base, ...light.a, ...light.b, ...light.base].reduce((s, r) => s + r.errors, 0);

  // Rollback propagation on the same filter Envoy: API call -> first request that no longer reaches the canary.
  const url = `${wasmUrl}/v1/predict`;
  const firstStable: number[] = [];
  for (let i = 0; i < ROLLBACKS; i++) {
    await api(controller.url, "PUT", "/v1/rollouts/bench/weight", { canaryPercent: 100 });
    await waitFor("100%", async () => (await sendMany(url, 4, (k) => ({ "x-user-id": `r${i}-${k}` }), 2)).every((r) => r.variant === "canary"), 5000, 0);
    const t0 = performance.now();
    const rb = api(controller.url, "POST", "/v1/rollouts/bench/rollback");
    await waitFor("rollback", async () => (await sendMany(url, 1, () => ({ "x-user-id": `x${Math.random()}` }), 1))[0].variant === "stable", 5000, 0);
    firstStable.push(performance.now() - t0);
    await rb;
  }

  const ratio = m(sat.b, "rps") / m(sat.a, "rps");
  console.log(`\nmodelroll bench (${REPEATS} x ${DURATION_S}s per point, medians; ${envoyVersion()}, 1 worker each, wrk 1 thread)`);
  console.log(
    `throughput, 32 connections: native weighted_clusters ${m(sat.a, "rps").toFixed(0)} rps, with filter ${m(sat.b, "rps").toFixed(0)} rps, ratio b/a = ${ratio.toFixed(3)}  (target >= 0.90)`,
  );
  console.log(
    `latency, 2 connections (below saturation): native p50 ${m(light.a, "p50us").toFixed(0)} us p99 ${m(light.a, "p99us").toFixed(0)} us; with filter p50 ${m(light.b, "p50us").toFixed(0)} us p99 ${m(light.b, "p99us").toFixed(0)} us`,
  );
  console.log(
    `added by the filter: p50 ${(m(light.b, "p50us") - m(light.a, "p50us")).toFixed(0)} us (target <= 50), p99 ${(m(light.b, "p99us") - m(light.a, "p99us")).toFixed(0)} us (target <= 200)`,
  );
  console.log(
    `rollback propagation over ${ROLLBACKS} rollbacks (API call -> first request on stable): p50 ${percentile(firstStable, 0.5).toFixed(1)} ms, p99 ${percentile(firstStable, 0.99).toFixed(1)} ms, max ${Math.max(...firstStable).toFixed(1)} ms  (target p99 <= 250)`,
  );
  if (baselineUrl) {
    console.log(
      `this build vs the baseline build (${BASELINE_WASM}): throughput ${m(sat.b, "rps").toFixed(0)} vs ${m(sat.base, "rps").toFixed(0)} rps, ratio ${(m(sat.b, "rps") / m(sat.base, "rps")).toFixed(3)}; 2 connections p50 ${m(light.b, "p50us").toFixed(0)} vs ${m(light.base, "p50us").toFixed(0)} us (ratio ${(m(light.b, "p50us") / m(light.base, "p50us")).toFixed(3)}), p99 ${m(light.b, "p99us").toFixed(0)} vs ${m(light.base, "p99us").toFixed(0)} us (ratio ${(m(light.b, "p99us") / m(light.base, "p99us")).toFixed(3)})`,
    );
  }
  console.log(`errors during load runs: ${errors}`);
} finally {
  for (const stop of stopList.reverse()) await stop().catch(() => undefined);
}
process.exit(0);
