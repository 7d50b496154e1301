// The stack the README is run against: the real `npm start` (demo models, controller, Envoy with the filter)
// on free ports, in its own process group, with the README's addresses mapped to those ports.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../controller/src/net.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { allPids, processAlive, processParentAndGroup } from "../../controller/src/proc.ts";

/** The addresses the docs use: npm start's defaults (docs/guides/running.md). */
export const README_PORTS = { listen: 10000, controller: 8080, admin: 9901, demoStable: 9001, demoCanary: 9002 } as const;
type Role = keyof typeof README_PORTS;

export interface DocStack {
  ports: Record<Role, number>;
  /** README port -> this stack's port, for substituteAddresses. */
  portMap: Record<number, number>;
  controllerUrl: string;
  dataUrl: string;
  output(): string;
  /** Between examples: no live rollout (each deleted, so archived), demo models back to how they started. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startDocStack(options: { tickMs?: number } = {}): Promise<DocStack> {
  const ports = {} as Record<Role, number>;
  for (const role of Object.keys(README_PORTS) as Role[]) ports[role] = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "modelroll-doc-"));
  const args = ["start", "--", "--listen", `127.0.0.1:${ports.listen}`, "--controller", `127.0.0.1:${ports.controller}`, "--admin", `127.0.0.1:${ports.admin}`];
  if (options.tickMs !== undefined) args.push("--tick-ms", String(options.tickMs));
  const child: ChildProcess = spawn("npm", args, {
    cwd: repoRoot,
    env: {
      ...process.env,
      MODELROLL_STATE: join(dir, "state.db"),
      MODELROLL_DEMO_STABLE: `127.0.0.1:${ports.demoStable}`,
      MODELROLL_DEMO_CANARY: `127.0.0.1:${ports.demoCanary}`,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout!.on("data", (c: Buffer) => void (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => void (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, "SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000).unref())]);
    }
    // Whatever is left of the group (a stop that hung) is ended outright.
    for (const pid of allPids().filter((p) => processParentAndGroup(p)?.pgrp === child.pid && processAlive(p))) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const started = Date.now();
  while (!output.includes("modelroll is running")) {
    if (child.exitCode !== null || Date.now() - started > 60_000) {
      await stop();
      throw new Error(`npm start did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const controllerUrl = `http://127.0.0.1:${ports.controller}`;
  const demos = [ports.demoStable, ports.demoCanary].map((p) => `http://127.0.0.1:${p}/__demo/behavior`);
  const initial = await Promise.all(demos.map(async (url) => (await fetch(url)).text()));

  return {
    ports,
    portMap: Object.fromEntries((Object.keys(README_PORTS) as Role[]).map((role) => [README_PORTS[role], ports[role]])),
    controllerUrl,
    dataUrl: `http://127.0.0.1:${ports.listen}`,
    output: () => output,
    async reset() {
      const { rollouts } = (await (await fetch(`${controllerUrl}/v1/rollouts`)).json()) as { rollouts: Array<{ name: string }> };
      for (const { name } of rollouts) {
        const res = await fetch(`${controllerUrl}/v1/rollouts/${name}?reason=doc-test+reset`, { method: "DELETE" });
        if (res.status !== 204) throw new Error(`reset: DELETE ${name} answered ${res.status}: ${await res.text()}`);
      }
      for (const [i, url] of demos.entries()) {
        const res = await fetch(url, { method: "PUT", headers: { "content-type": "application/json" }, body: initial[i] });
        if (res.status !== 200) throw new Error(`reset: PUT ${url} answered ${res.status}: ${await res.text()}`);
      }
    },
    stop,
  };
}
