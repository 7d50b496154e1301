// Durable state and tokens on real Envoy. The controller runs as its own process (`npm run controller`) with a
// state file and both tokens; the filter long-polls with the read-only filter token. Mid-rollout the controller
// is killed with SIGKILL: Envoy keeps serving the last weights, and the restarted controller resumes the same
// phase, stage and history, and takes the rollout to the end.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { startEnvoy } from "../../controller/src/envoy/process.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { api, freePort, send, sendMany, startStack, waitFor, type Stack } from "./harness.ts";

const API_TOKEN = "e2e-api-token-0123456789";
const FILTER_TOKEN = "e2e-filter-token-0123456789";
const auth = { authorization: `Bearer ${API_TOKEN}` };

let stack: Stack;
let child: ChildProcess | null = null;
let output = "";
const dir = mkdtempSync(join(tmpdir(), "modelroll-restart-"));
const stateFile = join(dir, "state.db");

/** `npm run controller` as an operator runs it, on the port the stack's Envoy polls. */
async function startControllerProcess(): Promise<string> {
  output = "";
  child = spawn(
    process.execPath,
    [
      // tsx as a loader in this very process (its CLI would run the controller in a grandchild SIGKILL misses).
      "--import",
      "tsx",
      join(repoRoot, "controller", "src", "cli", "controller.ts"),
      "--listen",
      `127.0.0.1:${stack.controllerPort}`,
      "--state",
      stateFile,
      "--envoy-admin",
      stack.adminUrl,
      "--tick-ms",
      "250",
    ],
    { cwd: repoRoot, env: { ...process.env, MODELROLL_API_TOKEN: API_TOKEN, MODELROLL_FILTER_TOKEN: FILTER_TOKEN }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const started = child;
  started.stdout!.on("data", (c: Buffer) => {
    output += c.toString();
  });
  started.stderr!.on("data", (c: Buffer) => {
    output += c.toString();
  });
  await waitFor("the controller to listen", async () => output.includes("listening on") || started.exitCode !== null, 30_000, 50);
  if (!output.includes("listening on")) throw new Error(`controller did not start:\n${output}`);
  return `http://127.0.0.1:${stack.controllerPort}`;
}

async function kill(): Promise<void> {
  const running = child;
  if (!running || running.exitCode !== null) return;
  const exited = new Promise((resolve) => running.once("exit", resolve));
  running.kill("SIGKILL");
  await exited;
  child = null;
}

/** A filter counter from Envoy's admin (Envoy names it wasmcustom.<name>); an absent counter is an error, not 0. */
async function statValue(name: string): Promise<number> {
  const text = await (await fetch(`${stack.adminUrl}/stats?filter=^wasmcustom\\.${name.replace(/\./g, "\\.")}$`)).text();
  const value = /: (\d+)/.exec(text)?.[1];
  if (value === undefined) throw new Error(`Envoy at ${stack.adminUrl} has no counter ${name}: ${text}`);
  return Number(value);
}

beforeAll(async () => {
  // The stack's Envoy carries the filter token in its plugin config; its in-process controller is replaced
  // by the separate process below.
  stack = await startStack({ controller: { apiToken: API_TOKEN, filterToken: FILTER_TOKEN } });
  await stack.stopController();
});
afterAll(async () => {
  await kill();
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the controller as its own process, with tokens and a state file", () => {
  it("filters poll with the read-only token; writes need the API token", async () => {
    const ctl = await startControllerProcess();
    expect(output).toContain(`state ${stateFile} (new)`);
    const rollout = { name: "tokens", match: { pathPrefix: "/tokens" }, stickyKey: { header: "x-user-id" }, canaryPercent: 100 };
    expect((await api(ctl, "POST", "/v1/rollouts", rollout)).status).toBe(401);
    expect((await api(ctl, "POST", "/v1/rollouts", rollout, { authorization: `Bearer ${FILTER_TOKEN}` })).status).toBe(403);
    expect((await api(ctl, "POST", "/v1/rollouts", rollout, auth)).status).toBe(201);
    // The filter got the config through its token: traffic moves.
    await waitFor(
      "canary traffic through the filter",
      async () => (await send(`${stack.dataUrl}/tokens/p`, { "x-user-id": "a" })).variant === "canary",
      15_000,
      50,
    );

    // An Envoy whose filter has the wrong token gets nothing: it counts failed fetches and routes all to stable.
    const [listen, admin] = [await freePort(), await freePort()];
    const wrong = await startEnvoy({
      bootstrapYaml: renderBootstrap({
        listen: { host: "127.0.0.1", port: listen },
        admin: { host: "127.0.0.1", port: admin },
        stable: { host: "127.0.0.1", port: stack.stable.port },
        canary: { host: "127.0.0.1", port: stack.canary.port },
        controller: { host: "127.0.0.1", port: stack.controllerPort },
        filterToken: "not-the-filter-token-at-all",
      }),
      adminPort: admin,
      concurrency: 1,
    });
    try {
      await waitFor(
        "a refused config fetch",
        async () => {
          const text = await (await fetch(`http://127.0.0.1:${admin}/stats?filter=modelroll.config.fetch_failures`)).text();
          return Number(/: (\d+)/.exec(text)?.[1] ?? "0") > 0;
        },
        15_000,
        100,
      );
      const replies = await sendMany(`http://127.0.0.1:${listen}/tokens/p`, 50, (i) => ({ "x-user-id": `w${i}` }), 8);
      expect(replies.every((r) => r.status === 200 && r.modelVersion === "v1")).toBe(true);
      expect(wrong.log()).toContain("the controller refused the filter's token (status 401)");
    } finally {
      await wrong.stop();
    }
    expect((await api(ctl, "DELETE", "/v1/rollouts/tokens", undefined, auth)).status).toBe(204);
  });

  it("killed mid-rollout with SIGKILL: Envoy keeps the weights, the restarted controller resumes the same phase and finishes", async () => {
    if (!child) await startControllerProcess();
    const ctl = `http://127.0.0.1:${stack.controllerPort}`;
    const spec = {
      name: "resume",
      match: { pathPrefix: "/resume" },
      stickyKey: { header: "x-user-id" },
      owner: "team-fraud",
      rollbackCondition: "canary error rate above 1%",
      changeKind: "minor",
      // The 50% stage lasts long enough to kill the controller inside it.
      stages: [
        { canaryPercent: 20, minDurationSeconds: 1, minRequests: 50, deadlineSeconds: 300 },
        { canaryPercent: 50, minDurationSeconds: 4, minRequests: 50, deadlineSeconds: 300 },
        100,
      ],
      stageDefaults: { minDurationSeconds: 1, minRequests: 50, deadlineSeconds: 300 },
      promotion_gates: { error_rate: { maximum: 0.05 } },
    };
    expect((await api(ctl, "POST", "/v1/rollouts", spec, auth)).status).toBe(201);
    const url = `${stack.dataUrl}/resume/p`;
    let sent = 0;
    const traffic = async (n: number) => {
      const replies = await sendMany(url, n, (i) => ({ "x-user-id": `r${sent + i}` }), 8);
      sent += n;
      return replies;
    };
    await waitFor(
      "the 50% stage",
      async () => {
        await traffic(100);
        return (await api(ctl, "GET", "/v1/rollouts/resume", undefined, auth)).json.stage?.name === "50%";
      },
      60_000,
      0,
    );
    await traffic(100);
    const before = (await api(ctl, "GET", "/v1/rollouts/resume", undefined, auth)).json;
    const historyBefore = (await api(ctl, "GET", "/v1/rollouts/resume/history", undefined, auth)).json;
    const updatesBefore = await statValue("modelroll.config.updates");
    expect(before).toMatchObject({ phase: "Canary", stage: { name: "50%" }, canaryPercent: 50 });

    await kill();
    // Controller gone: Envoy serves the last weights (sticky users keep their variant).
    const whileDown = await sendMany(url, 400, (i) => ({ "x-user-id": `down${i}` }), 8);
    const canaryShare = whileDown.filter((r) => r.variant === "canary").length / whileDown.length;
    expect(whileDown.every((r) => r.status === 200)).toBe(true);
    expect(canaryShare).toBeGreaterThan(0.35);
    expect(canaryShare).toBeLessThan(0.65);

    await startControllerProcess();
    expect(output).toMatch(/resumed: 1 rollout, config version \d+/);
    const after = (await api(ctl, "GET", "/v1/rollouts/resume", undefined, auth)).json;
    const historyAfter = (await api(ctl, "GET", "/v1/rollouts/resume/history", undefined, auth)).json;
    expect(after.phase).toBe("Canary");
    expect(after.stage).toEqual(before.stage);
    expect(after.revision).toBe(before.revision);
    expect(after.configVersion).toBe(before.configVersion);
    // The decisions made before the kill are all there (ticks after the last read may have added holds).
    expect(historyAfter.decisions.slice(0, historyBefore.decisions.length)).toEqual(historyBefore.decisions);

    // Same epoch and version: the filters had nothing new to apply.
    await traffic(50);
    expect(await statValue("modelroll.config.updates")).toBe(updatesBefore);

    let phase = after.phase;
    await waitFor(
      "the rollout to finish",
      async () => {
        await traffic(100);
        phase = (await api(ctl, "GET", "/v1/rollouts/resume", undefined, auth)).json.phase;
        return phase === "Succeeded" || phase === "RolledBack" || phase === "Failed";
      },
      90_000,
      0,
    );
    const history = (await api(ctl, "GET", "/v1/rollouts/resume/history", undefined, auth)).json;
    const kinds = history.decisions.map((d: { kind: string }) => d.kind).filter((k: string) => k !== "held");
    console.log(
      `killed in stage 50% (canary share while down ${(canaryShare * 100).toFixed(1)}% of 400); resumed, then ${phase}; ${sent} requests; decisions: ${kinds.join(", ")}`,
    );
    expect(phase).toBe("Succeeded");
    expect(kinds.filter((k: string) => k === "started")).toHaveLength(1);
    expect(kinds).toEqual(["started", "advanced", "advanced", "succeeded"]);
    const r = await send(url, { "x-user-id": "anyone" });
    expect(r.variant).toBe("canary");
  });
});
