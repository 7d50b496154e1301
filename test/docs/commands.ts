// Running what the README tells a reader to type: shell blocks through bash with a curl that reports each HTTP
// status, and console sessions command by command, their output held against what the README shows.
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { masked, type ConsoleCommand } from "./markdown.ts";

export interface Ran {
  code: number | null;
  output: string;
  /** HTTP status of every curl call, in order (0: no answer). */
  statuses: number[];
}

// Written after the body, which may not end in a newline, and on stderr, which interleaves with stdout.
const STATUS_LINE = /\n?DOCTEST-CURL-STATUS (\d{3})\n/g;

/**
 * A bin directory whose `curl` is the real one, without the progress meter, writing each call's HTTP status
 * to stderr: curl exits 0 on a 404, so the status is what tells a refused example from a working one.
 */
export function curlShim(dir: string, realCurl: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "curl");
  writeFileSync(path, `#!/bin/sh\nexec '${realCurl}' --no-progress-meter --write-out '%{stderr}\\nDOCTEST-CURL-STATUS %{http_code}\\n' "$@"\n`);
  chmodSync(path, 0o755);
  return dir;
}

export interface RunOptions {
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
}

/** A script through `bash -e -o pipefail`, bounded; stdout and stderr together, as a terminal shows them. */
export function runScript(script: string, options: RunOptions): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-e", "-o", "pipefail", "-c", script], {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    child.stdout!.on("data", (c: Buffer) => void (output += c.toString()));
    child.stderr!.on("data", (c: Buffer) => void (output += c.toString()));
    const timer = setTimeout(() => {
      output += `\n[doc test: stopped after ${options.timeoutMs} ms]`;
      killGroup(child.pid!, "SIGKILL");
    }, options.timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output: output.replace(STATUS_LINE, "\n"), statuses: [...output.matchAll(STATUS_LINE)].map((m) => Number(m[1])) });
    });
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

// ---------------------------------------------------------------------------------------------------------
// Console sessions

/**
 * The README's output lines the actual output must contain, compared with numbers masked (masked()): every
 * line for a command that ends, and for a live view (`--watch`, redrawn on every tick, its holds changing with
 * the traffic) its first line and the lines without numbers.
 */
export function expectedLines(command: ConsoleCommand): string[] {
  const live = /\s--watch\b/.test(command.command);
  return command.output.filter((l, i) => l.trim() !== "" && (!live || i === 0 || !/\d/.test(l))).map(masked);
}

export function missingLines(command: ConsoleCommand, actual: string): string[] {
  const have = new Set(actual.split("\n").map(masked));
  return expectedLines(command).filter((l) => !have.has(l));
}

export interface Background {
  output(): string;
  stop(): Promise<void>;
}

/** A command that runs until interrupted (`get --watch`), in its own process group. */
export function startBackground(command: string, options: Omit<RunOptions, "timeoutMs">): Background {
  const child = spawn("bash", ["-c", command], { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  child.stdout!.on("data", (c: Buffer) => void (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => void (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(child.pid!, "SIGINT");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
        killGroup(child.pid!, "SIGKILL");
      }
    },
  };
}
