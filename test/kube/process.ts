// One server process of the Kubernetes test harness (etcd, kube-apiserver, istiod): its output kept as a bounded
// log, its end tracked, a stop that escalates to SIGKILL, and a parent-death signal (util-linux setpriv, as the
// controller's own child processes use) so a crashed or killed test run leaves no server behind. Unlike the
// controller's spawnManaged it takes a working directory and environment, and removes nothing: the harness owns
// its temporary directory and removes it once everything has stopped.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { setprivForParentDeath } from "../../controller/src/child-process.ts";

export interface ServerProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** What the process wrote to stdout and stderr (the latest part once it passed the bound). */
  log(): string;
  /** null while it runs; then how it ended: "code 1", "signal SIGTERM", "spawn failed: ...". */
  exited(): string | null;
  /** SIGTERM, SIGKILL after `graceMs` (5 s by default); resolves once the process has ended. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once (a crash, as the failover tests need); resolves once the process has ended. */
  kill(): Promise<void>;
}

const MAX_LOG = 400_000;

export function startServer(name: string, bin: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): ServerProcess {
  const wrapper = setprivForParentDeath();
  const env = { ...process.env, ...opts.env };
  const child = wrapper
    ? spawn(wrapper, ["--pdeathsig", "KILL", "--", bin, ...args], { cwd: opts.cwd, env, stdio: ["ignore", "pipe", "pipe"] })
    : spawn(bin, args, { cwd: opts.cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  const append = (chunk: Buffer) => {
    text += chunk.toString();
    if (text.length > MAX_LOG) text = text.slice(-MAX_LOG / 2);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  let exited: string | null = null;
  const ended = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => {
      exited = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    });
    child.on("error", (error) => {
      exited = `spawn failed: ${error.message}`;
      resolve();
    });
  });
  return {
    name,
    pid: child.pid,
    log: () => text,
    exited: () => exited,
    async stop(graceMs = 5000) {
      if (exited !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await ended;
      clearTimeout(killer);
    },
    async kill() {
      if (exited !== null) return;
      child.kill("SIGKILL");
      await ended;
    },
  };
}

/** The last lines of a server's log, for an error message. */
export function logTail(server: ServerProcess, lines = 30): string {
  return server.log().trimEnd().split("\n").slice(-lines).join("\n");
}

/** `n` distinct loopback ports nothing listens on right now (all held open until each is known, so no repeats). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => resolve());
      });
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}
