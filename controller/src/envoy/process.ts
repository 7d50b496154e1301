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
  /** True when Envoy gets SIGTERM from the kernel if this process dies, even by SIGKILL (see spawnManaged). */
  diesWithParent: boolean;
}

interface StartEnvoyOptions {
  bootstrapYaml: string;
  adminPort: number;
  concurrency?: number;
  logLevel?: string;
  readyTimeoutMs?: number;
}

/** The config path of the Envoy answering on this admin URL (/server_info), or null if it cannot be read. */
async function configPathAt(adminUrl: string): Promise<string | null> {
  try {
    const res = await fetch(`${adminUrl}/server_info`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) return null;
    const info = (await res.json()) as { command_line_options?: { config_path?: string } };
    return info.command_line_options?.config_path ?? null;
  } catch {
    return null;
  }
}

export function validateEnvoyConfig(configPath: string): { ok: boolean; output: string } {
  const r = spawnSync(envoyBinary(), ["--mode", "validate", "-c", configPath, "--log-level", "error"], { encoding: "utf8", timeout: 60_000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

export async function startEnvoy(opts: StartEnvoyOptions): Promise<EnvoyProcess> {
  const dir = mkdtempSync(join(tmpdir(), "modelroll-envoy-"));
  const configPath = join(dir, "envoy.yaml");
  writeFileSync(configPath, opts.bootstrapYaml);
  const managed = spawnManaged(
    envoyBinary(),
    [
      "-c",
      configPath,
      "--concurrency",
      String(opts.concurrency ?? 2),
      "--log-level",
      opts.logLevel ?? "warn",
      // Several Envoys may run side by side (tests, bench): no shared memory for hot restart.
      "--disable-hot-restart",
    ],
    { workDir: dir, maxLogChars: 2_000_000 },
  );

  const adminUrl = `http://127.0.0.1:${opts.adminPort}`;
  const proc: EnvoyProcess = { adminUrl, configPath, child: managed.child, log: managed.log, stop: managed.stop, diesWithParent: managed.diesWithParent };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  while (Date.now() < deadline) {
    const exited = managed.exited();
    if (exited !== null) throw new Error(`envoy exited during start-up (${exited}):\n${managed.log().slice(-4000)}`);
    try {
      const res = await fetch(`${adminUrl}/ready`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) {
        // Another Envoy on the admin port (one left running) would answer /ready too, while this one dies on
        // "cannot bind": the answer counts only from the Envoy started here, known by its config path.
        const owner = await configPathAt(adminUrl);
        if (owner === configPath) return proc;
        if (owner !== null) {
          await proc.stop();
          throw new Error(`envoy admin port ${opts.adminPort} is answered by another Envoy (config ${owner}); stop that one or choose another admin port`);
        }
      }
    } catch (error) {
      if ((error as Error).message.startsWith("envoy admin port")) throw error;
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop();
  throw new Error(`envoy did not become ready within ${opts.readyTimeoutMs ?? 20_000} ms:\n${managed.log().slice(-4000)}`);
}
