// `npm start -- --demo-traffic RATE` as a user runs it: the demo's users reach both variants of a rollout on
// the demo path (as Envoy counts them), what each variant answered is printed, and stopping the stack stops them.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { api, freePort, waitFor } from "./harness.ts";

// npm start's entry, the launcher, which runs cli/start.ts (and with it the demo traffic) as its controller process.
const START = join(repoRoot, "controller", "src", "cli", "launcher.ts");
const stateDir = mkdtempSync(join(tmpdir(), "modelroll-demo-traffic-"));
let child: ChildProcess | null = null;
afterAll(() => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  rmSync(stateDir, { recursive: true, force: true });
});

describe("npm start -- --demo-traffic", () => {
  it("sends the demo's traffic until stopped; both variants of a 50% rollout get it", async () => {
    const [listen, controller, admin, stable, canary] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    let output = "";
    child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        START,
        "--demo-traffic",
        "40",
        "--listen",
        `127.0.0.1:${listen}`,
        "--controller",
        `127.0.0.1:${controller}`,
        "--admin",
        `127.0.0.1:${admin}`,
      ],
      {
        cwd: repoRoot,
        env: {
          ...process.env,
          MODELROLL_STATE: join(stateDir, "state.db"),
          MODELROLL_DEMO_STABLE: `127.0.0.1:${stable}`,
          MODELROLL_DEMO_CANARY: `127.0.0.1:${canary}`,
          MODELROLL_TICK_MS: "250",
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)));
    await waitFor("the demo traffic line", async () => output.includes("demo traffic: ") || child!.exitCode !== null, 60_000, 50);
    expect(output).toContain(`demo traffic: 40 requests/s to http://127.0.0.1:${listen}/v1/predict from 1000 users (x-user-id)`);

    const ctl = `http://127.0.0.1:${controller}`;
    const created = await api(ctl, "POST", "/v1/rollouts", {
      name: "fraud-model",
      match: { pathPrefix: "/v1/predict" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 50,
    });
    expect(created.status).toBe(201);
    await waitFor(
      "both variants to get the demo's requests",
      async () => {
        const stats = (await api(ctl, "GET", "/v1/rollouts/fraud-model/stats")).json;
        return (stats.variants?.stable?.requests ?? 0) > 20 && (stats.variants?.canary?.requests ?? 0) > 20;
      },
      20_000,
      200,
    );
    // Which model is which, read from this Envoy.
    await waitFor(
      "the upstreams named",
      async () => (await api(ctl, "GET", "/v1/rollouts/fraud-model")).json.variants.text === `stable 127.0.0.1:${stable} · canary 127.0.0.1:${canary}`,
      20_000,
      200,
    );

    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output).not.toMatch(/while stopping/);
  });
});
