// One controller per state file: a second one is refused at once with the holder's pid, the lock goes with
// the process however it ends (SIGKILL included), ":memory:" is never shared, and --fresh starts empty
// with a copy of what was there.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { SqliteRolloutState, StateFileInUseError } from "../../controller/src/rollouts/sqlite-state.ts";
import { createRollout, spec, testApp } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const stateFile = () => join(dir, `state-${++files}.db`);

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** Another process holding the file, as a running controller would. */
async function holder(file: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "test", "controller", "fixtures", "hold-state.ts"), file], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const deadline = Date.now() + 20_000;
  while (!out.includes("holding") && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (!out.includes("holding")) throw new Error(`holder did not start:\n${out}`);
  return child;
}

describe("one controller per state file", () => {
  it("refuses a second store in another process with the holder's pid, and takes the file once that one is killed", async () => {
    const file = stateFile();
    const child = await holder(file);
    let refusal: unknown;
    try {
      new SqliteRolloutState(file);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(StateFileInUseError);
    expect((refusal as Error).message).toMatch(
      new RegExp(`^state file ${file} in use by pid ${child.pid} \\(.*hold-state\\.ts.*\\): one controller per state file`),
    );
    expect((refusal as StateFileInUseError).holders).toEqual([child.pid]);

    // SIGKILL: no chance to clean up, and the kernel still drops the lock.
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    const after = new SqliteRolloutState(file);
    expect(after.load()?.epoch).toBe("dddddddddddddddd");
    after.close();
  });

  it("refuses a second app on the same file in this process, and lets it in after the first closed", async () => {
    const file = stateFile();
    const first = await testApp({ stateFile: file });
    await createRollout(first, spec({ canaryPercent: 5 }));
    await expect(testApp({ stateFile: file })).rejects.toThrow(`state file ${file} in use by pid ${process.pid} (this process)`);
    // The refused one changed nothing: the first still writes.
    expect((await first.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload: { canaryPercent: 7 } })).statusCode).toBe(200);
    await first.close();
    const second = await testApp({ stateFile: file });
    expect(second.modelroll.store.get("fraud-model").canaryPercent).toBe(7);
  });

  it("never shares :memory: (each store its own database)", async () => {
    const a = await testApp({ stateFile: ":memory:" });
    const b = await testApp();
    await createRollout(a);
    expect(b.modelroll.store.size).toBe(0);
  });

  it("--fresh starts empty with a new epoch, after copying what the file held next to it", async () => {
    const file = stateFile();
    const first = await testApp({ stateFile: file, epoch: "aaaaaaaaaaaaaaaa" });
    await createRollout(first, spec({ canaryPercent: 5 }));
    await first.close();

    const fresh = await testApp({ stateFile: file, freshState: true, epoch: "bbbbbbbbbbbbbbbb" });
    expect(fresh.modelroll.store.resumed).toBe(false);
    expect(fresh.modelroll.store.size).toBe(0);
    expect((await fresh.inject({ url: "/v1/filter-config" })).json()).toMatchObject({ epoch: "bbbbbbbbbbbbbbbb", rollouts: [] });
    const setAside = fresh.modelroll.state.freshStart;
    expect(setAside).toMatchObject({ previousRollouts: 1 });
    expect(setAside!.keptIn.startsWith(`${file}.before-fresh-`)).toBe(true);
    await fresh.close();

    const kept = new SqliteRolloutState(setAside!.keptIn);
    expect(kept.load()).toMatchObject({ epoch: "aaaaaaaaaaaaaaaa", rollouts: [{ canaryPercent: 5 }] });
    kept.close();
    // Fresh on an empty file keeps no copy.
    const again = await testApp({ stateFile: file, freshState: true });
    expect(again.modelroll.state.freshStart).toBeNull();
    expect(existsSync(file)).toBe(true);
  });
});
