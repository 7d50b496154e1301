// A server the project starts as a child process (Envoy, Prometheus): its output kept as a bounded log, its
// end tracked, and a stop that escalates to SIGKILL and then removes the process's working directory.
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";

export interface ManagedChild {
  child: ChildProcess;
  /** What the process wrote to stdout and stderr, the latest part once it passed the bound. */
  log(): string;
  /** null while it runs; then how it ended: "code 1", "signal SIGTERM", "spawn failed: ...". */
  exited(): string | null;
  /** SIGTERM, SIGKILL after 5 s, then removes `workDir`. */
  stop(): Promise<void>;
}

export interface SpawnManagedOptions {
  /** A directory the process owns (config, data): removed by stop(). */
  workDir: string;
  /** Past this many characters the log keeps its latest half. */
  maxLogChars: number;
}

export function spawnManaged(bin: string, args: string[], opts: SpawnManagedOptions): ManagedChild {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let logText = "";
  const append = (chunk: Buffer) => {
    logText += chunk.toString();
    if (logText.length > opts.maxLogChars) logText = logText.slice(-Math.floor(opts.maxLogChars / 2));
  };
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
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
