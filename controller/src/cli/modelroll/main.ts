// `modelroll`: the operator CLI. The only place that touches the process: argv, env, stdin/stdout/stderr,
// Ctrl-C and the exit code. What to do is planned by program.ts (pure) and carried out by run.ts.
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { decodeUtf8 } from "../../structured-text.ts";
import { runCli } from "./run.ts";

const version = JSON.parse(await readFile(new URL("../../../../package.json", import.meta.url), "utf8")).version as string;

const interrupt = new AbortController();
process.once("SIGINT", () => interrupt.abort());
process.once("SIGTERM", () => interrupt.abort());
// `modelroll get x | head` closes stdout early: that is the reader's choice, not an error to report.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
});

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return decodeUtf8(Buffer.concat(chunks));
}

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  // Bytes that are not UTF-8 are refused (the API would refuse them), not replaced.
  readFile: async (path) => decodeUtf8(await readFile(path)),
  readStdin,
  fetch: globalThis.fetch,
  now: () => Date.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }),
  signal: interrupt.signal,
  isTTY: process.stdout.isTTY === true,
  env: process.env,
  version,
});
// Let stdout drain (a pipe may still hold the output), then leave with the command's code.
process.exitCode = code;
if (process.stdout.writableLength === 0) process.exit(code);
else process.stdout.once("drain", () => process.exit(code));
