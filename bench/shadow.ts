// Benchmark (not a test): does a slow shadow cost the primary anything? One Envoy (2 workers) with the
// filter, one demo model as stable, one as shadow answering 10x slower than the primary; wrk drives two
// paths in turns: one rollout that mirrors every request, one that mirrors none.
//   npm run bench:shadow     (needs wrk)
import { api, sendMany, startStack, waitFor } from "../test/e2e/harness.ts";
import { keysScript, median, present, requireWrk, wrk as runWrk } from "./lib.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 4);

requireWrk();
const lua = keysScript();
const wrk = async (url: string) => {
  const r = await runWrk(url, CONNECTIONS, SECONDS, lua);
  return { rps: r.rps, p50: r.p50us, p99: r.p99us, errors: r.errors };
};
const RATE = Number(process.env.BENCH_RATE ?? 300);

/**
 * Open loop at a fixed rate, below saturation: requests leave on schedule whether or not earlier ones
 * answered, so a slow path shows as latency instead of as fewer requests.
 */
async function openLoop(url: string, rate: number, seconds: number): Promise<{ p50: number; p99: number; sent: number; failed: number }> {
  const { Agent, request } = await import("node:http");
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const latencies: number[] = [];
  let failed = 0;
  const total = Math.round(rate * seconds);
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      new Promise<void>((resolve) => {
        const t0 = performance.now();
        const req = request(url, { method: "POST", agent, headers: { "x-user-id": `o${i}`, "content-type": "application/json" } }, (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) latencies.push((performance.now() - t0) * 1000);
            else failed++;
            resolve();
          });
        });
        req.on("error", () => {
          failed++;
          resolve();
        });
        req.end('{"features":[1,2,3]}');
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  const sorted = latencies.sort((a, b) => a - b);
  return { p50: sorted[Math.floor(sorted.length * 0.5)], p99: sorted[Math.floor(sorted.length * 0.99)], sent: total, failed };
}

const stack = await startStack();
try {
  const ctl = present(stack.controller, "controller in the stack").url;
  for (const [name, shadow] of [
    ["plain", undefined],
    ["mirrored", { percent: 100, timeoutMs: 5000, maxInFlight: 256 }],
  ] as const) {
    const r = await api(ctl, "POST", "/v1/rollouts", {
      name,
      match: { pathPrefix: `/${name}` },
      stickyKey: { header: "x-user-id" },
      ...(shadow ? { shadow } : {}),
    });
    if (r.status !== 201) throw new Error(JSON.stringify(r.json));
  }
  await waitFor(
    "rollouts active",
    async () =>
      (
        await sendMany(
          (i) => `${stack.dataUrl}/${i % 2 ? "plain" : "mirrored"}/p`,
          8,
          (i) => ({ "x-user-id": `w${i}` }),
          2,
        )
      ).every((x) => x.variant !== null),
    15_000,
    50,
  );

  // Measure the primary's own latency first, then make the shadow 10x slower than it.
  const probe = await wrk(`${stack.dataUrl}/plain/p`);
  const shadowDelayMs = Math.max(1, Math.round((probe.p50 * 10) / 1000));
  await fetch(`${stack.shadow.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ latencyMs: shadowDelayMs }) });

  const plain: Array<Awaited<ReturnType<typeof wrk>>> = [];
  const mirrored: Array<Awaited<ReturnType<typeof wrk>>> = [];
  const openPlain: Array<Awaited<ReturnType<typeof openLoop>>> = [];
  const openMirrored: Array<Awaited<ReturnType<typeof openLoop>>> = [];
  const mirroredBefore = stack.shadow.mirrored();
  for (let i = 0; i < REPEATS; i++) {
    openPlain.push(await openLoop(`${stack.dataUrl}/plain/p`, RATE, SECONDS));
    openMirrored.push(await openLoop(`${stack.dataUrl}/mirrored/p`, RATE, SECONDS));
  }
  for (let i = 0; i < REPEATS; i++) {
    plain.push(await wrk(`${stack.dataUrl}/plain/p`));
    mirrored.push(await wrk(`${stack.dataUrl}/mirrored/p`));
  }
  const stats = (await api(ctl, "GET", "/v1/rollouts/mirrored/stats")).json.variants.shadow;
  const p99a = median(plain.map((x) => x.p99));
  const p99b = median(mirrored.map((x) => x.p99));
  const o99a = median(openPlain.map((x) => x.p99));
  const o99b = median(openMirrored.map((x) => x.p99));
  console.log(`\nmodelroll shadow bench (${REPEATS} x ${SECONDS}s per path and load, medians; 2 Envoy workers; shadow and primary on the same 2 cores)`);
  console.log(`primary p50 without shadow: ${(probe.p50 / 1000).toFixed(2)} ms -> shadow delay set to ${shadowDelayMs} ms (10x)`);
  console.log(
    `open loop at ${RATE} rps (below saturation): no shadow p50 ${median(openPlain.map((x) => x.p50)).toFixed(0)} us p99 ${o99a.toFixed(0)} us; 100% mirrored p50 ${median(openMirrored.map((x) => x.p50)).toFixed(0)} us p99 ${o99b.toFixed(0)} us`,
  );
  console.log(`primary p99 change with a 10x slower shadow, below saturation: ${(((o99b - o99a) / o99a) * 100).toFixed(1)}%  (target <= 5%)`);
  console.log(
    `saturated (wrk, ${CONNECTIONS} connections; mirroring doubles the upstream work on this box): no shadow ${median(plain.map((x) => x.rps)).toFixed(0)} rps p99 ${p99a.toFixed(0)} us; mirrored ${median(mirrored.map((x) => x.rps)).toFixed(0)} rps p99 ${p99b.toFixed(0)} us`,
  );
  console.log(
    `mirrored calls: ${stack.shadow.mirrored() - mirroredBefore} reached the shadow; filter: dropped ${stats.comparison.dropped}, compared ${stats.comparison.compared}; non-2xx on the primary: ${[...plain, ...mirrored].reduce((s, x) => s + x.errors, 0) + [...openPlain, ...openMirrored].reduce((s, x) => s + x.failed, 0)}`,
  );
} finally {
  await stack.stop();
}
process.exit(0);
