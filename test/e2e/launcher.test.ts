// `npm start`'s launcher under load: Envoy and the demo models are the launcher's, the controller a sibling of
// Envoy. A controller killed with SIGKILL at a canary stage, a clean restart (SIGUSR2) and an upgrade (SIGUSR2 with
// a new build at the entry) fail no request of an open-loop load (100 requests/s through Envoy); the crashed
// controller comes back by itself, re-attaches to the same Envoy and finishes the rollout; a controller that keeps
// crashing is given up on after the bound while Envoy keeps serving. Counts and states, not timings; the times
// printed are for the report.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { processAlive } from "../../controller/src/proc.ts";
import { startTraffic, type Traffic } from "../docs/traffic.ts";
import { api, decisionsOf, sendMany, waitFor } from "./harness.ts";
import { freePorts, groupMembers, killGroup, latestController, npmStart, type Started } from "./tree.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-launcher-"));
let files = 0;
const runs: Started[] = [];
const loads: Traffic[] = [];
afterEach(async () => {
  for (const load of loads.splice(0)) await load.stop();
  for (const run of runs.splice(0)) killGroup(run.npm.pid!);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const START_JS = pathToFileURL(join(repoRoot, "controller", "dist", "cli", "start.js")).href;

/**
 * A controller entry as a build at a path the launcher reads at each start (MODELROLL_CONTROLLER_ENTRY): build N
 * writes its pid to build-N.pid and runs the compiled controller; "broken" is a build that fails at once.
 */
function writeEntry(file: string, build: number | "broken"): void {
  writeFileSync(
    file,
    build === "broken"
      ? `throw new Error("a broken build");\n`
      : `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(join(dir, `build-${build}.pid`))}, String(process.pid));\nawait import(${JSON.stringify(START_JS)});\n`,
  );
}

async function start(env: Record<string, string> = {}, args: string[] = []): Promise<Started & { ctl: string; data: string }> {
  const ports = await freePorts();
  const run = await npmStart(ports, join(dir, `state-${++files}.db`), env, args);
  runs.push(run);
  return { ...run, ctl: `http://127.0.0.1:${ports.controller}`, data: `http://127.0.0.1:${ports.listen}` };
}

function load(url: string): Traffic {
  const traffic = startTraffic({ url, requestsPerSecond: 100, stickyHeader: "x-user-id", users: 500 });
  loads.push(traffic);
  return traffic;
}

/** Stops the load; what it got: sent, answered 200, and every other answer (0: no answer at all). */
async function finish(traffic: Traffic): Promise<{ sent: number; ok: number; failed: Record<string, number> }> {
  await traffic.stop();
  loads.splice(loads.indexOf(traffic), 1);
  const failed = Object.fromEntries([...traffic.counts].filter(([status]) => status !== 200).map(([s, n]) => [String(s), n]));
  return { sent: traffic.sent, ok: traffic.counts.get(200) ?? 0, failed };
}

/** A filter counter from Envoy's admin (Envoy names it wasmcustom.<name>); an absent counter is an error. */
async function stat(adminUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/stats?filter=^wasmcustom\\.${name.replace(/\./g, "\\.")}$`)).text();
  const value = /: (\d+)/.exec(text)?.[1];
  if (value === undefined) throw new Error(`Envoy at ${adminUrl} has no counter ${name}: ${text}`);
  return Number(value);
}

/** Until the API answers again; the milliseconds it took from `since`. */
async function backAfter(ctl: string, since: number): Promise<number> {
  await waitFor("the controller's API to answer again", async () => (await fetch(`${ctl}/v1/rollouts`).catch(() => null))?.status === 200, 60_000, 20);
  return Math.round(performance.now() - since);
}

/** Waits until the tree logged `count` controller restarts. */
async function restarts(run: Started, count: number): Promise<void> {
  await waitFor(`${count} controller restart(s)`, async () => [...run.output().matchAll(/controller restarted \(pid \d+/g)].length >= count, 60_000, 20);
}

describe("npm start's launcher", () => {
  it("SIGKILL of the controller at the 50% stage under 100 requests/s: no request fails, it comes back by itself, re-attaches to the same Envoy, and the rollout succeeds", async () => {
    const run = await start();
    const spec = {
      name: "fraud-model",
      match: { pathPrefix: "/v1/predict" },
      stickyKey: { header: "x-user-id" },
      owner: "team-fraud",
      rollbackCondition: "canary error rate above 1%",
      changeKind: "minor",
      // The 50% stage lasts long enough to kill the controller inside it.
      stages: [
        { canaryPercent: 20, minDurationSeconds: 1, minRequests: 50, deadlineSeconds: 300 },
        { canaryPercent: 50, minDurationSeconds: 6, minRequests: 100, deadlineSeconds: 300 },
        100,
      ],
      stageDefaults: { minDurationSeconds: 1, minRequests: 50, deadlineSeconds: 300 },
      promotion_gates: { error_rate: { maximum: 0.05 } },
    };
    const created = await api(run.ctl, "POST", "/v1/rollouts", spec);
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const traffic = load(`${run.data}/v1/predict`);
    const view = async () => (await api(run.ctl, "GET", "/v1/rollouts/fraud-model")).json;
    await waitFor("the 50% stage", async () => (await view()).stage?.name === "50%", 90_000, 50);
    const before = await view();
    const decisionsBefore = await decisionsOf(run.ctl, "fraud-model");
    expect(before).toMatchObject({ phase: "Canary", stage: { name: "50%" }, canaryPercent: 50 });

    const adminUrl = /Envoy admin:\s+(\S+)/.exec(run.output())?.[1] ?? "";
    const fetchFailuresBefore = await stat(adminUrl, "modelroll.config.fetch_failures");
    const killedAt = performance.now();
    process.kill(run.controller, "SIGKILL");
    const sentAtKill = traffic.sent;
    const backMs = await backAfter(run.ctl, killedAt);
    const sentWhileDown = traffic.sent - sentAtKill;
    await restarts(run, 1);
    const after = await view();
    expect(after.stage).toEqual(before.stage);
    expect(after.revision).toBe(before.revision);

    let phase = after.phase;
    await waitFor(
      "the rollout to finish",
      async () => {
        phase = (await view()).phase;
        return ["Succeeded", "RolledBack", "Failed"].includes(phase);
      },
      120_000,
      100,
    );
    const got = await finish(traffic);
    const decisions = await decisionsOf(run.ctl, "fraud-model");
    const kinds = decisions.map((d) => d.kind).filter((k) => k !== "held");
    // The decisions after the restart read the same Envoy's counters: measured, not Error with n = 0.
    const afterRestart = decisions.slice(decisionsBefore.length).filter((d) => d.kind !== "held");
    console.log(
      `controller SIGKILL at 50%: ${got.sent} requests sent, ${got.ok} answered 200, failed ${JSON.stringify(got.failed)}; ` +
        `controller API back ${backMs} ms after the kill (${sentWhileDown} requests sent meanwhile); then ${phase}; decisions: ${kinds.join(", ")}`,
    );
    expect(got.failed).toEqual({});
    expect(got.ok).toBe(got.sent);
    expect(got.sent).toBeGreaterThan(sentWhileDown);
    expect(sentWhileDown).toBeGreaterThan(0);
    expect(phase).toBe("Succeeded");
    expect(kinds).toEqual(["started", "advanced", "advanced", "succeeded"]);
    expect(afterRestart.length).toBeGreaterThan(0);
    for (const d of afterRestart) {
      for (const m of d.measurements) {
        expect(m.status, `${d.kind}: ${m.gate}`).not.toBe("Error");
        expect(m.sampleSizes.candidate, `${d.kind}: ${m.gate}`).toBeGreaterThan(0);
      }
    }
    // The filter polled the new controller: its promotion to 100% reached Envoy.
    await waitFor(
      "every request on the canary",
      async () => (await sendMany(`${run.data}/v1/predict`, 20, (i) => ({ "x-user-id": `after-${i}` }), 4)).every((r) => r.variant === "canary"),
      15_000,
      50,
    );
    // The filter saw the controller gone (its long-poll failed) and kept serving on the config it had.
    expect(await stat(adminUrl, "modelroll.config.fetch_failures")).toBeGreaterThan(fetchFailuresBefore);
    // One Envoy all along; the launcher said what happened; the new controller is a sibling of Envoy.
    const out = run.output();
    expect(processAlive(run.envoy)).toBe(true);
    expect(out).toContain(`the controller (pid ${run.controller}) crashed (signal SIGKILL)`);
    expect(out).toMatch(new RegExp(`controller restarted \\(pid \\d+, start 2\\): .*resumed: 1 rollout\\).*Envoy pid ${run.envoy} kept serving`));
    expect(groupMembers(run.npm.pid!).sort()).toEqual([run.npm.pid!, run.launcher, latestController(run), run.envoy].sort());
  });

  it("a clean restart and an upgrade (SIGUSR2, the second with a new build at the entry) fail no request under 100 requests/s and keep the rollout", async () => {
    const entry = join(dir, "entry.mjs");
    writeEntry(entry, 1);
    // --fresh empties the state file at the first start only: the restarts resume the rollout made below.
    const run = await start({ MODELROLL_CONTROLLER_ENTRY: entry }, ["--fresh"]);
    expect(Number(readFileSync(join(dir, "build-1.pid"), "utf8"))).toBe(run.controller);
    const created = await api(run.ctl, "POST", "/v1/rollouts", {
      name: "fraud-model",
      match: { pathPrefix: "/v1/predict" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 50,
    });
    expect(created.status).toBe(201);
    const adminUrl = /Envoy admin:\s+(\S+)/.exec(run.output())?.[1] ?? "";
    await waitFor(
      "the filter to apply the rollout",
      async () => (await sendMany(`${run.data}/v1/predict`, 20, (i) => ({ "x-user-id": `p${i}` }), 4)).some((r) => r.variant === "canary"),
      15_000,
      50,
    );
    const updatesBefore = await stat(adminUrl, "modelroll.config.updates");
    expect(updatesBefore).toBeGreaterThan(0);

    const measured: string[] = [];
    for (const [what, count] of [
      ["clean restart", 1],
      ["upgrade", 2],
    ] as const) {
      if (what === "upgrade") writeEntry(entry, 2);
      const traffic = load(`${run.data}/v1/predict`);
      await waitFor("some load before the restart", async () => traffic.sent >= 200, 30_000, 20);
      const asked = performance.now();
      process.kill(run.launcher, "SIGUSR2");
      await restarts(run, count);
      const backMs = await backAfter(run.ctl, asked);
      const sentAtBack = traffic.sent;
      await waitFor("some load after the restart", async () => traffic.sent >= sentAtBack + 200, 30_000, 20);
      const got = await finish(traffic);
      measured.push(`${what}: ${got.sent} sent, ${got.ok} answered 200, failed ${JSON.stringify(got.failed)}, API back after ${backMs} ms`);
      expect(got.failed, what).toEqual({});
      expect(got.ok, what).toBe(got.sent);
    }
    console.log(`SIGUSR2 under 100 requests/s: ${measured.join("; ")}`);
    // The upgrade runs the new build; the old controller processes are gone, Envoy is the same.
    const upgraded = Number(readFileSync(join(dir, "build-2.pid"), "utf8"));
    expect(upgraded).toBe(latestController(run));
    expect(processAlive(run.controller)).toBe(false);
    expect(processAlive(run.envoy)).toBe(true);
    expect((await api(run.ctl, "GET", "/v1/rollouts/fraud-model")).json.canaryPercent).toBe(50);
    // Same config epoch and version: the filter had nothing new to apply across both restarts.
    expect(await stat(adminUrl, "modelroll.config.updates")).toBe(updatesBefore);
    expect(run.output()).toContain("restarting the controller");
    process.kill(run.launcher, "SIGTERM");
    expect((await run.exited()).code).toBe(0);
    await waitFor("the tree to end", async () => groupMembers(run.npm.pid!).length === 0, 15_000, 50);
  });

  it("a controller that keeps failing is given up on after MODELROLL_CONTROLLER_RESTARTS; Envoy keeps serving; SIGUSR2 starts it again", async () => {
    const entry = join(dir, "entry-bound.mjs");
    writeEntry(entry, 1);
    const run = await start({ MODELROLL_CONTROLLER_ENTRY: entry, MODELROLL_CONTROLLER_RESTARTS: "2" });
    writeEntry(entry, "broken");
    process.kill(run.controller, "SIGKILL");
    await waitFor("the launcher to give up", async () => run.output().includes("so it is not started again"), 60_000, 50);
    const out = run.output();
    expect(out).toContain("failed to start (code 1); the data plane keeps serving on its last config; restarting it in 500 ms (crash 2 in a row)");
    expect(out).toContain("3 times in a row, so it is not started again");
    // No controller process, and the data plane answers.
    expect(groupMembers(run.npm.pid!).sort()).toEqual([run.npm.pid!, run.launcher, run.envoy].sort());
    const replies = await sendMany(`${run.data}/v1/predict`, 50, (i) => ({ "x-user-id": `g${i}` }), 8);
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));

    writeEntry(entry, 1);
    process.kill(run.launcher, "SIGUSR2");
    await restarts(run, 1);
    await backAfter(run.ctl, performance.now());
    process.kill(run.launcher, "SIGINT");
    expect((await run.exited()).code).toBe(0);
    await waitFor("the tree to end", async () => groupMembers(run.npm.pid!).length === 0, 15_000, 50);
  });

  it("with MODELROLL_CONTROLLER_RESTARTS=0 a crash is not restarted; SIGTERM to the launcher then still ends everything", async () => {
    const run = await start({ MODELROLL_CONTROLLER_RESTARTS: "0" });
    process.kill(run.controller, "SIGKILL");
    await waitFor("the launcher to give up", async () => run.output().includes("so it is not started again"), 30_000, 50);
    expect(run.output()).toContain(`the controller (pid ${run.controller}) crashed (signal SIGKILL): once, so it is not started again`);
    expect(groupMembers(run.npm.pid!).sort()).toEqual([run.npm.pid!, run.launcher, run.envoy].sort());
    process.kill(run.launcher, "SIGTERM");
    expect((await run.exited()).code).toBe(0);
    await waitFor("the tree to end", async () => groupMembers(run.npm.pid!).length === 0, 15_000, 50);
    expect(processAlive(run.envoy)).toBe(false);
  });
});
