// Write throughput of the API as rollouts grow: PUT /v1/rollouts/{name}/weight on random rollouts, 16 in flight,
// against the compiled controller in its own process (bench/api-process.ts), at 200, 1,000, 3,000 and 10,000
// rollouts; writes/s, p50 and p99, and the ratio against 200 (measured in the same run). `npm run bench:writes`.
// SIZES=200,1000 WRITES=2000 CONCURRENCY=16 change the run; CONTROLLER_DIST=/path/to/dist measures another build.
import { cpus, loadavg } from "node:os";
import { percentile } from "./lib.ts";
import { DIST, pool, seed, startApi, timed } from "./api-process.ts";

const SIZES = (process.env.SIZES ?? "200,1000,3000,10000").split(",").map(Number);
const WRITES = Number(process.env.WRITES ?? 3000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);

interface Point {
  size: number;
  seedSeconds: number;
  writesPerSecond: number;
  p50: number;
  p99: number;
}

async function measure(size: number): Promise<Point> {
  const api = await startApi();
  try {
    const seedStart = performance.now();
    await seed(api.url, size);
    const seedSeconds = (performance.now() - seedStart) / 1000;
    let counter = 0;
    const write = async (latencies: number[] | null) => {
      const i = Math.floor(Math.random() * size);
      // 1..99: a different weight nearly every time, so most writes move the config version.
      const canaryPercent = (counter++ % 99) + 1;
      const r = await timed(`${api.url}/v1/rollouts/m${String(i).padStart(5, "0")}/weight`, "PUT", { canaryPercent });
      if (r.status !== 200) throw new Error(`bench: write answered ${r.status}`);
      latencies?.push(r.ms);
    };
    await pool(Math.min(500, WRITES), CONCURRENCY, () => write(null));
    const latencies: number[] = [];
    const start = performance.now();
    await pool(WRITES, CONCURRENCY, () => write(latencies));
    const seconds = (performance.now() - start) / 1000;
    return { size, seedSeconds, writesPerSecond: WRITES / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
  } finally {
    await api.stop();
  }
}

console.log(`bench:writes: ${DIST}; ${WRITES} writes per size, ${CONCURRENCY} in flight; ${cpus().length} cores, load ${loadavg()[0]?.toFixed(1)}`);
const points: Point[] = [];
for (const size of SIZES) {
  const point = await measure(size);
  points.push(point);
  const base = points[0] as Point;
  console.log(
    `${String(size).padStart(6)} rollouts: ${point.writesPerSecond.toFixed(0).padStart(5)} writes/s, p50 ${point.p50.toFixed(1)} ms, p99 ${point.p99.toFixed(1)} ms; ` +
      `vs ${base.size}: throughput ${(point.writesPerSecond / base.writesPerSecond).toFixed(2)}, p99 ${(point.p99 / base.p99).toFixed(2)} (seeded in ${point.seedSeconds.toFixed(1)} s)`,
  );
}
