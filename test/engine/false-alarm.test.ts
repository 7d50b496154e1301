// The false-alarm check: many complete rollouts of a new model identical to stable, the engine looking
// every tick; how often does it wrongly roll back? The bound it must stay under is the spec's
// falseAlarmRate (README, "Gate statistics").
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BOUNDARY_PROMOTE_EVERY, FALSE_ALARM_SETUP, ISSUE_SETUP, mergeTallies, type FalseAlarmSetup, type FalseAlarmTally } from "./false-alarm-runs.ts";
import { SEED_GATES, specFrom } from "./drive.ts";

const RUNS = Number(process.env.FALSE_ALARM_RUNS ?? 1000);
// CPU-bound child processes on a shared 2-core machine: generous, since nothing here is a timing assertion.
const TIMEOUT = 300_000;
const BOUNDARY_RUNS = Number(process.env.FALSE_ALARM_BOUNDARY_RUNS ?? 300);
const SCRIPT = fileURLToPath(new URL("./false-alarm-runs.ts", import.meta.url));

/** Runs [first, first+count) in a child process (tsx), so the runs use every core. */
function runInChild(setup: FalseAlarmSetup, first: number, count: number): Promise<FalseAlarmTally> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", SCRIPT, JSON.stringify({ setup, first, count })], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`false-alarm runs ${first}..${first + count - 1}: exit ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out) as FalseAlarmTally);
      } catch {
        reject(new Error(`false-alarm runs ${first}..${first + count - 1}: unreadable output: ${out.slice(0, 500)}`));
      }
    });
  });
}

async function runAll(setup: FalseAlarmSetup, runs: number): Promise<FalseAlarmTally> {
  const workers = Math.max(1, Math.min(2, availableParallelism()));
  const share = Math.ceil(runs / workers);
  const tallies = await Promise.all(Array.from({ length: workers }, (_, w) => runInChild(setup, w * share, Math.max(0, Math.min(share, runs - w * share)))));
  return mergeTallies(tallies);
}

describe("false alarms", () => {
  const bound = specFrom({ promotion_gates: SEED_GATES }).falseAlarmRate;

  it(`identical stable and canary, limits at zero difference: fewer than falseAlarmRate of ${BOUNDARY_RUNS} rollouts roll back`, {
    timeout: TIMEOUT,
  }, async () => {
    const t = await runAll("boundary", BOUNDARY_RUNS);
    const rate = t.rolledBack / t.runs;
    console.log(
      `boundary false alarms: ${t.rolledBack} of ${t.runs} rollouts wrongly rolled back (rate ${rate}; documented bound ${bound}); ` +
        `${(t.looks / t.runs).toFixed(1)} looks per rollout, promoted by hand every ${BOUNDARY_PROMOTE_EVERY} ticks through 4 stages` +
        (t.rolledBack > 0 ? `; gates: ${JSON.stringify(t.rollbackGates)}` : ""),
    );
    expect(t.runs).toBe(BOUNDARY_RUNS);
    expect(rate).toBeLessThanOrEqual(bound);
    expect(t.looks / t.runs).toBeGreaterThanOrEqual(3 * BOUNDARY_PROMOTE_EVERY);
  });

  it(`identical stable and canary, the seed's gates: the engine rolls back fewer than falseAlarmRate of ${RUNS} rollouts`, { timeout: TIMEOUT }, async () => {
    const t = await runAll("seed", RUNS);
    const rate = t.rolledBack / t.runs;
    // One-sided 95% upper bound on the true rate from the observed count (Clopper-Pearson; 3/n when none).
    const upper = t.rolledBack === 0 ? 1 - 0.05 ** (1 / t.runs) : null;
    console.log(
      [
        `false alarms: ${t.rolledBack} of ${t.runs} rollouts wrongly rolled back (rate ${rate}${upper !== null ? `, 95% upper bound ${(upper * 100).toFixed(2)}%` : ""}; documented bound ${bound})`,
        `  ${(t.looks / t.runs).toFixed(1)} looks (ticks) per rollout, ${t.looks} in all; stages shadow(50% mirrored) -> 10% -> 50% -> 100%,`,
        `  ${FALSE_ALARM_SETUP.requestsPerTick} requests per ${FALSE_ALARM_SETUP.tickSeconds} s tick, tenant_tier free/pro/enterprise, the seed's gates, alpha per test ${t.alphaPerTest.toExponential(2)}`,
        `  outcome: ${t.succeeded} succeeded, ${t.failed} failed at a deadline, ${t.unfinished} unfinished after ${FALSE_ALARM_SETUP.maxTicks} ticks`,
        `  by traffic / latency: ${conditions(t)}`,
        ...(t.rolledBack > 0 ? [`  gates behind the rollbacks: ${JSON.stringify(t.rollbackGates)}`, ...t.reasons.slice(0, 5).map((r) => `  - ${r}`)] : []),
      ].join("\n"),
    );
    expect(t.runs).toBe(RUNS);
    expect(rate).toBeLessThanOrEqual(bound);
    // Not vacuous: the runs really went through every stage and looked many times.
    expect(t.succeeded).toBeGreaterThanOrEqual(0.95 * t.runs);
    expect(t.looks / t.runs).toBeGreaterThanOrEqual(20);
  });

  it(`identical stable and canary, issue 10's small service at the default settings: fewer than falseAlarmRate of ${RUNS} rollouts roll back`, {
    timeout: TIMEOUT,
  }, async () => {
    const t = await runAll("issue", RUNS);
    const rate = t.rolledBack / t.runs;
    const upper = t.rolledBack === 0 ? 1 - 0.05 ** (1 / t.runs) : null;
    console.log(
      [
        `false alarms, issue setup: ${t.rolledBack} of ${t.runs} rollouts wrongly rolled back (rate ${rate}${upper !== null ? `, 95% upper bound ${(upper * 100).toFixed(2)}%` : ""}; documented bound ${bound})`,
        `  ${ISSUE_SETUP.requestsPerSecond} requests/s, ${ISSUE_SETUP.tickSeconds} s ticks, stages ${ISSUE_SETUP.stages.join(" -> ")} at the default settings, tenant_tier 60/30/10%`,
        `  ${(t.looks / t.runs).toFixed(1)} looks per rollout, ${(t.seconds / t.runs).toFixed(0)} s on average; smallest alpha per test ${t.alphaPerTest.toExponential(2)}`,
        `  outcome: ${t.succeeded} succeeded, ${t.failed} failed at a deadline, ${t.unfinished} unfinished`,
        `  by traffic / latency: ${conditions(t)}`,
        ...(t.rolledBack + t.failed > 0 ? t.reasons.slice(0, 5).map((r) => `  - ${r.slice(0, 400)}`) : []),
      ].join("\n"),
    );
    expect(t.runs).toBe(RUNS);
    expect(rate).toBeLessThanOrEqual(bound);
    // Not vacuous: the runs went through every condition, every stage, and looked many times.
    expect(Object.keys(t.byCondition)).toHaveLength(6);
    expect(t.succeeded).toBeGreaterThanOrEqual(0.95 * t.runs);
    expect(t.looks / t.runs).toBeGreaterThanOrEqual(30);
  });
});

function conditions(t: FalseAlarmTally): string {
  return Object.entries(t.byCondition)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k} ${v.rolledBack}/${v.runs}`)
    .join(", ");
}
