// The real `npm start` as a process tree in its own process group (as a terminal or a supervisor starts it):
// npm -> the launcher -> { the controller process, Envoy }; its output, its pids, and checks by process group.
import { spawn, type ChildProcess } from "node:child_process";
import { repoRoot } from "../../controller/src/paths.ts";
import { allPids, processAlive, processParentAndGroup } from "../../controller/src/proc.ts";
import { freePort, waitFor } from "./harness.ts";

/** Live (non-zombie) processes of the process group. */
export function groupMembers(pgid: number): number[] {
  return allPids().filter((pid) => processParentAndGroup(pid)?.pgrp === pgid && processAlive(pid));
}

/** SIGKILL to every live member of the group (what a failed test left). */
export function killGroup(pgid: number): void {
  for (const pid of groupMembers(pgid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

export interface Ports {
  listen: number;
  controller: number;
  admin: number;
  demoStable: number;
  demoCanary: number;
}

export async function freePorts(): Promise<Ports> {
  const [listen, controller, admin, demoStable, demoCanary] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  return { listen, controller, admin, demoStable, demoCanary };
}

export interface Tree {
  npm: ChildProcess;
  output(): string;
  /** How npm ended, waited for at most 20 s from this call: a tree that does not end fails in seconds. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm <args>` in its own process group, output collected. */
export function npm(args: string[], env: Record<string, string>): Tree {
  const child = spawn("npm", args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
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

export function startEnv(ports: Ports, stateFile: string): Record<string, string> {
  return {
    MODELROLL_STATE: stateFile,
    MODELROLL_DEMO_STABLE: `127.0.0.1:${ports.demoStable}`,
    MODELROLL_DEMO_CANARY: `127.0.0.1:${ports.demoCanary}`,
  };
}

export const portFlags = (ports: Ports) => [
  "--listen",
  `127.0.0.1:${ports.listen}`,
  "--controller",
  `127.0.0.1:${ports.controller}`,
  "--admin",
  `127.0.0.1:${ports.admin}`,
];

export interface Started extends Tree {
  /** The launcher (npm's child), its controller process and Envoy, from the banner. */
  launcher: number;
  controller: number;
  envoy: number;
  stateFile: string;
}

/** The real `npm start`, until it prints that it runs. */
export async function npmStart(ports: Ports, stateFile: string, env: Record<string, string> = {}, extraArgs: string[] = []): Promise<Started> {
  const tree = npm(["start", "--", ...portFlags(ports), "--tick-ms", "200", ...extraArgs], { ...startEnv(ports, stateFile), ...env });
  try {
    await waitFor("npm start to print that it runs", async () => tree.output().includes("modelroll is running") || tree.npm.exitCode !== null, 60_000, 50);
  } catch (error) {
    killGroup(tree.npm.pid!);
    throw error;
  }
  const m = /modelroll is running \(pid (\d+); Envoy pid (\d+); controller pid (\d+)\)/.exec(tree.output());
  if (!m) {
    killGroup(tree.npm.pid!);
    throw new Error(`npm start did not start:\n${tree.output()}`);
  }
  return { ...tree, launcher: Number(m[1]), envoy: Number(m[2]), controller: Number(m[3]), stateFile };
}

/** The pid of the controller process the launcher started last, from its "controller restarted" lines (or the banner). */
export function latestController(run: Started): number {
  const restarts = [...run.output().matchAll(/controller restarted \(pid (\d+), start \d+\)/g)];
  const last = restarts.at(-1);
  return last ? Number(last[1]) : run.controller;
}
