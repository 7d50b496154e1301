// What a controller crash, a clean controller restart and an upgrade cost the data plane, under an open-loop load
// of 100 requests/s through Envoy (loopback, a static rollout at 50%): `npm start` as it is now (the launcher owns
// Envoy; the controller is restarted by it) against the arrangement before it (cli/start.js alone: Envoy is the
// controller's child), measured in the same run. Before, a crash leaves no Envoy until someone starts it all again;
// the bench does that at once, as the best an operator could do. Per round: requests sent, failed (any answer but
// 200, or none), and the time from the kill or the request until the controller's API answers again.
// `npm run bench:restart` (BENCH_ROUNDS, default 3).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../controller/src/paths.ts";
import { startTraffic } from "../test/docs/traffic.ts";
import { api, waitFor } from "../test/e2e/harness.ts";
import { freePorts, groupMembers, killGroup, latestController, npmStart, portFlags, type Ports, startEnv } from "../test/e2e/tree.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? "3");
const RATE = 100;
const dir = mkdtempSync(join(tmpdir(), "modelroll-bench-restart-"));

interface Round {
  sent: number;
  failed: number;
  backMs: number;
}

/** Load before, during and after `disturb` (which resolves once the controller's API answers again). */
async function underLoad(data: string, ctl: string, disturb: () => Promise<void>): Promise<Round> {
  const traffic = startTraffic({ url: `${data}/v1/predict`, requestsPerSecond: RATE, stickyHeader: "x-user-id", users: 500 });
  await waitFor("load before", async () => traffic.sent >= RATE, 30_000, 20);
  const at = performance.now();
  await disturb();
  await waitFor("the API", async () => (await fetch(`${ctl}/v1/rollouts`).catch(() => null))?.status === 200, 120_000, 20);
  const backMs = Math.round(performance.now() - at);
  const sentAtBack = traffic.sent;
  await waitFor("load after", async () => traffic.sent >= sentAtBack + RATE, 30_000, 20);
  await traffic.stop();
  const failed = [...traffic.counts].filter(([status]) => status !== 200).reduce((sum, [, n]) => sum + n, 0);
  return { sent: traffic.sent, failed, backMs };
}

async function rollout(ctl: string): Promise<void> {
  const r = await api(ctl, "POST", "/v1/rollouts", {
    name: "fraud-model",
    match: { pathPrefix: "/v1/predict" },
    stickyKey: { header: "x-user-id" },
    canaryPercent: 50,
  });
  if (r.status !== 201 && r.status !== 409) throw new Error(`creating the rollout answered ${r.status}`);
}

async function launcherRounds(kind: "SIGKILL" | "SIGUSR2"): Promise<Round[]> {
  const ports = await freePorts();
  const run = await npmStart(ports, join(dir, `launcher-${kind}.db`));
  const ctl = `http://127.0.0.1:${ports.controller}`;
  try {
    await rollout(ctl);
    const rounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const restartsBefore = [...run.output().matchAll(/controller restarted/g)].length;
      rounds.push(
        await underLoad(`http://127.0.0.1:${ports.listen}`, ctl, async () => {
          if (kind === "SIGKILL") process.kill(latestController(run), "SIGKILL");
          else process.kill(run.launcher, "SIGUSR2");
          await waitFor("the restart", async () => [...run.output().matchAll(/controller restarted/g)].length > restartsBefore, 120_000, 20);
        }),
      );
    }
    return rounds;
  } finally {
    process.kill(run.launcher, "SIGTERM");
    await run.exited().catch(() => run.npm.pid && killGroup(run.npm.pid));
  }
}

/** cli/start.js on its own (the arrangement before the launcher): until it prints that it runs. */
async function startAlone(ports: Ports, stateFile: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ["--enable-source-maps", join(repoRoot, "controller", "dist", "cli", "start.js"), ...portFlags(ports), "--tick-ms", "200"],
    {
      cwd: repoRoot,
      env: { ...process.env, ...startEnv(ports, stateFile) },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  let output = "";
  child.stdout?.on("data", (c: Buffer) => void (output += c.toString()));
  child.stderr?.on("data", (c: Buffer) => void (output += c.toString()));
  await waitFor("start.js to run", async () => output.includes("modelroll is running") || child.exitCode !== null, 60_000, 20);
  if (!output.includes("modelroll is running")) throw new Error(`start.js did not start:\n${output}`);
  return child;
}

async function aloneRounds(signal: "SIGKILL" | "SIGTERM"): Promise<Round[]> {
  const stateFile = join(dir, `alone-${signal}.db`);
  // Free ports can be taken by other work on the machine before start.js binds them: new ones, once more.
  let ports = await freePorts();
  let child = await startAlone(ports, stateFile).catch(async () => startAlone((ports = await freePorts()), stateFile));
  try {
    await rollout(`http://127.0.0.1:${ports.controller}`);
    const rounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      rounds.push(
        await underLoad(`http://127.0.0.1:${ports.listen}`, `http://127.0.0.1:${ports.controller}`, async () => {
          const old = child;
          const pid = old.pid ?? 0;
          const gone = new Promise((resolve) => old.once("exit", resolve));
          process.kill(pid, signal);
          await gone;
          // Its Envoy ends by the parent-death signal: wait until the group is empty, then start it all again.
          await waitFor("the old tree to end", async () => groupMembers(pid).length === 0, 10_000, 20);
          child = await startAlone(ports, stateFile);
        }),
      );
    }
    return rounds;
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
}

function line(what: string, rounds: Round[]): string {
  const sum = (f: (r: Round) => number) => rounds.reduce((s, r) => s + f(r), 0);
  const back = rounds.map((r) => r.backMs).sort((a, b) => a - b);
  return `| ${what} | ${rounds.length} | ${sum((r) => r.sent)} | ${sum((r) => r.failed)} | ${rounds.map((r) => r.failed).join(", ")} | ${back[Math.floor(back.length / 2)]} ms (max ${back.at(-1)} ms) |`;
}

try {
  console.log(`controller restarts under ${RATE} requests/s, ${ROUNDS} rounds each (${new Date().toISOString()})`);
  console.log("| what | rounds | requests sent | failed | failed per round | controller API back after (median) |\n|---|---|---|---|---|---|");
  console.log(line("launcher: controller SIGKILL, restarted by the launcher", await launcherRounds("SIGKILL")));
  console.log(line("launcher: SIGUSR2 (clean restart / upgrade)", await launcherRounds("SIGUSR2")));
  console.log(line("before: start.js SIGKILL (Envoy dies with it), started again at once", await aloneRounds("SIGKILL")));
  console.log(line("before: start.js SIGTERM, started again at once", await aloneRounds("SIGTERM")));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
