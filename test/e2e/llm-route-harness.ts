// What the model-routing, tool-call and shadow-noise end-to-end tests need on 127.0.0.1: model servers of the
// test's choosing behind a real Envoy running build/filter.wasm (stable, canary and shadow clusters), the controller
// ticking fast, and the filter's counters read back from Envoy's admin. The sampling classifier is a chat-completions
// server whose answer is a label drawn at random per request (approve with probability pApprove): a model that does
// not answer one prompt the same way twice, as an LLM sampling at a temperature above 0 does not.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../../controller/src/envoy/process.ts";
import { parsePrometheusText } from "../../controller/src/metrics/prometheus-text.ts";
import { startController, type RunningController } from "../../controller/src/server.ts";
import { freePort } from "../../controller/src/net.ts";

export interface Upstream {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface RouteStack {
  controller: RunningController;
  envoy: EnvoyProcess;
  dataUrl: string;
  adminUrl: string;
  stop(): Promise<void>;
}

export async function startStack(upstreams: { stable: Upstream; canary: Upstream; shadow?: Upstream }): Promise<RouteStack> {
  const [controllerPort, listenPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const controller = await startController({
    host: "127.0.0.1",
    port: controllerPort,
    envoyAdminUrls: [`http://127.0.0.1:${adminPort}`],
    tickIntervalMs: 250,
    logger: false,
  });
  const at = (u: Upstream) => ({ host: "127.0.0.1", port: u.port });
  const yaml = renderBootstrap({
    listen: { host: "127.0.0.1", port: listenPort },
    admin: { host: "127.0.0.1", port: adminPort },
    stable: at(upstreams.stable),
    canary: at(upstreams.canary),
    ...(upstreams.shadow ? { shadow: at(upstreams.shadow) } : {}),
    controller: { host: "127.0.0.1", port: controllerPort },
    pollWaitSeconds: 20,
  });
  const envoy = await startEnvoy({ bootstrapYaml: yaml, adminPort, concurrency: 2 });
  return {
    controller,
    envoy,
    dataUrl: `http://127.0.0.1:${listenPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    async stop() {
      await envoy.stop();
      await controller.close();
    },
  };
}

/** The filter's counters of one rollout and variant, overall slice: stat name (without the modelroll_ prefix) -> value. */
export async function counters(stack: RouteStack, rollout: string, variant: string): Promise<Record<string, number>> {
  const filter = encodeURIComponent(`^wasmcustom\\.modelroll\\.rollout\\.${rollout}\\.variant\\.${variant}\\.`);
  const text = await (await fetch(`${stack.adminUrl}/stats/prometheus?usedonly&filter=${filter}`)).text();
  const out: Record<string, number> = {};
  for (const s of parsePrometheusText(text).samples) {
    if (s.labels.modelroll_segment_dimension !== undefined || s.labels.le !== undefined) continue;
    const extra = Object.entries(s.labels).filter(([k]) => k !== "modelroll_rollout" && k !== "modelroll_variant");
    const name = s.name.replace(/^modelroll_/, "");
    out[`${name}${extra.length ? `{${extra.map(([k, v]) => `${k.replace("modelroll_", "")}=${v}`).join(",")}}` : ""}`] = s.value;
  }
  return out;
}

export interface SamplingServer extends Upstream {
  /** Chat completions answered, by requested model. */
  served: Map<string, number>;
  /** The chance of "approve" from now on. */
  pApprove: number;
}

/** A chat-completions server answering "approve" with probability pApprove, else "deny" (non-streamed). */
export async function startSamplingServer(pApprove: number): Promise<SamplingServer> {
  const served = new Map<string, number>();
  const state = { pApprove };
  let n = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let model = "unknown";
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { model?: unknown };
        if (typeof body.model === "string") model = body.model;
      } catch {
        res.writeHead(400, { "content-type": "application/json" }).end('{"error":{"message":"body is not JSON"}}');
        return;
      }
      served.set(model, (served.get(model) ?? 0) + 1);
      const label = Math.random() < state.pApprove ? "approve" : "deny";
      const answer = {
        id: `chatcmpl-s${n++}`,
        object: "chat.completion",
        created: 0,
        model,
        choices: [{ index: 0, message: { role: "assistant", content: label }, finish_reason: "stop" }],
        usage: { prompt_tokens: 8, completion_tokens: 1, total_tokens: 9 },
      };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    served,
    get pApprove() {
      return state.pApprove;
    },
    set pApprove(p: number) {
      state.pApprove = p;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
