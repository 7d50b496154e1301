// The launcher's controller supervisor with a stand-in controller (a small Node script speaking the launcher's IPC
// messages): which exit is a crash, a stop on purpose or a failed first start; restarts by the policy, the bound,
// a restart by hand, a stop; the data-plane requests answered over the channel.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ControllerSupervisor } from "../../controller/src/cli/controller-supervisor.ts";
import type { FromLauncher, ToLauncher } from "../../controller/src/cli/data-plane.ts";
import { processAlive } from "../../controller/src/proc.ts";
import { waitFor } from "../e2e/harness.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-supervisor-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The stand-in: asks for a model server, says it runs once answered, and stays until a signal; or fails at once. */
function entry(kind: "good" | "failing"): string {
  const file = join(dir, `${kind}.mjs`);
  writeFileSync(
    file,
    kind === "failing"
      ? "process.exit(3);\n"
      : `process.on("message", (m) => { if (m.kind === "reply" && m.ok) process.send({ kind: "running" }); });
process.on("SIGTERM", () => process.exit(0));
process.send({ kind: "model-server", id: 1, request: { version: "v1", host: "127.0.0.1", port: 1 } });
setInterval(() => undefined, 1000);
`,
  );
  return file;
}

interface Seen {
  logs: string[];
  requests: ToLauncher[];
  firstStartFailed: string[];
  stoppedOnPurpose: string[];
}

let current: ControllerSupervisor | null = null;
afterEach(async () => {
  await current?.stop();
  current = null;
});

function supervise(entryFile: () => string, maxCrashesInARow = 5): { supervisor: ControllerSupervisor; seen: Seen } {
  const seen: Seen = { logs: [], requests: [], firstStartFailed: [], stoppedOnPurpose: [] };
  const supervisor = new ControllerSupervisor({
    entry: entryFile,
    execArgv: [],
    args: () => [],
    policy: { firstDelayMs: 10, maxDelayMs: 40, maxCrashesInARow, stableAfterMs: 60_000 },
    events: {
      request: (message, reply: (a: FromLauncher) => void) => {
        seen.requests.push(message);
        reply({ kind: "reply", id: message.id, ok: true, url: "http://127.0.0.1:1" });
      },
      firstStartFailed: (code, how) => void seen.firstStartFailed.push(`${code} ${how}`),
      stoppedOnPurpose: (how) => void seen.stoppedOnPurpose.push(how),
      log: (line) => void seen.logs.push(line),
    },
    killAfterMs: 2000,
  });
  current = supervisor;
  supervisor.start();
  return { supervisor, seen };
}

/** Until the supervisor's controller is running, after `requests` requests answered in all. */
async function running(supervisor: ControllerSupervisor, seen: Seen, requests: number): Promise<number> {
  await waitFor(`request ${requests} answered, then running`, async () => seen.requests.length >= requests && supervisor.running, 10_000, 10);
  return supervisor.pid ?? 0;
}

describe("the controller supervisor", () => {
  it("a first start that fails is reported with its exit code, and not restarted", async () => {
    const { supervisor, seen } = supervise(() => entry("failing"));
    await waitFor("the failed start", async () => seen.firstStartFailed.length > 0, 10_000, 10);
    expect(seen.firstStartFailed).toEqual(["3 code 3"]);
    expect(supervisor.starts).toBe(1);
  });

  it("a controller killed with SIGKILL is restarted and its request answered; SIGTERM to it (exit 0) is a stop on purpose", async () => {
    const { supervisor, seen } = supervise(() => entry("good"));
    const first = await running(supervisor, seen, 1);
    process.kill(first, "SIGKILL");
    await waitFor("the restart", async () => supervisor.starts === 2 && supervisor.pid !== null && supervisor.pid !== first, 10_000, 10);
    const second = await running(supervisor, seen, 2);
    expect(seen.logs[0]).toMatch(
      new RegExp(`^the controller \\(pid ${first}\\) crashed \\(signal SIGKILL\\); .* restarting it in 10 ms \\(crash 1 in a row\\)$`),
    );
    expect(seen.requests.map((r) => r.kind)).toEqual(["model-server", "model-server"]);
    process.kill(second, "SIGTERM");
    await waitFor("the stop on purpose", async () => seen.stoppedOnPurpose.length > 0, 10_000, 10);
    expect(seen.stoppedOnPurpose).toEqual([`the controller (pid ${second}) exited: code 0`]);
    expect(supervisor.starts).toBe(2);
  });

  it("restart() replaces a running controller without counting a crash; stop() ends it for good", async () => {
    const { supervisor, seen } = supervise(() => entry("good"));
    const first = await running(supervisor, seen, 1);
    await supervisor.restart("a test");
    const second = await running(supervisor, seen, 2);
    expect(second).not.toBe(first);
    expect(processAlive(first)).toBe(false);
    expect(seen.logs).toEqual([`restarting the controller, pid ${first} (a test); the data plane keeps serving`]);
    await supervisor.stop();
    expect(processAlive(second)).toBe(false);
    expect(supervisor.pid).toBeNull();
    expect(supervisor.starts).toBe(2);
  });

  it("gives up after the bound of crashes in a row; a restart by hand starts a new count", async () => {
    let kind: "good" | "failing" = "good";
    const { supervisor, seen } = supervise(() => entry(kind), 2);
    const first = await running(supervisor, seen, 1);
    kind = "failing";
    process.kill(first, "SIGKILL");
    await waitFor("giving up", async () => supervisor.gaveUp, 10_000, 10);
    expect(supervisor.starts).toBe(3);
    expect(seen.logs.at(-1)).toContain("failed to start (code 3): 3 times in a row, so it is not started again");
    expect(supervisor.pid).toBeNull();
    kind = "good";
    await supervisor.restart("by hand");
    await running(supervisor, seen, 2);
    expect(supervisor.gaveUp).toBe(false);
    expect(supervisor.starts).toBe(4);
  });
});
