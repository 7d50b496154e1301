// The real `modelroll` command (a subprocess) following rollouts that real traffic through Envoy moves:
// `get --watch` redraws at each stage change from the live stream, `status` is a CI gate with exit codes
// 0 (Succeeded), 1 (RolledBack), 2 (timeout), 3 (usage), and both ride out a controller restart.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, createManaged, managedSpec, sendMany, startStack, type Stack } from "../e2e/harness.ts";
import { runCliProcess, spawnCli } from "./helpers.ts";

const execFileAsync = promisify(execFile);
let stack: Stack;
let dir: string;
let env: Record<string, string>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "modelroll-watch-"));
  stack = await startStack({ controller: { tickIntervalMs: 250, stateFile: join(dir, "state.db") } });
  env = { MODELROLL_SERVER: stack.controller!.url };
});
afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

const short = { minDurationSeconds: 1, minRequests: 60, deadlineSeconds: 120 };
const spec = (name: string, stages: unknown[]) =>
  managedSpec(name, "canary error rate above 1%", { stages, promotion_gates: { error_rate: { maximum: 0.01 } } });

/** Traffic on the rollout's path until stopped (or 60 s), so the engine has something to judge. */
function traffic(name: string): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    const until = Date.now() + 60_000;
    for (let i = 0; running && Date.now() < until; i += 40) {
      await sendMany(`${stack.dataUrl}/${name}/p`, 40, (k) => ({ "x-user-id": `u${i + k}` }), 8).catch(() => []);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Lines of `status` output: [phase, stage] per line, the final line apart. */
function statusPhases(stdout: string): string[] {
  return stdout
    .trimEnd()
    .split("\n")
    .filter((l) => /^\d{4}-/.test(l))
    .map((l) => l.split("  ").slice(2, 4).join(" "));
}

describe("modelroll get --watch and status, as real processes", () => {
  it("watch redraws as the engine moves a good model through its stages; status exits 0 at Succeeded", async () => {
    await createManaged(
      env.MODELROLL_SERVER,
      spec("good", [
        { canaryPercent: 25, ...short },
        { canaryPercent: 100, ...short },
      ]),
    );
    const watch = spawnCli(["get", "good", "--watch"], env);
    const status = spawnCli(["status", "good", "--timeout", "2m"], env);
    await watch.waitFor("the first stage", (out) => out.includes("good  ◑ Canary  stage 1/2 (25%)"));
    const load = traffic("good");
    try {
      const code = await status.exited;
      expect(code, status.stderr()).toBe(0);
      await watch.waitFor("Succeeded", (out) => out.includes("good  ✔ Succeeded"));
    } finally {
      await load.stop();
    }
    expect(await watch.stop()).toBe(0);
    const out = watch.stdout();
    const at = (text: string) => out.indexOf(text);
    expect(at("◑ Canary  stage 1/2 (25%)")).toBeGreaterThanOrEqual(0);
    expect(at("◑ Canary  stage 1/2 (25%)")).toBeLessThan(at("◕ Baking  stage 2/2 (100%)"));
    expect(at("◕ Baking  stage 2/2 (100%)")).toBeLessThan(at("✔ Succeeded"));
    expect(watch.stderr()).toBe("");

    expect(statusPhases(status.stdout())).toEqual(["◑ Canary stage 25%", "◕ Baking stage 100%", "✔ Succeeded stage 100%"]);
    expect(status.stdout().trimEnd().split("\n").at(-1)).toMatch(/^rollout good: Succeeded: stage 100% passed: /);
  });

  it("status exits 1 when the canary is rolled back, and says why", async () => {
    await fetch(`${stack.canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ errorRate: 0.3 }) });
    try {
      await createManaged(env.MODELROLL_SERVER, spec("bad", [{ canaryPercent: 30, ...short }, 100]));
      // The gate is watching before the bad traffic starts.
      const status = spawnCli(["status", "bad", "--timeout", "1m"], env);
      await status.waitFor("the first status line", (out) => out.includes("Canary"));
      const load = traffic("bad");
      const code = await status.exited.finally(() => load.stop());
      const result = { code, stdout: status.stdout(), stderr: status.stderr() };
      expect(result.code, result.stderr).toBe(1);
      expect(statusPhases(result.stdout)).toEqual(["◑ Canary stage 30%", "↩ RolledBack stage 30%"]);
      expect(result.stdout.trimEnd().split("\n").at(-1)).toMatch(/^rollout bad: RolledBack: canary worse overall: error rate /);
    } finally {
      await fetch(`${stack.canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ errorRate: 0 }) });
    }
  });

  it("status exits 2 at --timeout, and 3 for a rollout that is missing or manual", async () => {
    await createManaged(env.MODELROLL_SERVER, spec("slow", [{ canaryPercent: 10, minDurationSeconds: 3600, minRequests: 10, deadlineSeconds: 7200 }, 100]));
    const slow = await runCliProcess(["status", "slow", "--timeout", "1500ms"], env);
    expect(slow.code, slow.stderr).toBe(2);
    expect(slow.stdout.trimEnd().split("\n").at(-1)).toBe("rollout slow: still Canary at stage 10% after 1s: timed out");
    const json = await runCliProcess(["status", "slow", "--timeout", "1s", "-o", "json"], env);
    expect(json.code).toBe(2);
    const records = json.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(records[0]).toMatchObject({ rollout: "slow", phase: "Canary", stage: "10%", canaryPercent: 10 });
    expect(records.at(-1)).toEqual({ rollout: "slow", result: "timeout", exitCode: 2 });

    const missing = await runCliProcess(["status", "nope"], env);
    expect(missing).toEqual({ code: 3, stdout: "", stderr: "modelroll: rollout nope: not found\n" });
    await api(env.MODELROLL_SERVER, "POST", "/v1/rollouts", { name: "plain", match: { pathPrefix: "/plain" }, stickyKey: { header: "x-user-id" } });
    const manual = await runCliProcess(["status", "plain"], env);
    expect(manual).toEqual({
      code: 3,
      stdout: "",
      stderr: "modelroll: rollout plain: manual (not managed by the engine), so it never ends by itself; nothing to wait for\n",
    });
  });

  it("watch reconnects after a controller restart and shows what changed meanwhile", async () => {
    await createManaged(env.MODELROLL_SERVER, spec("restart", [{ canaryPercent: 10, minDurationSeconds: 3600, minRequests: 10, deadlineSeconds: 7200 }, 100]));
    const watch = spawnCli(["get", "restart", "--watch"], env);
    await watch.waitFor("the first stage", (out) => out.includes("restart  ◑ Canary  stage 1/2 (10%)"));
    await stack.stopController();
    await watch.waitFor("the reconnect note", () => watch.stderr().includes("live stream dropped"));
    await stack.startController();
    // The restarted controller resumed the rollout from its state file; the watch picks up the change.
    expect((await api(stack.controller!.url, "POST", "/v1/rollouts/restart/pause")).status).toBe(200);
    await watch.waitFor("the pause", (out) => out.includes("restart  ⏸ Paused  stage 1/2 (10%)"));
    expect(await watch.stop()).toBe(0);
    expect(watch.stderr()).toMatch(/^modelroll: live stream dropped \(.+\); reconnecting\n/);
  });
});

describe("modelroll completion", () => {
  it("bash: completes commands, flags, choices and rollout names from the controller", async () => {
    const script = (await runCliProcess(["completion", "bash"], env)).stdout;
    await writeFile(join(dir, "completion.bash"), script);
    // A shell with the script loaded, and `modelroll` on its PATH as the real command.
    const complete = async (line: string, shellEnv: Record<string, string> = env) => {
      const words = line.split(" ");
      const program = `source ${join(dir, "completion.bash")}
modelroll() { node ${JSON.stringify(join(process.cwd(), "bin/modelroll.mjs"))} "$@"; }
COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}
_modelroll_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
      // Not spawnSync: the controller the completion asks runs in this process.
      const result = await execFileAsync("bash", ["-c", program], { env: { ...process.env, ...shellEnv }, encoding: "utf8", timeout: 20_000 });
      return result.stdout.trim().split("\n").filter(Boolean).sort();
    };
    expect(await complete("modelroll pro")).toEqual(["promote"]);
    expect(await complete("modelroll get -o ")).toEqual(["json", "table", "yaml"]);
    expect(await complete("modelroll status --t")).toEqual(["--timeout", "--token"]);
    await api(env.MODELROLL_SERVER, "POST", "/v1/rollouts", { name: "completable", match: { pathPrefix: "/completable" }, stickyKey: { header: "x-user-id" } });
    expect(await complete("modelroll get comp")).toEqual(["completable"]);
    // Names come from the controller the line names, not the environment's.
    expect(await complete(`modelroll --server ${env.MODELROLL_SERVER} pause comp`, { MODELROLL_SERVER: "http://127.0.0.1:9" })).toEqual(["completable"]);
  });

  it("zsh: a script zsh accepts", async () => {
    const script = (await runCliProcess(["completion", "zsh"], env)).stdout;
    expect(script.startsWith("#compdef modelroll\n")).toBe(true);
    await writeFile(join(dir, "_modelroll"), script);
    const zsh = await execFileAsync("zsh", ["-n", join(dir, "_modelroll")], { encoding: "utf8" }).catch(
      (error: NodeJS.ErrnoException & { stderr?: string }) => error,
    );
    if ("code" in zsh && zsh.code === "ENOENT") {
      // No zsh on this machine: the bash test above is the behavioural one; check the script's shape at least.
      expect(script).toContain("compdef _modelroll modelroll");
      return;
    }
    expect(zsh instanceof Error ? zsh.stderr : "").toBe("");
    // Loaded the way users load it, it registers itself for the command.
    const loaded = await execFileAsync(
      "zsh",
      ["-c", `autoload -U compinit; compinit -u -d ${join(dir, "zcompdump")}; source ${join(dir, "_modelroll")}; print -r -- \${_comps[modelroll]}`],
      { encoding: "utf8" },
    );
    expect(loaded.stdout).toBe("_modelroll\n");
  });
});
