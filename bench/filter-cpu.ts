// Benchmark (not a test): the filter's own CPU time per request, without Envoy, sockets or a load generator:
// build/filter.wasm driven through the fake host (test/unit/fake-host.ts) in this process, on V8 (the engine
// Envoy runs it on). With BENCH_BASELINE_WASM=/path/to/filter.wasm (e.g. main's build) both builds run the same
// requests, interleaved in rounds, and the ratios are printed. The fake host's own work (encoding headers and
// bodies) is in both figures, so the ratios understate differences in the filter itself; the differences in us
// do not.
//   npm run bench:filter-cpu
import { join } from "node:path";
import { repoRoot } from "../controller/src/paths.ts";
import { compileOutputSchema } from "../controller/src/schema/compile.ts";
import { FakeHost } from "../test/unit/fake-host.ts";
import { median } from "./lib.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const BASELINE_WASM = process.env.BENCH_BASELINE_WASM;

const compiled = compileOutputSchema({
  type: "object",
  required: ["prediction", "confidence", "model_version"],
  properties: {
    prediction: { enum: ["approve", "review", "decline"] },
    confidence: { type: "number", minimum: 0, maximum: 1 },
    model_version: { type: "string" },
    items: { type: "array", items: { type: "object", properties: { id: { type: "integer" }, label: { type: "string" }, score: { type: "number" } } } },
  },
});
if (!compiled.ok) throw new Error("bench schema refused");
const schema = JSON.stringify(compiled.compiled);

function answer(kb: number): string {
  const items: Array<{ id: number; label: string; score: number }> = [];
  for (let i = 0; JSON.stringify(items).length < kb * 1024; i++) items.push({ id: i, label: ["approve", "review", "decline"][i % 3], score: (i % 100) / 100 });
  return JSON.stringify({ prediction: "approve", confidence: 0.93, model_version: "v1", items });
}

const rollout = (name: string, output?: Record<string, unknown>) => ({
  name,
  pathPrefix: `/${name}/`,
  stickyHeader: "x-user-id",
  canaryBasisPoints: 500,
  ...(output ? { output } : {}),
});
const analyzed = { analyze: true, schema, labels: ["approve", "review", "decline"], maxBodyBytes: 1 << 20 };
const config = { rollouts: [rollout("plain"), rollout("val1", analyzed), rollout("val16", analyzed), rollout("val256", analyzed)] };

const cases = [
  { name: "routing only (63 B answer)", path: "/plain/p", body: '{"prediction":"approve","confidence":0.93,"model_version":"v1"}' },
  { name: "analysis + schema, 1 KB answer", path: "/val1/p", body: answer(1) },
  { name: "analysis + schema, 16 KB answer", path: "/val16/p", body: answer(16) },
  { name: "analysis + schema, 256 KB answer", path: "/val256/p", body: answer(256) },
];

async function host(wasm: string): Promise<FakeHost> {
  const { host, configured } = await FakeHost.start(config, wasm);
  if (!configured) throw new Error(`${wasm}: configuration refused: ${host.logs.map((l) => l.message).join("; ")}`);
  host.recordHostCalls = false;
  return host;
}

/**
 * CPU microseconds per request for `n` requests of one case: this process's CPU time, not wall time, so the time it
 * waits for a core on a shared machine is left out.
 */
function run(h: FakeHost, path: string, body: string, n: number, offset: number): number {
  const headers = { ":method": "POST", ":path": path, ":authority": "models", "content-type": "application/json" };
  const response = { ":status": "200", "content-type": "application/json", "content-length": String(body.length) };
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const s = h.newStream();
    s.sendRequestHeaders({ ...headers, "x-user-id": `user-${offset + i}` }, true);
    s.sendResponseHeaders(response, false);
    s.sendResponseBody(body, true);
    s.end();
  }
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / n;
}

const builds = [{ name: "this build", wasm: join(repoRoot, "build", "filter.wasm") }, ...(BASELINE_WASM ? [{ name: "baseline", wasm: BASELINE_WASM }] : [])];
const hosts = await Promise.all(builds.map((b) => host(b.wasm)));
console.log(
  `\nmodelroll filter CPU bench (${ROUNDS} rounds per case and build, ${REQUESTS} requests per round divided by the answer's KB (at least 20); CPU time per request; node ${process.version})`,
);
for (const c of cases) {
  const n = Math.max(20, Math.round(REQUESTS / Math.max(1, c.body.length / 1024)));
  hosts.forEach((h, k) => {
    run(h, c.path, c.body, n, k * 1e7); // warm-up
  });
  const perBuild: number[][] = builds.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which build goes first, so neither always runs on a warmer (or colder) heap.
    const order = r % 2 === 0 ? hosts.map((_, k) => k) : hosts.map((_, k) => hosts.length - 1 - k);
    for (const k of order) perBuild[k].push(run(hosts[k], c.path, c.body, n, r * n));
  }
  // On a shared machine other load only ever adds time: the fastest round is the least disturbed one.
  const medians = perBuild.map(median);
  const mins = perBuild.map((xs) => Math.min(...xs));
  const line = builds.map((b, k) => `${b.name} ${medians[k].toFixed(2)} us/request (fastest round ${mins[k].toFixed(2)})`).join(", ");
  const ratio =
    medians.length === 2
      ? `; this build / baseline: medians ${(medians[0] / medians[1]).toFixed(3)} (${(medians[0] - medians[1]).toFixed(2)} us), fastest rounds ${(mins[0] / mins[1]).toFixed(3)} (${(mins[0] - mins[1]).toFixed(2)} us)`
      : "";
  console.log(`${c.name}: ${line}${ratio}`);
}
const counted = hosts.map((h) => h.counter("modelroll.rollout.val16.variant.stable.schema.valid.outputs") ?? 0);
console.log(`check: val16 answers counted valid per build: ${counted.join(", ")}`);
