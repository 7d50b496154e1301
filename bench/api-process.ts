// The compiled controller as its own process for the API benches (bench:writes, bench:list), so the load
// generator does not share its event loop; CONTROLLER_DIST=/path/to/controller/dist runs another build (main's,
// for a before/after in the same session). Seeding and requests go over loopback HTTP (fetch, keep-alive).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const DIST = resolve(process.env.CONTROLLER_DIST ?? "controller/dist");

export interface ApiProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

export async function startApi(): Promise<ApiProcess> {
  const dir = mkdtempSync(join(tmpdir(), "modelroll-bench-api-"));
  const port = await freePort();
  // BENCH_PROFILE=DIR: a V8 CPU profile of the controller per run, into DIR (node --cpu-prof).
  const profile = process.env.BENCH_PROFILE ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_PROFILE] : [];
  const child = spawn(
    process.execPath,
    [
      ...profile,
      join(DIST, "cli/controller.js"),
      "--listen",
      `127.0.0.1:${port}`,
      "--state",
      join(dir, "state.db"),
      "--envoy-admin",
      "http://127.0.0.1:1",
      "--tick-ms",
      "3600000",
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, MODELROLL_LOG_LEVEL: "error" },
    },
  );
  let out = "";
  child.stdout?.setEncoding("utf8").on("data", (c: string) => (out += c));
  const until = Date.now() + 60_000;
  while (!out.includes("listening on")) {
    if (child.exitCode !== null || Date.now() > until) throw new Error(`bench: the controller did not start:\n${out}`);
    await new Promise((done) => setTimeout(done, 20));
  }
  const exited = new Promise<void>((done) => child.on("exit", () => done()));
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One request; resolves with the status and the milliseconds it took (the body read to its end). */
export async function timed(url: string, method: "GET" | "POST" | "PUT", body?: unknown): Promise<{ status: number; ms: number; bytes: number }> {
  const start = performance.now();
  const response = await fetch(url, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  const text = await response.text();
  return { status: response.status, ms: performance.now() - start, bytes: text.length };
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** Creates `n` manual rollouts m00000.. on their own path prefixes. */
export async function seed(url: string, n: number): Promise<void> {
  await pool(n, 16, async (i) => {
    const name = `m${String(i).padStart(5, "0")}`;
    const r = await timed(`${url}/v1/rollouts`, "POST", { name, match: { pathPrefix: `/v1/${name}` }, stickyKey: { header: "x-user-id" } });
    if (r.status !== 201) throw new Error(`bench: creating ${name}: ${r.status}`);
  });
}
