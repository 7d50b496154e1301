// A server the project starts as a child process (Envoy, Prometheus): its output kept as a bounded log, its
// end tracked, a stop that escalates to SIGKILL and then removes the process's working directory, and a
// parent-death signal so it does not outlive this process even when this process is killed with SIGKILL.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { accessSync, constants, rmSync } from "node:fs";

interface ManagedChild {
  child: ChildProcess;
  /** What the process wrote to stdout and stderr, the latest part once it passed the bound. */
  log(): string;
  /** null while it runs; then how it ended: "code 1", "signal SIGTERM", "spawn failed: ...". */
  exited(): string | null;
  /** SIGTERM, SIGKILL after 5 s, then removes `workDir`. */
  stop(): Promise<void>;
  /** True when the kernel sends the process SIGTERM if this process dies (util-linux setpriv --pdeathsig). */
  diesWithParent: boolean;
}

interface SpawnManagedOptions {
  /** A directory the process owns (config, data): removed by stop(). */
  workDir: string;
  /** Past this many characters the log keeps its latest half. */
  maxLogChars: number;
}

const SETPRIV_CANDIDATES = ["/usr/bin/setpriv", "/bin/setpriv"];
let setpriv: string | null | undefined;

/**
 * util-linux's setpriv (Essential on Debian and Ubuntu), if it can set a parent-death signal here. It sets
 * PR_SET_PDEATHSIG and execs the server in place (same pid), so the kernel itself ends the server when its
 * parent dies, however it dies. The signal is tied to the thread that spawned the child: Node spawns from its
 * main thread, which lives as long as the process.
 */
export function setprivForParentDeath(): string | null {
  if (setpriv !== undefined) return setpriv;
  setpriv = null;
  for (const candidate of SETPRIV_CANDIDATES) {
    const probe = spawnSync(candidate, ["--pdeathsig", "TERM", "--", "true"], { stdio: "ignore", timeout: 5000 });
    if (probe.status === 0) {
      setpriv = candidate;
      break;
    }
  }
  return setpriv;
}

function isExecutable(bin: string): boolean {
  try {
    accessSync(bin, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function spawnManaged(bin: string, args: string[], opts: SpawnManagedOptions): ManagedChild {
  // A binary that cannot run is started directly, so its failure stays a spawn error naming it (ENOENT, EACCES)
  // instead of setpriv's exit code.
  const wrapper = bin.includes("/") && !isExecutable(bin) ? null : setprivForParentDeath();
  const child = wrapper
    ? spawn(wrapper, ["--pdeathsig", "TERM", "--", bin, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let logText = "";
  const append = (chunk: Buffer) => {
    logText += chunk.toString();
    if (logText.length > opts.maxLogChars) logText = logText.slice(-Math.floor(opts.maxLogChars / 2));
  };
  // Both are pipes (stdio above), so both exist.
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  let exited: string | null = null;
  const exitPromise = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => {
      exited = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    });
    // Spawn failures (ENOENT, EACCES) come as an event, and without an exit; unheard, it would crash the caller.
    child.on("error", (error) => {
      exited = `spawn failed: ${error.message}`;
      resolve();
    });
  });
  return {
    child,
    log: () => logText,
    exited: () => exited,
    diesWithParent: wrapper !== null,
    async stop() {
      if (exited === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exitPromise;
        clearTimeout(killer);
      }
      rmSync(opts.workDir, { recursive: true, force: true });
    },
  };
}
