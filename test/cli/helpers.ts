// Running `modelroll`: in-process through runCli (the same code the entry point runs, with captured output),
// or as the real command, a subprocess of bin/modelroll.mjs.
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { runCli } from "../../controller/src/cli/modelroll/run.ts";

export const BIN = fileURLToPath(new URL("../../bin/modelroll.mjs", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface InProcessOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
  isTTY?: boolean;
  signal?: AbortSignal;
}

/** The CLI in this process, against whatever server the env or argv names. */
export async function cli(argv: string[], options: InProcessOptions = {}): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    readFile: (path) => readFile(path, "utf8"),
    readStdin: async () => options.stdin ?? "",
    fetch: globalThis.fetch,
    now: () => Date.now(),
    sleep: (ms, signal) => sleep(ms, undefined, { signal }),
    signal: options.signal ?? new AbortController().signal,
    isTTY: options.isTTY ?? false,
    env: options.env ?? {},
    version: "test",
  });
  return { code, stdout, stderr };
}

/** A CLI bound to one controller. */
export function cliFor(server: string, env: Record<string, string> = {}) {
  return (argv: string[], options: InProcessOptions = {}) => cli(argv, { ...options, env: { MODELROLL_SERVER: server, ...env, ...options.env } });
}

export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number>;
  /** Polls the output until `check` holds; bounded. */
  waitFor(what: string, check: (stdout: string) => boolean, timeoutMs?: number): Promise<void>;
  stop(): Promise<number>;
}

/** The real `modelroll` command as a child process (no TTY), with the environment given (not the test's). */
export function spawnCli(argv: string[], env: Record<string, string> = {}, stdin?: string): Running {
  const child = spawn(process.execPath, [BIN, ...argv], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
  child.stdin!.end(stdin ?? "");
  const exited = new Promise<number>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  const running: Running = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(what, check, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      while (!check(out)) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}; stdout:\n${out}\nstderr:\n${err}`);
        if (child.exitCode !== null) throw new Error(`modelroll exited (${child.exitCode}) before ${what}; stdout:\n${out}\nstderr:\n${err}`);
        await sleep(25);
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return running;
}

/** Runs the real command to its end (bounded). */
export async function runCliProcess(argv: string[], env: Record<string, string> = {}, stdin?: string, timeoutMs = 60_000): Promise<CliResult> {
  const running = spawnCli(argv, env, stdin);
  const timer = setTimeout(() => running.child.kill("SIGKILL"), timeoutMs);
  const code = await running.exited;
  clearTimeout(timer);
  return { code, stdout: running.stdout(), stderr: running.stderr() };
}
