// Benchmark (not a test): what the filter costs against Envoy's native weighted routing, and how fast a
// rollback propagates. Both Envoys run one worker in front of the same upstream (a second Envoy that
// answers with a fixed model response), driven by wrk, in one run, so the ratios compare like with like.
//   npm run bench            (needs wrk: apt-get install wrk)
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { renderBootstrap } from "../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../controller/src/envoy/process.ts";
import { startController } from "../controller/src/server.ts";
import { envoyBinary } from "../controller/src/paths.ts";
import { api, freePort, sendMany, waitFor } from "../test/e2e/harness.ts";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const DURATION_S = Number(process.env.BENCH_SECONDS ?? 10);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const ROLLBACKS = Number(process.env.BENCH_ROLLBACKS ?? 50);

function envoyVersion(): string {
  const out = spawnSync(envoyBinary(), ["--version"], { encoding: "utf8" }).stdout ?? "";
  return `Envoy ${/\/(\d+\.\d+\.\d+)\//.exec(out)?.[1] ?? "unknown"}`;
}

function requireWrk(): void {
  if (spawnSync("wrk", ["--version"]).error) {
    console.error("bench: wrk is not installed (Debian/Ubuntu: apt-get install wrk)");
    process.exit(2);
  }
}

const MODEL_BODY = JSON.stringify({ prediction: "approve", confidence: 0.93, model_version: "v1" });

function upstreamYaml(adminPort: number, stablePort: number, canaryPort: number): string {
  const listener = (name: string, port: number) => `
  - name: ${name}
    address: { socket_address: { address: 127.0.0.1, port_value: ${port} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ${name}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: / }
                direct_response: { status: 200, body: { inline_string: '${MODEL_BODY}' } }
                response_headers_to_add: [{ header: { key: content-type, value: application/json } }]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }`;
  return `admin: { address: { socket_address: { address: 127.0.0.1, port_value: ${adminPort} } } }
static_resources:
  listeners:${listener("stable", stablePort)}${listener("canary", canaryPort)}
`;
}

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

interface WrkResult { rps: number; p50us: number; p99us: number; errors: number }

const LUA = `counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, { ["x-user-id"] = "user-" .. counter, ["content-type"] = "application/json" }, '{"features":[1,2,3]}')
end
`;
const luaPath = join(mkdtempSync(join(tmpdir(), "modelroll-bench-")), "keys.lua");
writeFileSync(luaPath, LUA);

function toMicros(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v : m[2] === "ms" ? v * 1000 : v * 1e6;
}

// Asynchronous on purpose: the controller lives in this process and must keep answering the filters' long-polls.
async function wrk(url: string, connections: number, seconds: number): Promise<WrkResult> {
  if (!new URL(url).pathname || new URL(url).pathname === "/") url = `${url}/v1/predict`;
  const r = await promisify(execFile)("wrk", ["-t", "1", "-c", String(connections), "-d", `${seconds}s`, "--latency", "-s", luaPath, url], { encoding: "utf8" });
  const out = r.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = toMicros(/\n\s+50%\s+(\S+)/.exec(out)?.[1] ?? "");
  const p99 = toMicros(/\n\s+99%\s+(\S+)/.exec(out)?.[1] ?? "");
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((s, x) => s + Number(x), 0) : 0);
  if (!Number.isFinite(rps)) throw new Error(`wrk output not understood:\n${out}\n${r.stderr}`);
  return { rps, p50us: p50, p99us: p99, errors };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

requireWrk();
const stopList: Array<() => Promise<void>> = [];
try {
  const [upAdmin, upStable, upCanary] = [await freePort(), await freePort(), await freePort()];
  const upstream = await startEnvoy({ bootstrapYaml: upstreamYaml(upAdmin, upStable, upCanary), adminPort: upAdmin, concurrency: 1 });
  stopList.push(() => upstream.stop());

  const [natAdmin, natListen] = [await freePort(), await freePort()];
  const native = await startEnvoy({ bootstrapYaml: nativeYaml(natAdmin, natListen, upStable, upCanary), adminPort: natAdmin, concurrency: 1 });
  stopList.push(() => native.stop());

  const [ctlPort, wasmAdmin, wasmListen] = [await freePort(), await freePort(), await freePort()];
  const controller = await startController({ host: "127.0.0.1", port: ctlPort, envoyAdminUrls: [`http://127.0.0.1:${wasmAdmin}`], logger: false });
  stopList.push(() => controller.close());
  const withFilter: EnvoyProcess = await startEnvoy({
    bootstrapYaml: renderBootstrap({
      listen: { host: "127.0.0.1", port: wasmListen }, admin: { host: "127.0.0.1", port: wasmAdmin },
      stable: { host: "127.0.0.1", port: upStable }, canary: { host: "127.0.0.1", port: upCanary },
      controller: { host: "127.0.0.1", port: ctlPort },
    }),
    adminPort: wasmAdmin,
    concurrency: 1,
  });
  stopList.push(() => withFilter.stop());
  const created = await api(controller.url, "POST", "/v1/rollouts", { name: "bench", match: { pathPrefix: "/v1/predict" }, stickyKey: { header: "x-user-id" }, canaryPercent: 5 });
  if (created.status !== 201) throw new Error(`bench: could not create the rollout: ${JSON.stringify(created.json)}`);
  const wasmUrl = `http://127.0.0.1:${wasmListen}`;
  await waitFor("the filter to get the rollout", async () => (await sendMany(`${wasmUrl}/v1/predict`, 8, (i) => ({ "x-user-id": `w${i}` }), 2)).every((r) => r.variant !== null), 15_000, 50);
  const nativeUrl = `http://127.0.0.1:${natListen}`;

  // Warm up both, then alternate runs so drift on the machine hits both sides alike.
  await wrk(nativeUrl, 8, 2);
  await wrk(wasmUrl, 8, 2);
  const sat = { a: [] as WrkResult[], b: [] as WrkResult[] };
  const light = { a: [] as WrkResult[], b: [] as WrkResult[] };
  for (let i = 0; i < REPEATS; i++) {
    sat.a.push(await wrk(nativeUrl, 32, DURATION_S));
    sat.b.push(await wrk(wasmUrl, 32, DURATION_S));
    light.a.push(await wrk(nativeUrl, 2, DURATION_S));
    light.b.push(await wrk(wasmUrl, 2, DURATION_S));
  }
  const m = (rs: WrkResult[], k: keyof WrkResult) => median(rs.map((r) => r[k]));
  const errors = [...sat.a, ...sat.b, ...light.a, ...light.b].reduce((s, r) => s + r.errors, 0);

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
  console.log(`throughput, 32 connections: native weighted_clusters ${m(sat.a, "rps").toFixed(0)} rps, with filter ${m(sat.b, "rps").toFixed(0)} rps, ratio b/a = ${ratio.toFixed(3)}  (target >= 0.90)`);
  console.log(`latency, 2 connections (below saturation): native p50 ${m(light.a, "p50us").toFixed(0)} us p99 ${m(light.a, "p99us").toFixed(0)} us; with filter p50 ${m(light.b, "p50us").toFixed(0)} us p99 ${m(light.b, "p99us").toFixed(0)} us`);
  console.log(`added by the filter: p50 ${(m(light.b, "p50us") - m(light.a, "p50us")).toFixed(0)} us (target <= 50), p99 ${(m(light.b, "p99us") - m(light.a, "p99us")).toFixed(0)} us (target <= 200)`);
  console.log(`rollback propagation over ${ROLLBACKS} rollbacks (API call -> first request on stable): p50 ${percentile(firstStable, 0.5).toFixed(1)} ms, p99 ${percentile(firstStable, 0.99).toFixed(1)} ms, max ${Math.max(...firstStable).toFixed(1)} ms  (target p99 <= 250)`);
  console.log(`errors during load runs: ${errors}`);
} finally {
  for (const stop of stopList.reverse()) await stop().catch(() => undefined);
}
process.exit(0);
