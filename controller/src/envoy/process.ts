// Starting, validating and stopping a real Envoy process.
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnManaged } from "../child-process.ts";
import { envoyBinary } from "../paths.ts";

export interface EnvoyProcess {
  adminUrl: string;
  configPath: string;
  child: ChildProcess;
  /** Everything Envoy wrote to stderr so far (its log). */
  log(): string;
  stop(): Promise<void>;
}

export interface StartEnvoyOptions {
  bootstrapYaml: string;
  adminPort: number;
  concurrency?: number;
  logLevel?: string;
  readyTimeoutMs?: number;
}

export function validateEnvoyConfig(configPath: string): { ok: boolean; output: string } {
  const r = spawnSync(envoyBinary(), ["--mode", "validate", "-c", configPath, "--log-level", "error"], { encoding: "utf8", timeout: 60_000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

export async function startEnvoy(opts: StartEnvoyOptions): Promise<EnvoyProcess> {
  const dir = mkdtempSync(join(tmpdir(), "modelroll-envoy-"));
  const configPath = join(dir, "envoy.yaml");
  writeFileSync(configPath, opts.bootstrapYaml);
  const managed = spawnManaged(envoyBinary(), [
    "-c", configPath,
    "--concurrency", String(opts.concurrency ?? 2),
    "--log-level", opts.logLevel ?? "warn",
    // Several Envoys may run side by side (tests, bench): no shared memory for hot restart.
    "--disable-hot-restart",
  ], { workDir: dir, maxLogChars: 2_000_000 });

  const adminUrl = `http://127.0.0.1:${opts.adminPort}`;
  const proc: EnvoyProcess = { adminUrl, configPath, child: managed.child, log: managed.log, stop: managed.stop };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  while (Date.now() < deadline) {
    const exited = managed.exited();
    if (exited !== null) throw new Error(`envoy exited during start-up (${exited}):\n${managed.log().slice(-4000)}`);
    try {
      const res = await fetch(`${adminUrl}/ready`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return proc;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop();
  throw new Error(`envoy did not become ready within ${opts.readyTimeoutMs ?? 20_000} ms:\n${managed.log().slice(-4000)}`);
}
