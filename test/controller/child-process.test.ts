// spawnManaged: what Envoy and Prometheus are started with (bounded log, end tracked, stop escalates and cleans up).
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnManaged } from "../../controller/src/child-process.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { processAlive } from "../../controller/src/proc.ts";

const workDir = () => mkdtempSync(join(tmpdir(), "modelroll-child-test-"));

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

describe("spawnManaged", () => {
  it("keeps the output, and stop() ends a running process with SIGTERM and removes its directory", async () => {
    const dir = workDir();
    const p = spawnManaged("/bin/sh", ["-c", "echo started; echo to-stderr >&2; exec sleep 60"], { workDir: dir, maxLogChars: 1000 });
    await until(() => p.log().includes("started") && p.log().includes("to-stderr"));
    expect(p.log()).toContain("started");
    expect(p.log()).toContain("to-stderr");
    expect(p.exited()).toBeNull();
    await p.stop();
    expect(p.exited()).toBe("signal SIGTERM");
    expect(existsSync(dir)).toBe(false);
  });

  it("reports how a process ended by itself, and stop() then only cleans up", async () => {
    const dir = workDir();
    const p = spawnManaged("/bin/sh", ["-c", "exit 3"], { workDir: dir, maxLogChars: 1000 });
    await until(() => p.exited() !== null);
    expect(p.exited()).toBe("code 3");
    await p.stop();
    expect(existsSync(dir)).toBe(false);
  });

  it("turns a binary that cannot be started into an ending, not a crash", async () => {
    const dir = workDir();
    const p = spawnManaged(join(dir, "no-such-binary"), [], { workDir: dir, maxLogChars: 1000 });
    await until(() => p.exited() !== null);
    expect(p.exited()).toMatch(/^spawn failed: .*ENOENT/);
    await p.stop();
    expect(existsSync(dir)).toBe(false);
  });

  it("keeps the latest half of the log once it passes the bound", async () => {
    const dir = workDir();
    const p = spawnManaged("/bin/sh", ["-c", "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done"], { workDir: dir, maxLogChars: 1000 });
    await until(() => p.exited() !== null);
    await until(() => p.log().includes("line-399"));
    expect(p.log()).toContain("line-399");
    expect(p.log()).not.toContain("line-0\n");
    expect(p.log().length).toBeLessThanOrEqual(1000);
    await p.stop();
  });

  it("ends the child when its parent is killed with SIGKILL (parent-death signal)", async () => {
    const parent = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "test", "controller", "fixtures", "spawn-and-hold.ts")], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    parent.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
    });
    await until(() => out.includes("\n") || parent.exitCode !== null, 20_000);
    const { pid, workDir, diesWithParent } = JSON.parse(out) as { pid: number; workDir: string; diesWithParent: boolean };
    expect(diesWithParent).toBe(true);
    expect(processAlive(pid)).toBe(true);
    const exited = new Promise((resolve) => parent.once("exit", resolve));
    parent.kill("SIGKILL");
    await exited;
    await until(() => !processAlive(pid));
    const alive = processAlive(pid);
    if (alive) process.kill(pid, "SIGKILL");
    rmSync(workDir, { recursive: true, force: true });
    expect(alive).toBe(false);
  });
});
