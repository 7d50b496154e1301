// `npm start` and `npm run controller` as the real process trees an operator (or a supervisor, or `docker stop`)
// deals with: npm -> the launcher (demo models in it) -> { the controller process, Envoy }. A stopping signal to
// any of them stops all of it and frees every port; Envoy and the controller die with the launcher even on SIGKILL;
// a busy port or a state file in use is refused before anything claims to be running, and nothing is left behind.
// (A controller that crashes is restarted, with Envoy serving meanwhile: test/e2e/launcher.test.ts.)
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { tryBind } from "../../controller/src/cli/ports.ts";
import { renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { envoyBinary } from "../../controller/src/paths.ts";
import { processAlive } from "../../controller/src/proc.ts";
import { api, freePort, waitFor } from "./harness.ts";
import { freePorts, groupMembers, killGroup, npm as npmTree, npmStart as startTree, portFlags, startEnv, type Ports, type Tree } from "./tree.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-process-"));
let files = 0;
const trees: Tree[] = [];
const holders: Server[] = [];
const orphans: number[] = [];

afterEach(async () => {
  // Whatever a failed test left: each tree is its own process group, ended as a whole.
  for (const tree of trees.splice(0)) killGroup(tree.npm.pid!);
  for (const server of holders.splice(0)) await new Promise((resolve) => server.close(resolve));
  for (const pid of orphans.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function npm(args: string[], env: Record<string, string>): Tree {
  const tree = npmTree(args, env);
  trees.push(tree);
  return tree;
}

/** The real `npm start`, until it prints that it runs; the pids of its launcher, controller and Envoy. */
async function npmStart(ports: Ports, stateFile = join(dir, `state-${++files}.db`)) {
  const run = await startTree(ports, stateFile);
  trees.push(run);
  return run;
}

/** Bounded: every process of the tree gone and every port bindable again. */
async function expectAllGone(tree: Tree, ports: Ports, pids: number[] = []): Promise<void> {
  await waitFor("every process of the tree to end", async () => groupMembers(tree.npm.pid!).length === 0, 15_000, 50);
  for (const pid of pids) expect(processAlive(pid), `pid ${pid}`).toBe(false);
  for (const port of Object.values(ports)) {
    await waitFor(`port ${port} to be free`, async () => (await tryBind("127.0.0.1", port)) === null, 5_000, 50);
  }
}

describe("npm start as a process tree", () => {
  it.each([
    ["the npm process", "SIGTERM"],
    ["the npm process", "SIGINT"],
    ["the launcher", "SIGTERM"],
    ["the launcher", "SIGINT"],
    ["the launcher", "SIGHUP"],
    ["the controller process", "SIGTERM"],
    ["Envoy", "SIGTERM"],
  ] as const)("%s gets %s: everything stops, every port is free, and what was saved is printed", async (target, signal) => {
    const ports = await freePorts();
    const run = await npmStart(ports);
    expect(groupMembers(run.npm.pid!)).toEqual(expect.arrayContaining([run.npm.pid, run.launcher, run.controller, run.envoy]));
    expect(
      (
        await api(`http://127.0.0.1:${ports.controller}`, "POST", "/v1/rollouts", {
          name: "fraud-model",
          match: { pathPrefix: "/v1/predict" },
          stickyKey: { header: "x-user-id" },
          canaryPercent: 5,
        })
      ).status,
    ).toBe(201);

    const pid = { "the npm process": run.npm.pid!, "the launcher": run.launcher, "the controller process": run.controller, Envoy: run.envoy }[target];
    process.kill(pid, signal);
    const { code } = await run.exited();
    await expectAllGone(run, ports, [run.launcher, run.controller, run.envoy]);
    expect(code).toBe(0);
    expect(run.output()).toContain(`state saved in ${run.stateFile}: 1 rollout, config version 2:\n  fraud-model: canary 5%`);
  });

  it("Ctrl-C in a terminal (SIGINT to the whole process group, so node hears it from the tty and from npm): one clean stop", async () => {
    const ports = await freePorts();
    const run = await npmStart(ports);
    process.kill(-run.npm.pid!, "SIGINT");
    const { code } = await run.exited();
    await expectAllGone(run, ports, [run.launcher, run.controller, run.envoy]);
    expect(code).toBe(0);
    expect(run.output()).toContain(`state saved in ${run.stateFile}: 0 rollouts`);
    expect(run.output()).not.toContain("exiting now");
  });

  it("the launcher gets SIGKILL: Envoy and the controller end on their own (parent-death signal), the ports are freed", async () => {
    const ports = await freePorts();
    const run = await npmStart(ports);
    expect(processAlive(run.envoy)).toBe(true);
    expect(processAlive(run.controller)).toBe(true);
    process.kill(run.launcher, "SIGKILL");
    await run.exited();
    await expectAllGone(run, ports, [run.launcher, run.controller, run.envoy]);
  });

  it("the npm process gets SIGKILL: the launcher sees its parent gone and stops everything", async () => {
    const ports = await freePorts();
    const run = await npmStart(ports);
    process.kill(run.npm.pid!, "SIGKILL");
    await run.exited();
    await expectAllGone(run, ports, [run.launcher, run.controller, run.envoy]);
  });

  it("a port in use: a clear error naming it and its holder before anything runs, and nothing left running", async () => {
    const ports = await freePorts();
    const holder = createServer();
    holders.push(holder);
    await new Promise<void>((resolve) => holder.listen(ports.admin, "127.0.0.1", resolve));
    const tree = npm(["start", "--", ...portFlags(ports)], startEnv(ports, join(dir, `state-${++files}.db`)));
    const { code } = await tree.exited();
    expect(code).toBe(1);
    expect(tree.output()).toContain(`Envoy admin (--admin): 127.0.0.1:${ports.admin} is already in use by pid ${process.pid}`);
    expect(tree.output()).toContain("stop what holds them, or choose other addresses");
    expect(tree.output()).not.toContain("modelroll is running");
    const { admin: _held, ...others } = ports;
    await expectAllGone(tree, others as Ports);
  });

  it("an Envoy left over from an earlier run (its parent gone) is named with what to do, and nothing starts", async () => {
    const ports = await freePorts();
    // An orphan as a crashed run without the parent-death signal would leave it: started by a shell that exits.
    const orphanDir = mkdtempSync(join(tmpdir(), "modelroll-envoy-"));
    const config = join(orphanDir, "envoy.yaml");
    writeFileSync(
      config,
      renderBootstrap({
        listen: { host: "127.0.0.1", port: ports.listen },
        admin: { host: "127.0.0.1", port: ports.admin },
        stable: { host: "127.0.0.1", port: ports.demoStable },
        canary: { host: "127.0.0.1", port: ports.demoCanary },
        controller: { host: "127.0.0.1", port: ports.controller },
      }),
    );
    const shell = spawn("/bin/sh", ["-c", `'${envoyBinary()}' -c '${config}' --disable-hot-restart --log-level error >/dev/null 2>&1 & echo $!`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let pidText = "";
    shell.stdout!.on("data", (c: Buffer) => {
      pidText += c.toString();
    });
    await new Promise((resolve) => shell.once("exit", resolve));
    const orphan = Number(pidText.trim());
    orphans.push(orphan);
    try {
      await waitFor("the orphaned Envoy to listen", async () => (await tryBind("127.0.0.1", ports.admin)) !== null, 20_000, 50);
      const tree = npm(["start", "--", ...portFlags(ports)], startEnv(ports, join(dir, `state-${++files}.db`)));
      const { code } = await tree.exited();
      expect(code).toBe(1);
      expect(tree.output()).toContain(`Envoy admin (--admin): 127.0.0.1:${ports.admin} is already in use by pid ${orphan} (${envoyBinary()} -c ${config}`);
      expect(tree.output()).toContain(`an Envoy left over from an earlier modelroll run (its parent is gone); stop it with 'kill ${orphan}'`);
      expect(tree.output()).toContain(`data plane (--listen): 127.0.0.1:${ports.listen} is already in use by pid ${orphan}`);
      expect(tree.output()).not.toContain("modelroll is running");
      await expectAllGone(tree, { controller: ports.controller, demoStable: ports.demoStable, demoCanary: ports.demoCanary } as unknown as Ports);
    } finally {
      process.kill(orphan, "SIGKILL");
      rmSync(orphanDir, { recursive: true, force: true });
    }
  });

  it("a second controller on the same state file is refused with the pid of the one using it", async () => {
    const ports = await freePorts();
    const run = await npmStart(ports);
    const second = npm(["run", "controller", "--", "--listen", `127.0.0.1:${await freePort()}`, "--state", run.stateFile], {});
    const { code } = await second.exited();
    expect(code).toBe(1);
    expect(second.output()).toContain(`state file ${run.stateFile} in use by pid ${run.controller} (`);
    expect(second.output()).toMatch(/in use by pid \d+ \(\S*node --enable-source-maps \S*controller\/dist\/cli\/start\.js/);
    expect(second.output()).not.toContain("listening on");
    await expectAllGone(second, { listen: 0 } as unknown as Ports);

    // The first one is untouched; once its launcher is killed (SIGKILL: the controller gets the parent-death
    // signal), the file is free again.
    expect((await api(`http://127.0.0.1:${ports.controller}`, "GET", "/v1/rollouts")).status).toBe(200);
    process.kill(run.launcher, "SIGKILL");
    await run.exited();
    await expectAllGone(run, ports, [run.launcher, run.controller, run.envoy]);
    const third = npm(
      ["run", "controller", "--", "--listen", `127.0.0.1:${ports.controller}`, "--state", run.stateFile, "--envoy-admin", `http://127.0.0.1:${ports.admin}`],
      {},
    );
    await waitFor("the controller to take the state file", async () => third.output().includes("listening on") || third.npm.exitCode !== null, 30_000, 50);
    expect(third.output()).toContain(`state ${run.stateFile} (resumed: 0 rollouts`);
    process.kill(third.npm.pid!, "SIGTERM");
    expect((await third.exited()).code).toBe(0);
    expect(third.output()).toContain(`state saved in ${run.stateFile}: 0 rollouts`);
  });
});
