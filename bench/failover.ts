// Failover in Kubernetes mode: the time without a leader after kill -9 of the leader, and that no decision was
// lost, repeated or doubled. A real kube-apiserver and etcd, three controller processes (--state kube), a real
// Envoy with the filter polling their Service, traffic at 40 requests/s, a rollout of 10 stages under way. The
// leader is killed BENCH_KILLS times (default 10), each a random 0.5-2.5 s after the previous takeover (so the
// kills land anywhere in the 0.5 s renew cycle); the killed replica is started again as a follower. The time
// without a leader is from the SIGKILL until a surviving replica's /readyz says "leader" (polled every 25 ms).
// Baseline in the same run: client-go's and Argo Rollouts' default Lease settings (15 s / 10 s / 2 s),
// BENCH_BASELINE_KILLS times (default 3). `npm run bench:failover`.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTraffic } from "../test/docs/traffic.ts";
import { checkHistory, decisionsOf, slowRollout, startKubeStack, statusOf } from "../test/leader/stack.ts";

const KILLS = Number(process.env.BENCH_KILLS ?? "10");
const BASELINE_KILLS = Number(process.env.BENCH_BASELINE_KILLS ?? "3");
const STAGES = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false>, every = 100): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > until) throw new Error(`bench: still waiting after ${ms} ms for ${what}`);
    await sleep(every);
  }
}

interface Run {
  gapsMs: number[];
  problems: string[];
  decisions: number;
  terms: number;
}

async function run(label: string, kills: number, leaseArgs: string[]): Promise<Run> {
  const stack = await startKubeStack({ count: 3, dir: mkdtempSync(join(tmpdir(), "modelroll-bench-failover-")), tickMs: 500, args: leaseArgs });
  const traffic = startTraffic({ url: `${stack.dataUrl}/v1/predict`, requestsPerSecond: 40, stickyHeader: "x-user-id", users: 400 });
  try {
    const { replicas } = stack;
    for (const i of [0, 1, 2]) await replicas.start(i);
    await waitFor("a leader", 60_000, async () => (await replicas.leader()) !== null);
    const spec = { ...slowRollout("bench-failover", 4), stages: STAGES };
    const created = await fetch(`${replicas.serviceUrl}/v1/rollouts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(spec),
    });
    if (created.status !== 201) throw new Error(`bench: creating the rollout answered ${created.status}: ${await created.text()}`);
    await waitFor("the first stage", 60_000, async () => (await statusOf(stack.cluster, "bench-failover")).stage === "10%");
    const gapsMs: number[] = [];
    let restarting: Promise<unknown> = Promise.resolve();
    for (let k = 0; k < kills; k++) {
      await sleep(500 + Math.random() * 2000);
      await restarting;
      const leader = await waitFor("the leader", 60_000, async () => {
        const index = await replicas.leader();
        return index === null ? null : { index };
      });
      await replicas.kill(leader.index);
      const killedAt = performance.now();
      await waitFor(
        "a new leader",
        120_000,
        async () => {
          const index = await replicas.leader();
          return index !== null && index !== leader.index;
        },
        25,
      );
      gapsMs.push(Math.round(performance.now() - killedAt));
      const phase = (await statusOf(stack.cluster, "bench-failover")).phase;
      console.log(`${label}: kill ${k + 1}/${kills} of replica ${leader.index}: ${gapsMs.at(-1)} ms without a leader (rollout ${phase})`);
      restarting = replicas.start(leader.index);
    }
    await restarting;
    await waitFor("Succeeded", 600_000, async () => (await statusOf(stack.cluster, "bench-failover")).phase === "Succeeded", 500);
    const decisions = await decisionsOf(replicas.serviceUrl, "bench-failover");
    const status = await statusOf(stack.cluster, "bench-failover");
    return { gapsMs, problems: checkHistory(decisions, STAGES.length), decisions: decisions.length, terms: status.leader?.term ?? -1 };
  } finally {
    await traffic.stop();
    await stack.stop();
  }
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
const p50 = (v: number[]) => quantile(v, 0.5);
const max = (v: number[]) => Math.max(...v);

const ours = await run("defaults 3s/2s/0.5s", KILLS, []);
const baseline =
  BASELINE_KILLS > 0
    ? await run("client-go defaults 15s/10s/2s", BASELINE_KILLS, ["--lease-duration", "15s", "--renew-deadline", "10s", "--retry-period", "2s"])
    : null;

console.log("\nfailover (kill -9 of the leader, 3 replicas, real kube-apiserver, Envoy under 40 req/s)");
console.log(
  `  defaults (lease 3 s, renew deadline 2 s, retry 0.5 s): ${ours.gapsMs.length} kills, without a leader p50 ${p50(ours.gapsMs)} ms, max ${max(ours.gapsMs)} ms`,
);
console.log(
  `    decisions ${ours.decisions} (10 stages: started, 9 advanced, succeeded); lost, repeated or doubled: ${ours.problems.length === 0 ? "none" : ours.problems.join("; ")}; final term ${ours.terms}`,
);
if (baseline) {
  console.log(
    `  client-go/Argo defaults (15 s / 10 s / 2 s): ${baseline.gapsMs.length} kills, p50 ${p50(baseline.gapsMs)} ms, max ${max(baseline.gapsMs)} ms; problems: ${baseline.problems.length === 0 ? "none" : baseline.problems.join("; ")}`,
  );
  console.log(
    `  ratio (defaults / client-go defaults): p50 ${(p50(ours.gapsMs) / p50(baseline.gapsMs)).toFixed(2)}, max ${(max(ours.gapsMs) / max(baseline.gapsMs)).toFixed(2)}`,
  );
}
process.exit(ours.problems.length === 0 && (baseline?.problems.length ?? 0) === 0 ? 0 : 1);
