// What the LLM end-to-end tests need on 127.0.0.1: two demo LLM servers (stable v1, canary v2), the controller
// and a real Envoy running build/filter.wasm, on free ports; the filter's series read back from Envoy's admin.
import { renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../../controller/src/envoy/process.ts";
import { type LlmServer, startLlmServer } from "../../controller/src/demo/llm-model.ts";
import { parsePrometheusText } from "../../controller/src/metrics/prometheus-text.ts";
import { startController, type RunningController } from "../../controller/src/server.ts";
import type { BuildAppOptions } from "../../controller/src/app.ts";
import { freePort } from "../../controller/src/net.ts";

export interface LlmStack {
  stable: LlmServer;
  canary: LlmServer;
  controller: RunningController;
  envoy: EnvoyProcess;
  dataUrl: string;
  adminUrl: string;
  stop(): Promise<void>;
}

export async function startStack(opts: { controller?: Partial<BuildAppOptions>; firstTokenMs?: number } = {}): Promise<LlmStack> {
  const behavior = { firstTokenMs: opts.firstTokenMs ?? 20, tokenMs: 2 };
  const stable = await startLlmServer({ version: "v1", behavior });
  const canary = await startLlmServer({ version: "v2", behavior });
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
export async function llmSeries(stack: LlmStack, rollout: string, variant: string): Promise<Record<string, number>> {
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
