// The simulated sidecars of bench/prometheus-gates.ts, in a process of their own so that the bench's CPU figures
// are the controller's alone: N local HTTP servers answering /stats/prometheus with recorded stats of the filter
// (stable and canary, all 273 latency buckets, responses, schema results), one recorded tick ahead at a time.
// Messages: "advance" -> { bytes } (the stats one read of every sidecar returns now); started: { urls, series, bytes }.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { RolloutCounts } from "../controller/src/metrics/provider.ts";
import { GOOD, TrafficSim } from "../test/engine/sim.ts";
import { present } from "./lib.ts";
import { renderRolloutStats } from "./stats-text.ts";

const SIDECARS = Number(process.env.BENCH_SIDECARS ?? 1000);
const SEGMENT_VALUES = Number(process.env.BENCH_SEGMENT_VALUES ?? 0);
const REQUESTS_PER_TICK = 300;
export const ROLLOUT = "fraud-model";
const VALUES = Array.from({ length: SEGMENT_VALUES }, (_, i) => `t${i}`);

function render(counts: RolloutCounts): string {
  return renderRolloutStats(ROLLOUT, counts, { omitZeroResponses: false, before: ["modelroll_config_updates{} 1"] });
}

async function main(): Promise<void> {
  const send = present(process.send, "IPC channel (bench/prometheus-gates.ts forks this file)").bind(process);
  const shares = Object.fromEntries([...VALUES, "other"].map((v) => [v, 1 / (VALUES.length + 1)]));
  const sims = Array.from(
    { length: SIDECARS },
    (_, e) =>
      new TrafficSim({ seed: e + 1, ...(SEGMENT_VALUES > 0 ? { segment: { dimension: "tenant", shares } } : {}), behavior: () => GOOD, allBuckets: true }),
  );
  let texts = sims.map((sim) => render(sim.counts()));
  const servers: Server[] = [];
  const urls: string[] = [];
  for (let e = 0; e < SIDECARS; e++) {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end(texts[e]);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  const bytes = () => texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
  process.on("message", (message) => {
    if (message === "advance") {
      texts = sims.map((sim) => {
        sim.run(REQUESTS_PER_TICK, { canaryPercent: 5, shadowPercent: 0 });
        return render(sim.counts());
      });
      send({ bytes: bytes() });
    }
  });
  process.on("disconnect", () => {
    for (const s of servers) s.close();
    process.exit(0);
  });
  send({ urls, series: texts[0].split("\n").length - 1, bytes: bytes(), kib: texts[0].length / 1024 });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
