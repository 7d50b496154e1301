// The real `npm start`, three times on one state file, in front of counting HTTP servers (docs/notes/upstreams.md):
//  1. --stable http://localhost:P (a host name: Envoy's STRICT_DNS cluster) and --canary B: a managed rollout
//     goes through its stages to Succeeded, the canary answering all traffic.
//  2. Restarted with --canary C: the rollout is held before Envoy starts (canary withdrawn); the banner says so
//     for that rollout, the API view and `modelroll get` too, and not one request reaches C.
//  3. Restarted with --canary on a port nothing listens on: npm start refuses to start, naming the flag and URL.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../controller/src/net.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { allPids, processAlive, processParentAndGroup } from "../../controller/src/proc.ts";
import { api, managedSpec, phaseOf, sendMany, waitFor } from "./harness.ts";

interface Counter {
  server: Server;
  port: number;
  /** Requests routed by Envoy (the rollout's path); npm start's probe asks for / and is counted apart. */
  count: number;
  probes: number;
}

async function counter(version: string): Promise<Counter> {
  const c: Counter = { server: createServer(), port: 0, count: 0, probes: 0 };
  c.server.on("request", (req, res) => {
    if (req.url?.startsWith("/up/")) c.count += 1;
    else c.probes += 1;
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ model_version: version, score: 0.5 })));
  });
  await new Promise<void>((resolve) => c.server.listen(0, "127.0.0.1", resolve));
  c.port = (c.server.address() as AddressInfo).port;
  return c;
}

interface Started {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function npmStart(args: string[], stateFile: string): Started {
  const child = spawn("npm", ["start", "--", ...args], {
    cwd: repoRoot,
    env: { ...process.env, MODELROLL_STATE: stateFile },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout!.on("data", (c: Buffer) => void (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => void (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function stop(s: Started): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) {
    process.kill(s.child.pid!, "SIGTERM");
    await Promise.race([s.exited, new Promise((r) => setTimeout(r, 20_000).unref())]);
  }
  for (const pid of allPids().filter((p) => processParentAndGroup(p)?.pgrp === s.child.pid && processAlive(p))) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

async function running(s: Started): Promise<void> {
  await waitFor(
    "npm start to say it is running",
    async () => {
      if (s.child.exitCode !== null) throw new Error(`npm start exited ${s.child.exitCode}:\n${s.output()}`);
      return s.output().includes("modelroll is running");
    },
    90_000,
    50,
  );
}

const dir = mkdtempSync(join(tmpdir(), "modelroll-upstreams-"));
const stateFile = join(dir, "state.db");
const started: Started[] = [];
const servers: Counter[] = [];

afterAll(async () => {
  for (const s of started) await stop(s);
  for (const c of servers) await new Promise<void>((resolve) => c.server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe("npm start keeps each rollout on the upstreams it was tested against", () => {
  it("a restart with a changed --canary sends no request to it; a canary that does not answer is refused at start", async () => {
    const [stable, canary, other] = [await counter("v1"), await counter("v2"), await counter("v3")];
    servers.push(stable, canary, other);
    const ports = { listen: await freePort(), controller: await freePort(), admin: await freePort() };
    const common = ["--listen", `127.0.0.1:${ports.listen}`, "--controller", `127.0.0.1:${ports.controller}`, "--admin", `127.0.0.1:${ports.admin}`];
    const ctl = `http://127.0.0.1:${ports.controller}`;
    const data = `http://127.0.0.1:${ports.listen}/up/score`;

    // 1. Released against stable (by host name) and canary B.
    const first = npmStart(
      [...common, "--tick-ms", "200", "--stable", `http://localhost:${stable.port}`, "--canary", `http://127.0.0.1:${canary.port}`],
      stateFile,
    );
    started.push(first);
    await running(first);
    const spec = managedSpec("up", "error rate above 1%", {
      models: { stable: "v1", canary: "v2" },
      stages: [
        { canaryPercent: 50, minDurationSeconds: 1, minRequests: 30, deadlineSeconds: 120 },
        { canaryPercent: 100, minDurationSeconds: 1, minRequests: 30, deadlineSeconds: 120 },
      ],
      promotion_gates: { error_rate: { maximum: 0.05 } },
    });
    const created = await api(ctl, "POST", "/v1/rollouts", spec);
    expect(created.status).toBe(201);
    expect(created.json.upstreams).toMatchObject({
      tested: {
        stable: { cluster: "stable", endpoint: `localhost:${stable.port}`, model: "v1" },
        canary: { cluster: "canary", endpoint: `127.0.0.1:${canary.port}`, model: "v2" },
        source: "npm start",
      },
      held: null,
    });
    await waitFor(
      "the rollout to succeed",
      async () => {
        await sendMany(data, 40, (i) => ({ "x-user-id": `u-${Math.random()}-${i}` }), 8);
        const phase = await phaseOf(ctl, "up");
        if (phase === "RolledBack" || phase === "Failed") throw new Error(`rollout ended ${phase}`);
        return phase === "Succeeded";
      },
      90_000,
      20,
    );
    // The host name reached the stable server through Envoy, the canary took traffic too.
    expect(stable.count).toBeGreaterThan(0);
    expect(canary.count).toBeGreaterThan(0);
    expect((await api(ctl, "GET", "/v1/rollouts/up")).json).toMatchObject({ phase: "Succeeded", canaryPercent: 100 });
    await stop(first);

    // 2. The same state file, --canary now C: held before Envoy starts, nothing reaches C.
    const second = npmStart([...common, "--stable", `http://localhost:${stable.port}`, "--canary", `http://127.0.0.1:${other.port}`], stateFile);
    started.push(second);
    await running(second);
    const banner = second.output();
    expect(banner).toContain("(resumed: 1 rollout)");
    expect(banner).toContain(
      `rollout up (Succeeded, canary 0%): held: its upstreams changed since it last ran: canary (cluster canary) was 127.0.0.1:${canary.port} (model v2), now 127.0.0.1:${other.port} (model v2). canary traffic withdrawn (was 100%): all of it goes to stable.`,
    );
    const before = { stable: stable.count, canary: canary.count };
    const replies = await sendMany(data, 200, (i) => ({ "x-user-id": `after-${i}` }), 8);
    expect(replies.filter((r) => r.status !== 200)).toEqual([]);
    expect(other.count).toBe(0);
    expect(other.probes).toBe(1);
    const toStable = stable.count - before.stable;
    expect(toStable).toBe(200);
    expect(canary.count).toBe(before.canary);
    const view = (await api(ctl, "GET", "/v1/rollouts/up")).json;
    expect(view).toMatchObject({ phase: "Succeeded", canaryPercent: 0, upstreams: { held: { withdrawn: { canaryPercent: 100 } } } });
    expect(view.pending).toMatch(/^held: its upstreams changed since it last ran: canary \(cluster canary\) was 127\.0\.0\.1:\d+ \(model v2\), now/);
    const history = (await api(ctl, "GET", "/v1/rollouts/up/history")).json;
    expect(history.decisions.at(-1)).toMatchObject({ kind: "upstreamsChanged", actor: "controller", from: "Succeeded", to: "Succeeded" });
    // The CLI's get says it in words.
    const get = spawnSync(process.execPath, [join(repoRoot, "bin/modelroll.mjs"), "--server", ctl, "get", "up"], { encoding: "utf8" });
    expect(get.stdout).toContain(`held: its upstreams changed since it last ran: canary (cluster canary) was 127.0.0.1:${canary.port}`);
    // An ended release cannot take the new canary on; a command that would route to it is refused; rollback ends it.
    const accept = await api(ctl, "POST", "/v1/rollouts/up/accept-upstreams", {});
    expect(accept.status).toBe(409);
    expect(accept.json.error).toContain("no stage would test the new canary");
    const rolledBack = await api(ctl, "POST", "/v1/rollouts/up/rollback", { reason: "canary moved" });
    expect(rolledBack.json).toMatchObject({ phase: "RolledBack", canaryPercent: 0, upstreams: { held: null } });
    await sendMany(data, 50, (i) => ({ "x-user-id": `rb-${i}` }), 8);
    expect(other.count).toBe(0);
    await stop(second);

    // 3. A canary port nothing answers on is refused at start, naming the flag and the URL.
    const nowhere = await freePort();
    const third = npmStart([...common, "--stable", `http://localhost:${stable.port}`, "--canary", `http://127.0.0.1:${nowhere}`], stateFile);
    started.push(third);
    expect(await third.exited).toBe(1);
    expect(third.output()).toContain(`--canary http://127.0.0.1:${nowhere}: does not answer (connect ECONNREFUSED 127.0.0.1:${nowhere})`);
    expect(third.output()).not.toContain("modelroll is running");
    console.log(
      `restart with a changed canary: 200 requests, ${other.count} reached the new canary, ${toStable} stable; ${banner
        .split("\n")
        .find((l) => l.includes("rollout up"))
        ?.trim()}`,
    );
  }, 240_000);
});
