// Single reads while the rollout list is read hard: p99 of GET /v1/rollouts/{name} alone, then while 200
// clients read GET /v1/rollouts (200 rollouts, ~160 KB) in a loop; the ratio of the two in the same run.
// Against the compiled controller in its own process (bench/api-process.ts). `npm run bench:list`.
// ROLLOUTS=200 READERS=200 PROBES=1000; LIST_ETAG=1: readers poll as a client that keeps its copy would (each
// sends back the ETag it got, If-None-Match); CONTROLLER_DIST=/path/to/dist measures another build.
import { cpus, loadavg } from "node:os";
import { percentile } from "./lib.ts";
import { DIST, pool, seed, startApi, timed } from "./api-process.ts";

const ROLLOUTS = Number(process.env.ROLLOUTS ?? 200);
const READERS = Number(process.env.READERS ?? 200);
const PROBES = Number(process.env.PROBES ?? 1000);
const LIST_ETAG = process.env.LIST_ETAG === "1";

const api = await startApi();
try {
  await seed(api.url, ROLLOUTS);
  const probe = async () => {
    const latencies: number[] = [];
    await pool(PROBES, 4, async (i) => {
      const r = await timed(`${api.url}/v1/rollouts/m${String(i % ROLLOUTS).padStart(5, "0")}`, "GET");
      if (r.status !== 200) throw new Error(`bench: single GET answered ${r.status}`);
      latencies.push(r.ms);
    });
    return latencies;
  };
  await probe();
  const quiet = await probe();
  let stop = false;
  let lists = 0;
  let listBytes = 0;
  const listStart = performance.now();
  let notModified = 0;
  const readers = Array.from({ length: READERS }, async () => {
    let etag: string | null = null;
    while (!stop) {
      const response: Response = await fetch(`${api.url}/v1/rollouts`, { headers: LIST_ETAG && etag ? { "if-none-match": etag } : {} });
      const text = await response.text();
      if (response.status === 304) notModified++;
      else if (response.status !== 200) throw new Error(`bench: list answered ${response.status}`);
      else listBytes = text.length;
      etag = response.headers.get("etag");
      lists++;
    }
  });
  await new Promise((done) => setTimeout(done, 1000));
  const busy = await probe();
  stop = true;
  await Promise.all(readers);
  const listSeconds = (performance.now() - listStart) / 1000;
  const q = percentile(quiet, 0.99);
  const b = percentile(busy, 0.99);
  console.log(
    `bench:list: ${DIST}; ${ROLLOUTS} rollouts, list ${(listBytes / 1024).toFixed(0)} KB, ${READERS} list readers${LIST_ETAG ? " sending If-None-Match" : ""}, ${PROBES} single GETs (4 in flight); ${cpus().length} cores, load ${loadavg()[0]?.toFixed(1)}`,
  );
  console.log(`single GET alone:          p50 ${percentile(quiet, 0.5).toFixed(1)} ms, p99 ${q.toFixed(1)} ms`);
  console.log(`single GET with list load: p50 ${percentile(busy, 0.5).toFixed(1)} ms, p99 ${b.toFixed(1)} ms; p99 ratio ${(b / q).toFixed(1)}`);
  console.log(`lists served meanwhile: ${(lists / listSeconds).toFixed(0)}/s${LIST_ETAG ? ` (${notModified} of ${lists} were 304)` : ""}`);
} finally {
  await api.stop();
}
