// The stack the data-path benches measure on: one Envoy (1 worker) with the filter in front of an upstream Envoy
// answering fixed bodies by path prefix (fast and steady, so what differs between two rollouts is the filter's
// work), a controller, and the bench's rollouts, each active (a probe under its prefix got a variant) on return.
import { renderBootstrap } from "../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../controller/src/envoy/process.ts";
import { startController } from "../controller/src/server.ts";
import { api, freePort, sendMany, waitFor } from "../test/e2e/harness.ts";
import { fixedUpstreamYaml } from "./lib.ts";

export interface FixedAnswerStack {
  /** The filter's listener. */
  base: string;
  controllerUrl: string;
  /** The filter Envoy's admin endpoint. */
  adminUrl: string;
  envoy: EnvoyProcess;
  stop(): Promise<void>;
}

export interface FixedAnswerStackOptions {
  routes: Array<{ prefix: string; body: string; headers?: Record<string, string> }>;
  /** Specs of manual rollouts, each with `match.pathPrefix` ending in "/" (probed as `<prefix>p`). */
  rollouts: Array<{ name: string; match: { pathPrefix: string } } & Record<string, unknown>>;
  /** Another build of the filter (default build/filter.wasm), e.g. to measure a baseline in the same run. */
  wasmPath?: string;
}

export async function startFixedAnswerStack(options: FixedAnswerStackOptions): Promise<FixedAnswerStack> {
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const [upAdmin, upPort] = [await freePort(), await freePort()];
    const upstream = await startEnvoy({
      bootstrapYaml: fixedUpstreamYaml(upAdmin, [{ name: "models", port: upPort, routes: options.routes }]),
      adminPort: upAdmin,
      concurrency: 1,
    });
    stops.push(() => upstream.stop());
    const [ctlPort, admin, listen] = [await freePort(), await freePort(), await freePort()];
    const controller = await startController({ host: "127.0.0.1", port: ctlPort, envoyAdminUrls: [`http://127.0.0.1:${admin}`] });
    stops.push(() => controller.close());
    const envoy = await startEnvoy({
      bootstrapYaml: renderBootstrap({
        listen: { host: "127.0.0.1", port: listen },
        admin: { host: "127.0.0.1", port: admin },
        stable: { host: "127.0.0.1", port: upPort },
        canary: { host: "127.0.0.1", port: upPort },
        controller: { host: "127.0.0.1", port: ctlPort },
        ...(options.wasmPath ? { wasmPath: options.wasmPath } : {}),
      }),
      adminPort: admin,
      concurrency: 1,
    });
    stops.push(() => envoy.stop());
    for (const spec of options.rollouts) {
      const r = await api(controller.url, "POST", "/v1/rollouts", spec);
      if (r.status !== 201) throw new Error(`bench: rollout ${spec.name} refused: ${JSON.stringify(r.json)}`);
    }
    const base = `http://127.0.0.1:${listen}`;
    const probeUrls = options.rollouts.map((r) => `${base}${r.match.pathPrefix}p`);
    await waitFor(
      "rollouts active",
      async () =>
        (
          await sendMany(
            (i) => probeUrls[i],
            probeUrls.length,
            () => ({ "x-user-id": "w" }),
            1,
          )
        ).every((x) => x.variant !== null),
      15_000,
      50,
    );
    return { base, controllerUrl: controller.url, adminUrl: `http://127.0.0.1:${admin}`, envoy, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
