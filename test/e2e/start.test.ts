// `npm start` as a user runs it: a child process, with the demo models or with given model URLs.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { startModelServer, type ModelServer } from "../../controller/src/demo/model-server.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { api, freePort, send, waitFor } from "./harness.ts";

// npm start's entry, the launcher (it runs cli/start.ts as its controller process with the same loader). tsx as a
// loader in the child itself: its CLI would run the launcher in a grandchild that a SIGKILL misses.
const START = join(repoRoot, "controller", "src", "cli", "launcher.ts");
let child: ChildProcess | null = null;
const servers: ModelServer[] = [];

// Each run gets its own state file: the default (.modelroll/state.db in the checkout) would carry rollouts over.
const stateDir = mkdtempSync(join(tmpdir(), "modelroll-start-"));
let runs = 0;
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

afterEach(async () => {
  if (child && child.exitCode === null) {
    child.kill("SIGKILL");
  }
  child = null;
  for (const s of servers.splice(0)) await s.close();
});

async function runStart(args: string[], env: Record<string, string> = {}): Promise<{ output: () => string; exited: Promise<number | null> }> {
  let output = "";
  child = spawn(process.execPath, ["--import", "tsx", START, ...args], {
    cwd: repoRoot,
    env: { ...process.env, MODELROLL_STATE: join(stateDir, `state-${++runs}.db`), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr!.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)));
  await waitFor("npm start to print its URLs", async () => output.includes("modelroll is running") || child!.exitCode !== null, 30_000, 50);
  if (!output.includes("modelroll is running")) throw new Error(`start failed:\n${output}`);
  return { output: () => output, exited };
}

async function exercise(listen: string, controller: string, expectCanaryVersion: string): Promise<void> {
  const created = await api(`http://${controller}`, "POST", "/v1/rollouts", {
    name: "fraud-model",
    match: { pathPrefix: "/v1/predict" },
    stickyKey: { header: "x-user-id" },
    canaryPercent: 100,
  });
  expect(created.status).toBe(201);
  await waitFor("canary traffic", async () => (await send(`http://${listen}/v1/predict`, { "x-user-id": "alice" })).variant === "canary", 10_000, 50);
  const reply = await send(`http://${listen}/v1/predict`, { "x-user-id": "alice" });
  expect(reply.modelVersion).toBe(expectCanaryVersion);
  const parsed = JSON.parse(reply.body);
  expect(typeof parsed.prediction).toBe("string");
  expect(parsed.confidence).toBeGreaterThanOrEqual(0);
  expect(parsed.confidence).toBeLessThanOrEqual(1);
}

describe("npm start", () => {
  it("starts the demo models, the controller and Envoy, prints the URLs, and stops on SIGINT", async () => {
    const [listen, controller, admin, demoStable, demoCanary] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const run = await runStart([], {
      MODELROLL_LISTEN: `127.0.0.1:${listen}`,
      MODELROLL_CONTROLLER: `127.0.0.1:${controller}`,
      MODELROLL_ADMIN: `127.0.0.1:${admin}`,
      MODELROLL_DEMO_STABLE: `127.0.0.1:${demoStable}`,
      MODELROLL_DEMO_CANARY: `127.0.0.1:${demoCanary}`,
    });
    expect(run.output()).toContain(`data plane (Envoy):  http://127.0.0.1:${listen}`);
    expect(run.output()).toContain(`controller (API):    http://127.0.0.1:${controller}`);
    expect(run.output()).toContain(`dashboard:           http://127.0.0.1:${controller}/`);
    const dashboard = await fetch(`http://127.0.0.1:${controller}/`);
    expect(dashboard.status).toBe(200);
    expect(await dashboard.text()).toContain('<div id="app">');
    expect(run.output()).toContain(`Envoy admin:         http://127.0.0.1:${admin}`);
    expect(run.output()).toContain("(demo model v1)");
    await exercise(`127.0.0.1:${listen}`, `127.0.0.1:${controller}`, "v2");
    child!.kill("SIGINT");
    expect(await run.exited).toBe(0);
    await expect(fetch(`http://127.0.0.1:${admin}/ready`)).rejects.toThrow();
  });

  it("uses model servers given with --stable/--canary and the --listen/--controller/--admin flags", async () => {
    const stable = await startModelServer({ version: "given-v1" });
    const canary = await startModelServer({ version: "given-v7" });
    const shadow = await startModelServer({ version: "given-v8" });
    servers.push(stable, canary, shadow);
    const [listen, controller, admin] = await Promise.all([freePort(), freePort(), freePort()]);
    const run = await runStart([
      "--stable",
      stable.url,
      "--canary",
      canary.url,
      "--shadow",
      shadow.url,
      "--listen",
      `127.0.0.1:${listen}`,
      "--controller",
      `127.0.0.1:${controller}`,
      "--admin",
      `127.0.0.1:${admin}`,
    ]);
    expect(run.output()).toContain(`canary model:        ${canary.url}`);
    expect(run.output()).toContain(`shadow cluster:      ${shadow.url}`);
    await exercise(`127.0.0.1:${listen}`, `127.0.0.1:${controller}`, "given-v7");
    const other = await send(`http://127.0.0.1:${listen}/v1/predict`, { "x-user-id": "bob" });
    expect(other.modelVersion).toBe("given-v7");
    // A rollout that mirrors everything reaches the --shadow server.
    const mirrored = await api(`http://127.0.0.1:${controller}`, "POST", "/v1/rollouts", {
      name: "mirrored",
      match: { pathPrefix: "/v2" },
      stickyKey: { header: "x-user-id" },
      shadow: { percent: 100 },
    });
    expect(mirrored.status).toBe(201);
    await waitFor(
      "a mirrored request at the --shadow server",
      async () => {
        await send(`http://127.0.0.1:${listen}/v2/predict`, { "x-user-id": "carol" });
        return shadow.mirrored() > 0;
      },
      10_000,
      100,
    );
    child!.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  });

  it("--models: one Envoy in front of every model of the file, each prefix on its own servers and clusters", async () => {
    const [fraudStable, fraudCanary, churnStable, churnCanary] = await Promise.all(
      ["fraud-v1", "fraud-v2", "churn-v1", "churn-v2"].map((version) => startModelServer({ version })),
    );
    servers.push(fraudStable, fraudCanary, churnStable, churnCanary);
    const file = join(stateDir, "models.yaml");
    writeFileSync(
      file,
      `models:
  - name: fraud-model
    pathPrefix: /v1/models/fraud-model
    stable: ${fraudStable.url}
    canary: ${fraudCanary.url}
  - name: churn-model
    pathPrefix: /v1/models/churn-model
    stable: ${churnStable.url}
    canary: ${churnCanary.url}
`,
    );
    const [listen, controller, admin] = await Promise.all([freePort(), freePort(), freePort()]);
    const run = await runStart([
      "--models",
      file,
      "--listen",
      `127.0.0.1:${listen}`,
      "--controller",
      `127.0.0.1:${controller}`,
      "--admin",
      `127.0.0.1:${admin}`,
    ]);
    expect(run.output()).toContain(`model fraud-model:  /v1/models/fraud-model -> stable ${fraudStable.url}, canary ${fraudCanary.url}, shadow the canary`);
    expect(run.output()).toContain("its rollouts name  clusters: { stable: churn-model-stable, canary: churn-model-canary, shadow: churn-model-shadow }");
    const ctl = `http://127.0.0.1:${controller}`;
    // churn-model's rollout sends everyone to its canary; fraud-model has none yet.
    const created = await api(ctl, "POST", "/v1/rollouts", {
      name: "churn-model",
      match: { pathPrefix: "/v1/models/churn-model" },
      clusters: { stable: "churn-model-stable", canary: "churn-model-canary" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 100,
    });
    expect(created.status).toBe(201);
    await waitFor(
      "churn-model's canary",
      async () => (await send(`http://127.0.0.1:${listen}/v1/models/churn-model:predict`, { "x-user-id": "alice" })).modelVersion === "churn-v2",
      10_000,
      50,
    );
    expect((await send(`http://127.0.0.1:${listen}/v1/models/fraud-model:predict`, { "x-user-id": "alice" })).modelVersion).toBe("fraud-v1");
    child!.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  });

  it("refuses a bad models file with the file, the field and the reason, and exit code 2", async () => {
    const file = join(stateDir, "bad-models.yaml");
    writeFileSync(file, "models:\n  - name: a\n    pathPrefix: /a\n    stable: http://127.0.0.1:1\n");
    const p = spawn(process.execPath, ["--import", "tsx", START, "--models", file], { cwd: repoRoot });
    let err = "";
    p.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => p.on("exit", resolve));
    expect(code).toBe(2);
    expect(err).toContain(`modelroll start: ${file}: /models/0: 'canary' is required`);
  });

  it("refuses a bad argument with a clear message and exit code 2", async () => {
    const p = spawn(process.execPath, ["--import", "tsx", START, "--stable", "http://127.0.0.1:1"], { cwd: repoRoot });
    let err = "";
    p.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => p.on("exit", resolve));
    expect(code).toBe(2);
    expect(err).toContain("give both --stable and --canary, or neither");
  });
});
