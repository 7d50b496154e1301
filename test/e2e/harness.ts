// Starts what an end-to-end test needs on 127.0.0.1: two demo model servers, the controller and a real
// Envoy running build/filter.wasm, on free ports. Every wait is a bounded loop.
import { Agent, request } from "node:http";
import { renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../../controller/src/envoy/process.ts";
import { startModelServer, type ModelServer } from "../../controller/src/demo/model-server.ts";
import { startController } from "../../controller/src/server.ts";
import type { BuildAppOptions } from "../../controller/src/app.ts";
import { freePort } from "../../controller/src/net.ts";

export { freePort };

export interface Stack {
  stable: ModelServer;
  canary: ModelServer;
  /** Behind the Envoy cluster "shadow". */
  shadow: ModelServer;
  controller: { url: string; close(): Promise<void> } | null;
  controllerPort: number;
  envoy: EnvoyProcess;
  dataUrl: string;
  adminUrl: string;
  /** The Envoy bootstrap the stack runs (to start a variant of it). */
  bootstrapYaml: string;
  startController(): Promise<void>;
  stopController(): Promise<void>;
  restartEnvoy(): Promise<void>;
  stop(): Promise<void>;
}

export async function startStack(
  opts: {
    concurrency?: number;
    pollWaitSeconds?: number;
    canaryPort?: number;
    shadowPort?: number;
    logLevel?: string;
    /** Extra controller options, e.g. a short engine tick. */
    controller?: Partial<BuildAppOptions>;
    /** The model versions the demo servers answer with (default v1, v2, v3). */
    versions?: { stable?: string; canary?: string; shadow?: string };
  } = {},
): Promise<Stack> {
  const stable = await startModelServer({ version: opts.versions?.stable ?? "v1" });
  const canary = await startModelServer({ version: opts.versions?.canary ?? "v2" });
  const shadow = await startModelServer({ version: opts.versions?.shadow ?? "v3" });
  const [controllerPort, listenPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const yaml = renderBootstrap({
    listen: { host: "127.0.0.1", port: listenPort },
    admin: { host: "127.0.0.1", port: adminPort },
    stable: { host: "127.0.0.1", port: stable.port },
    canary: { host: "127.0.0.1", port: opts.canaryPort ?? canary.port },
    shadow: { host: "127.0.0.1", port: opts.shadowPort ?? shadow.port },
    controller: { host: "127.0.0.1", port: controllerPort },
    pollWaitSeconds: opts.pollWaitSeconds ?? 20,
    ...(opts.controller?.filterToken ? { filterToken: opts.controller.filterToken } : {}),
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const stack: Stack = {
    bootstrapYaml: yaml,
    stable,
    canary,
    shadow,
    controller: null,
    controllerPort,
    envoy: null as unknown as EnvoyProcess,
    dataUrl: `http://127.0.0.1:${listenPort}`,
    adminUrl,
    async startController() {
      stack.controller = await startController({ ...opts.controller, host: "127.0.0.1", port: controllerPort, envoyAdminUrls: [adminUrl], logger: false });
    },
    async stopController() {
      await stack.controller?.close();
      stack.controller = null;
    },
    async restartEnvoy() {
      await stack.envoy.stop();
      stack.envoy = await startEnvoy({ bootstrapYaml: yaml, adminPort, concurrency: opts.concurrency ?? 2 });
    },
    async stop() {
      await stack.envoy?.stop();
      await stack.controller?.close();
      // The stack's servers, including any a test put in place of the first ones (a repointed deployment).
      await stack.stable.close();
      await stack.canary.close();
      await stack.shadow.close();
      agent.destroy();
    },
  };
  await stack.startController();
  stack.envoy = await startEnvoy({ bootstrapYaml: yaml, adminPort, concurrency: opts.concurrency ?? 2, logLevel: opts.logLevel });
  return stack;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export interface Reply {
  status: number;
  /** The variant the filter says it chose (response header). */
  variant: string | null;
  /** The model version that actually answered: v1 = stable server, v2 = canary server. */
  modelVersion: string | null;
  body: string;
}

export function send(url: string, headers: Record<string, string> = {}, body = '{"features":[1,2,3]}'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", agent, headers: { "content-type": "application/json", ...headers }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let modelVersion: string | null = null;
        try {
          modelVersion = (JSON.parse(text) as { model_version?: string }).model_version ?? null;
        } catch {
          modelVersion = null;
        }
        resolve({ status: res.statusCode ?? 0, variant: (res.headers["x-rollout-variant"] as string) ?? null, modelVersion, body: text });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** Sends n requests, `concurrency` at a time; headersFor(i) gives each request's headers. */
export async function sendMany(
  url: string | ((i: number) => string),
  n: number,
  headersFor: (i: number) => Record<string, string>,
  concurrency = 32,
  bodyFor?: (i: number) => string,
): Promise<Reply[]> {
  const replies = new Array<Reply>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      replies[i] = await send(typeof url === "string" ? url : url(i), headersFor(i), bodyFor?.(i));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return replies;
}

export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/** Polls `check` every `intervalMs` until it returns true or `timeoutMs` passes; returns the elapsed ms or throws. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000, intervalMs = 5): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < timeoutMs) {
    if (await check()) return performance.now() - start;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Waits until every Envoy worker has the rollout: `probes` consecutive keyed requests all carry a variant header. */
export async function waitForRolloutActive(dataUrl: string, probes = 20): Promise<void> {
  await waitFor(
    "the filter to receive the rollout",
    async () => {
      const replies = await sendMany(dataUrl, probes, (i) => ({ "x-user-id": `probe-${i}` }), 4);
      return replies.every((r) => r.variant !== null);
    },
    15_000,
    20,
  );
}

/** A decision as GET /v1/rollouts/{name}/history returns it (engine/state.ts Decision, as JSON). */
export interface DecisionView {
  at: number;
  kind: string;
  from: string;
  to: string;
  reason: string;
  stage: { index: number; name: string } | null;
  measurements: MeasurementView[];
}

export interface MeasurementView {
  gate: string;
  status: string;
  segment: { dimension: string; value: string } | null;
  stableValue: number | null;
  candidateValue: number | null;
  threshold: { kind: string; value: number } | null;
  sampleSizes: { stable: number; candidate: number };
  intervals: { stable?: IntervalView; candidate?: IntervalView; comparison?: IntervalView };
  reason: string;
}

export interface IntervalView {
  lower: number | null;
  upper: number | null;
}

/** Every engine decision of a rollout, oldest first. */
export async function decisionsOf(controllerUrl: string, rollout: string): Promise<DecisionView[]> {
  return (await api(controllerUrl, "GET", `/v1/rollouts/${rollout}/history`)).json.decisions;
}

/** A rollout's phase, as the API reports it. */
export async function phaseOf(controllerUrl: string, rollout: string): Promise<string> {
  return (await api(controllerUrl, "GET", `/v1/rollouts/${rollout}`)).json.phase;
}

/**
 * An engine-managed rollout spec on `/${name}`, sticky on x-user-id, with what the default policy requires
 * of a minor change (owner, a written rollback condition); `extra` adds the stages and gates under test.
 */
export function managedSpec(name: string, rollbackCondition: string, extra: Record<string, unknown>): Record<string, unknown> & { name: string } {
  return { name, match: { pathPrefix: `/${name}` }, stickyKey: { header: "x-user-id" }, owner: "team-fraud", rollbackCondition, changeKind: "minor", ...extra };
}

/** Creates an engine-managed rollout and waits until the engine has started its first canary stage. */
export async function createManaged(controllerUrl: string, spec: { name: string }): Promise<void> {
  const created = await api(controllerUrl, "POST", "/v1/rollouts", spec);
  if (created.status !== 201) throw new Error(`${spec.name}: creating it answered ${created.status}: ${JSON.stringify(created.json)}`);
  if (created.json.managed !== true) throw new Error(`${spec.name}: created, but not engine-managed: ${JSON.stringify(created.json)}`);
  await waitFor(`${spec.name}: the first canary stage`, async () => (await phaseOf(controllerUrl, spec.name)) === "Canary", 10_000, 50);
}
