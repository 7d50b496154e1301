// The compiled controller (`npm run controller`, controller/dist/cli/controller.js) as a real child process on a
// free loopback port with its own state file: for what only a real process shows (a fatal error that kills it,
// the event loop of the process itself). Needs `npm run build`.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ENTRY = fileURLToPath(new URL("../../controller/dist/cli/controller.js", import.meta.url));

export interface RealController {
  url: string;
  child: ChildProcess;
  /** Whether the process is still running (no exit code, no signal). */
  alive(): boolean;
  output(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts the controller and waits (bounded) for its "listening on" line; on `options.port` if given, else a free one. */
export async function startRealController(args: string[] = [], env: Record<string, string> = {}, options: { port?: number } = {}): Promise<RealController> {
  const dir = mkdtempSync(join(tmpdir(), "modelroll-real-"));
  const port = options.port ?? (await freePort());
  const child = spawn(
    process.execPath,
    [ENTRY, "--listen", `127.0.0.1:${port}`, "--state", join(dir, "state.db"), "--envoy-admin", "http://127.0.0.1:1", ...args],
    { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (output += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (output += c));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const until = Date.now() + 30_000;
  while (!output.includes("listening on")) {
    if (!alive()) throw new Error(`controller exited before listening:\n${output}`);
    if (Date.now() > until) {
      child.kill("SIGKILL");
      throw new Error(`controller not listening after 30 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    alive,
    output: () => output,
    async stop() {
      if (alive()) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
