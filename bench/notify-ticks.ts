// Benchmark (not a test): what notifications cost the engine's ticks. 20 managed rollouts (stages 1, 2, 5, 10,
// 25, 50, 100, simulated traffic, an in-memory state file, the injected clock moving 10 s per tick, 20 ms of
// real time between ticks as a short tick period would leave) are driven
// to Succeeded four times in one run: without notification targets (the baseline), with a receiver answering at
// once, with one answering after 2 s, and with one that is down (connection refused). Each event goes to a
// webhook and a Slack target. Prints per-tick wall time (driver.tick for all 20 rollouts: p50, p90, max) and its
// ratio to the baseline, and how many events the receiver had when the last rollout succeeded.
//   npx tsx bench/notify-ticks.ts        (BENCH_ROLLOUTS, default 20; BENCH_GAP_MS, default 20)
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { buildApp } from "../controller/src/app.ts";
import type { MetricProvider, MetricReading, RolloutCounts } from "../controller/src/metrics/provider.ts";
import { GOOD, PoissonTrafficSim } from "../test/engine/sim.ts";
import { present } from "./lib.ts";

const ROLLOUTS = Number(process.env.BENCH_ROLLOUTS ?? 20);
const T0 = Date.UTC(2026, 0, 1);
/** Real time between two ticks (the injected clock moves 10 s per tick). */
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 20);

class Sims implements MetricProvider {
  readonly sims = new Map<string, PoissonTrafficSim>();
  async readRollout(name: string): Promise<MetricReading<RolloutCounts>> {
    return present(this.sims.get(name), `simulation of rollout ${name}`).reading();
  }
}

async function receiver(delayMs: number): Promise<{ server: Server; url: string; received: () => number }> {
  let count = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () =>
      setTimeout(() => {
        count++;
        res.writeHead(200).end();
      }, delayMs),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received: () => count };
}

interface Result {
  ticks: number[];
  events: number;
  receivedAtEnd: number | null;
}

async function run(target: { url: string; received: () => number } | null): Promise<Result> {
  let now = T0;
  const sims = new Sims();
  const app = await buildApp({ clock: () => new Date(now), metricProvider: sims, tickIntervalMs: 0, seriesIntervalMs: 0 });
  try {
    for (let i = 0; i < ROLLOUTS; i++) {
      const name = `r${i}`;
      sims.sims.set(name, new PoissonTrafficSim({ seed: 100 + i, behavior: () => GOOD }));
      const spec = {
        name,
        match: { pathPrefix: `/${name}` },
        stickyKey: { header: "x-user-id" },
        owner: "team",
        rollbackCondition: "errors above 1%",
        stages: [1, 2, 5, 10, 25, 50, 100],
        stageDefaults: { minDurationSeconds: 60, deadlineSeconds: 3600 },
        promotion_gates: { error_rate: { maximum: 0.01 } },
        ...(target ? { notifications: { targets: [{ url: `${target.url}/hook?token=x` }, { format: "slack", url: `${target.url}/slack/T/B/x` }] } } : {}),
      };
      const res = await app.inject({ method: "POST", url: "/v1/rollouts", payload: spec });
      if (res.statusCode !== 201) throw new Error(res.body);
    }
    const ticks: number[] = [];
    let receivedAtEnd: number | null = null;
    for (let t = 0; t < 200; t++) {
      const config = (await app.inject({ url: "/v1/filter-config" })).json() as { rollouts: Array<{ name: string; canaryBasisPoints: number }> };
      for (const r of config.rollouts)
        present(sims.sims.get(r.name), `simulation of rollout ${r.name}`).run(5000, { canaryPercent: r.canaryBasisPoints / 100, shadowPercent: 0 });
      now += 10_000;
      // As the driver's timer does: the event loop is free between ticks (deliveries, answers, I/O run there).
      await new Promise((r) => setTimeout(r, GAP_MS));
      const started = performance.now();
      await app.modelroll.driver.tick();
      ticks.push(performance.now() - started);
      if (app.modelroll.store.list().every((r) => r.engine?.state.phase === "Succeeded")) {
        receivedAtEnd = target ? target.received() : null;
        break;
      }
    }
    const events = (await app.inject({ url: "/v1/notifications?limit=1000" })).json().deliveries.length;
    return { ticks, events, receivedAtEnd };
  } finally {
    // Deliveries still under way are abandoned after a short grace: the bench measures the ticks only.
    await app.close();
  }
}

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

async function main(): Promise<void> {
  const fast = await receiver(0);
  const slow = await receiver(2000);
  const down = await receiver(0);
  const downUrl = down.url;
  await new Promise((r) => down.server.close(r));
  // Warm-up (JIT, module loading), not reported.
  await run(null);
  const rows: Array<[string, Result]> = [
    ["no targets (baseline)", await run(null)],
    ["receiver answering at once", await run(fast)],
    ["receiver answering after 2 s", await run(slow)],
    ["receiver down (refused)", await run({ url: downUrl, received: () => 0 })],
  ];
  const base = rows[0][1];
  console.log(`${ROLLOUTS} rollouts, ${base.ticks.length} ticks to Succeeded, node ${process.version}`);
  for (const [label, r] of rows) {
    const ratio = (p: number) => (q(r.ticks, p) / q(base.ticks, p)).toFixed(2);
    console.log(
      `${label.padEnd(30)} tick p50 ${fmt(q(r.ticks, 0.5))} (x${ratio(0.5)}), p90 ${fmt(q(r.ticks, 0.9))} (x${ratio(0.9)}), max ${fmt(Math.max(...r.ticks))}; ` +
        `${r.events} deliveries enqueued${r.receivedAtEnd === null ? "" : `, ${r.receivedAtEnd} received when the last rollout succeeded`}`,
    );
  }
  fast.server.close();
  slow.server.closeAllConnections();
  slow.server.close();
}

await main();
