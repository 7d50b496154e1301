// What the LLM end-to-end tests need on 127.0.0.1: two demo LLM servers (stable v1, canary v2), the controller
// and a real Envoy running build/filter.wasm, on free ports; the filter's series read back from Envoy's admin.
import { renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../../controller/src/envoy/process.ts";
import { type LlmServer, startLlmServer } from "../../controller/src/demo/llm-model.ts";
import { parsePrometheusText } from "../../controller/src/metrics/prometheus-text.ts";
import { startController, type RunningController } from "../../controller/src/server.ts";
import type { BuildAppOptions } from "../../controller/src/app.ts";
import { freePort } from "../../controller/src/net.ts";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnManaged } from "../../controller/src/child-process.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { within } from "../bounded.ts";

/** What a test reaches of a model server: its address and a stop. */
export interface LlmEndpoint {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A demo LLM server in a child process (llm-server-process.ts), stopped with close(). */
export async function startLlmProcess(version: string, behavior: Record<string, unknown>): Promise<LlmEndpoint> {
  const workDir = mkdtempSync(join(tmpdir(), "modelroll-llm-"));
  const proc = spawnManaged(process.execPath, ["--import", "tsx", join(repoRoot, "test", "e2e", "llm-server-process.ts"), version, JSON.stringify(behavior)], {
    workDir,
    maxLogChars: 20_000,
  });
  const port = await within(
    30_000,
    `the demo LLM server ${version} to listen`,
    new Promise<number>((resolve, reject) => {
      let seen = "";
      proc.child.stdout?.on("data", (c: Buffer) => {
        seen += c.toString();
        const m = /\{"port":(\d+)\}/.exec(seen);
        if (m) resolve(Number(m[1]));
      });
      proc.child.on("exit", () => reject(new Error(`the demo LLM server ${version} exited: ${proc.log()}`)));
    }),
  );
  return { url: `http://127.0.0.1:${port}`, port, close: () => proc.stop() };
}

export interface LlmStack<S extends LlmEndpoint = LlmServer> {
  stable: S;
  canary: S;
  controller: RunningController;
  envoy: EnvoyProcess;
  dataUrl: string;
  adminUrl: string;
  stop(): Promise<void>;
}

/**
 * The stack around two demo LLM servers: in this process (default, first token after `firstTokenMs`), or the
 * `servers` the caller started (e.g. in their own processes, startLlmProcess).
 */
export async function startStack(opts?: { controller?: Partial<BuildAppOptions>; firstTokenMs?: number }): Promise<LlmStack>;
export async function startStack<S extends LlmEndpoint>(opts: {
  controller?: Partial<BuildAppOptions>;
  servers: { stable: S; canary: S };
}): Promise<LlmStack<S>>;
export async function startStack(
  opts: { controller?: Partial<BuildAppOptions>; firstTokenMs?: number; servers?: { stable: LlmEndpoint; canary: LlmEndpoint } } = {},
): Promise<LlmStack<LlmEndpoint>> {
  if (opts.servers) return startStackWith(opts.servers.stable, opts.servers.canary, opts);
  const behavior = { firstTokenMs: opts.firstTokenMs ?? 20, tokenMs: 2 };
  return startStackWith(await startLlmServer({ version: "v1", behavior }), await startLlmServer({ version: "v2", behavior }), opts);
}

async function startStackWith<S extends LlmEndpoint>(stable: S, canary: S, opts: { controller?: Partial<BuildAppOptions> } = {}): Promise<LlmStack<S>> {
  const [controllerPort, listenPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const controller = await startController({
    ...opts.controller,
    host: "127.0.0.1",
    port: controllerPort,
    envoyAdminUrls: [`http://127.0.0.1:${adminPort}`],
    logger: false,
  });
  const yaml = renderBootstrap({
    listen: { host: "127.0.0.1", port: listenPort },
    admin: { host: "127.0.0.1", port: adminPort },
    stable: { host: "127.0.0.1", port: stable.port },
    canary: { host: "127.0.0.1", port: canary.port },
    controller: { host: "127.0.0.1", port: controllerPort },
    pollWaitSeconds: 20,
  });
  const envoy = await startEnvoy({ bootstrapYaml: yaml, adminPort, concurrency: 2 });
  return {
    stable,
    canary,
    controller,
    envoy,
    dataUrl: `http://127.0.0.1:${listenPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    async stop() {
      await envoy.stop();
      await controller.close();
      await stable.close();
      await canary.close();
    },
  };
}

/** The filter's series for one rollout and variant (overall slice): "name" or "name{label=value}" -> value; buckets left out. */
export async function llmSeries(stack: LlmStack<LlmEndpoint>, rollout: string, variant: string): Promise<Record<string, number>> {
  const filter = encodeURIComponent(`^wasmcustom\\.modelroll\\.rollout\\.${rollout}\\.variant\\.${variant}\\.`);
  const text = await (await fetch(`${stack.adminUrl}/stats/prometheus?usedonly&filter=${filter}`)).text();
  const out: Record<string, number> = {};
  for (const s of parsePrometheusText(text).samples) {
    if (s.labels.modelroll_segment_dimension !== undefined || s.labels.le !== undefined) continue;
    const extra = Object.entries(s.labels).filter(([k]) => k !== "modelroll_rollout" && k !== "modelroll_variant");
    out[`${s.name}${extra.length ? `{${extra.map(([k, v]) => `${k.replace("modelroll_", "")}=${v}`).join(",")}}` : ""}`] = s.value;
  }
  return out;
}
