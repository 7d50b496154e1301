// `npm start` and `npm run controller` as the real process trees an operator (or a supervisor, or `docker stop`)
// deals with: npm -> node (demo models and controller in it) -> Envoy. A signal to any of them stops all of it
// and frees every port; Envoy dies with its parent even on SIGKILL; a busy port or a state file in use is
// refused before anything claims to be running, and nothing is left behind.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { tryBind } from "../../controller/src/cli/ports.ts";
import { renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { envoyBinary, repoRoot } from "../../controller/src/paths.ts";
import { allPids, processAlive, processParentAndGroup } from "../../controller/src/proc.ts";
import { api, freePort, waitFor } from "./harness.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-process-"));
let files = 0;
const trees: ChildProcess[] = [];
const holders: Server[] = [];
const orphans: number[] = [];

afterEach(async () => {
  // Whatever a failed test left: each tree is its own process group, ended as a whole.
  for (const tree of trees.splice(0)) {
    for (const pid of groupMembers(tree.pid!)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
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

/** Live (non-zombie) processes of the process group. */
function groupMembers(pgid: number): number[] {
  return allPids().filter((pid) => processParentAndGroup(pid)?.pgrp === pgid && processAlive(pid));
}

interface Ports {
  listen: number;
  controller: number;
  admin: number;
  demoStable: number;
  demoCanary: number;
}

async function freePorts(): Promise<Ports> {
  const [listen, controller, admin, demoStable, demoCanary] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  return { listen, controller, admin, demoStable, demoCanary };
}

interface Tree {
  npm: ChildProcess;
  output(): string;
  /** How npm ended, waited for at most 20 s from this call: a tree that does not end fails in seconds. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm <args>` in its own process group (as a terminal or a supervisor starts it), output collected. */
function npm(args: string[], env: Record<string, string>): Tree {
  const child = spawn("npm", args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  trees.push(child);
  let output = "";
  child.stdout!.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr!.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const exited = () =>
    Promise.race([
      ended,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`npm ${args[0]} did not exit within 20 s:\n${output}`)), 20_000).unref()),
    ]);
  return { npm: child, output: () => output, exited };
}

function startEnv(ports: Ports, stateFile: string): Record<string, string> {
  return {
    MODELROLL_STATE: stateFile,
    MODELROLL_DEMO_STABLE: `127.0.0.1:${ports.demoStable}`,
    MODELROLL_DEMO_CANARY: `127.0.0.1:${ports.demoCanary}`,
  };
}

const portFlags = (ports: Ports) => [
  "--listen",
  `127.0.0.1:${ports.listen}`,
  "--controller",
  `127.0.0.1:${ports.controller}`,
  "--admin",
  `127.0.0.1:${ports.admin}`,
];

/** The real `npm start`, until it prints that it runs; the pids of its node process and its Envoy. */
async function npmStart(ports: Ports, stateFile = join(dir, `state-${++files}.db`)): Promise<Tree & { node: number; envoy: number; stateFile: string }> {
  const tree = npm(["start", "--", ...portFlags(ports), "--tick-ms", "200"], startEnv(ports, stateFile));
  await waitFor("npm start to print that it runs", async () => tree.output().includes("modelroll is running") || tree.npm.exitCode !== null, 30_000, 50);
  const m = /modelroll is running \(pid (\d+); Envoy pid (\d+)\)/.exec(tree.output());
  if (!m) throw new Error(`npm start did not start:\n${tree.output()}`);
  return { ...tree, node: Number(m[1]), envoy: Number(m[2]), stateFile };
}

/** Bounded: every process of the tree gone and every port bindable again. */
async function expectAllGone(tree: Tree, ports: Ports, envoy?: number): Promise<void> {
  await waitFor("every process of the tree to end", async () => groupMembers(tree.npm.pid!).length === 0, 15_000, 50);
  if (envoy !== undefined) expect(processAlive(envoy)).toBe(false);
  for (const port of Object.values(ports)) {
    await waitFor(`port ${port} to be free`, async () => (await tryBind("127.0.0.1", port)) === null, 5_000, 50);
  }
}

describe("npm start as a process tree", () => {
  it.each([
    ["the npm process", "SIGTERM"],
    ["the npm process", "SIGINT"],
    ["the node process", "SIGTERM"],
    ["Envoy", "SIGTERM"],
  ] as const)("%s gets %s: everything stops, every port is free, and what was saved is printed", async (target, signal) => {
    const ports = await freePorts();
    const run = await npmStart(ports);
    expect(groupMembers(run.npm.pid!)).toEqual(expect.arrayContaining([run.npm.pid, run.node, run.envoy]));
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

    const pid = target === "the npm process" ? run.npm.pid! : target === "the node process" ? run.node : run.envoy;
    process.kill(pid, signal);
    const { code } = await run.exited();
    await expectAllGone(run, ports, run.envoy);
    expect(code).toBe(0);
    expect(run.output()).toContain(`state saved in ${run.stateFile}: 1 rollout, config version 2:\n  fraud-model: canary 5%`);
  });

  it("Ctrl-C in a terminal (SIGINT to the whole process group, so node hears it from the tty and from npm): one clean stop", async () => {
    const ports = await freePorts();
    const run = await npmStart(ports);
    process.kill(-run.npm.pid!, "SIGINT");
    const { code } = await run.exited();
    await expectAllGone(run, ports, run.envoy);
    expect(code).toBe(0);
    expect(run.output()).toContain(`state saved in ${run.stateFile}: 0 rollouts`);
    expect(run.output()).not.toContain("exiting now");
  });

  it("the node process gets SIGKILL: Envoy ends on its own (parent-death signal), the ports are freed", async () => {
    const ports = await freePorts();
    const run = await npmStart(ports);
    expect(processAlive(run.envoy)).toBe(true);
    process.kill(run.node, "SIGKILL");
    await run.exited();
    await expectAllGone(run, ports, run.envoy);
  });

  it("the npm process gets SIGKILL: the node process sees its parent gone and stops everything", async () => {
    const ports = await freePorts();
    const run = await npmStart(ports);
    process.kill(run.npm.pid!, "SIGKILL");
    await run.exited();
    await expectAllGone(run, ports, run.envoy);
    expect(processAlive(run.node)).toBe(false);
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
    expect(second.output()).toContain(`state file ${run.stateFile} in use by pid ${run.node} (node --enable-source-maps controller/dist/cli/start.js`);
    expect(second.output()).not.toContain("listening on");
    await expectAllGone(second, { listen: 0 } as unknown as Ports);

    // The first one is untouched; once it is killed (SIGKILL: no cleanup), the file is free again.
    expect((await api(`http://127.0.0.1:${ports.controller}`, "GET", "/v1/rollouts")).status).toBe(200);
    process.kill(run.node, "SIGKILL");
    await run.exited();
    await expectAllGone(run, ports, run.envoy);
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
