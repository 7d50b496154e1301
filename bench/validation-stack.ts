// The setup both validation benches measure on: one Envoy (1 worker) with the filter in front of a fixed
// upstream, and for 1, 16 and 256 KB answers two rollouts on the same bodies: `plainN` only routes, `valN`
// adds output analysis and an output schema.
import { renderBootstrap } from "../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../controller/src/envoy/process.ts";
import { startController } from "../controller/src/server.ts";
import { api, freePort, sendMany, waitFor } from "../test/e2e/harness.ts";
import { fixedUpstreamYaml } from "./lib.ts";

export const SIZES_KB = [1, 16, 256];

const schema = {
  type: "object",
  required: ["prediction", "confidence", "model_version"],
  properties: {
    prediction: { enum: ["approve", "review", "decline"] },
    confidence: { type: "number", minimum: 0, maximum: 1 },
    model_version: { type: "string" },
    items: { type: "array", items: { type: "object", properties: { id: { type: "integer" }, label: { type: "string" }, score: { type: "number" } } } },
  },
};

/** A valid model answer of about `kb` KB: the seed's fields plus per-item scores. */
function answer(kb: number): string {
  const items: Array<{ id: number; label: string; score: number }> = [];
  let body = "";
  for (let i = 0; body.length < kb * 1024; i++) {
    items.push({ id: i, label: ["approve", "review", "decline"][i % 3], score: Math.round((i % 100) * 7.3) / 1000 });
    if (i % 8 === 0) body = JSON.stringify({ prediction: "approve", confidence: 0.93, model_version: "v1", items });
  }
  return JSON.stringify({ prediction: "approve", confidence: 0.93, model_version: "v1", items });
}

export interface ValidationStack {
  /** The filter's listener: `${base}/plainN/p` and `${base}/valN/p`. */
  base: string;
  controllerUrl: string;
  /** The Envoy running the filter. */
  envoy: EnvoyProcess;
  /** The answer body per size in KB. */
  bodies: Record<number, string>;
  stop(): Promise<void>;
}

/** `wasmPath`: another build of the filter (default build/filter.wasm), e.g. to measure a baseline in the same run. */
export async function startValidationStack(wasmPath?: string): Promise<ValidationStack> {
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const [upAdmin, upPort] = [await freePort(), await freePort()];
    const bodies: Record<number, string> = Object.fromEntries(SIZES_KB.map((kb) => [kb, answer(kb)]));
    const upstream = await startEnvoy({
      bootstrapYaml: fixedUpstreamYaml(upAdmin, [
        {
          name: "models",
          port: upPort,
          routes: SIZES_KB.flatMap((kb) => [
            { prefix: `/plain${kb}/`, body: bodies[kb] },
            { prefix: `/val${kb}/`, body: bodies[kb] },
          ]),
        },
      ]),
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
        ...(wasmPath ? { wasmPath } : {}),
      }),
      adminPort: admin,
      concurrency: 1,
    });
    stops.push(() => envoy.stop());
    for (const kb of SIZES_KB) {
      for (const [name, output] of [
        [`plain${kb}`, undefined],
        [`val${kb}`, { schema, labels: ["approve", "review", "decline"], maxBodyBytes: 1024 * 1024 }],
      ] as const) {
        const r = await api(controller.url, "POST", "/v1/rollouts", {
          name,
          match: { pathPrefix: `/${name}/` },
          stickyKey: { header: "x-user-id" },
          ...(output ? { output } : {}),
        });
        if (r.status !== 201) throw new Error(JSON.stringify(r.json));
      }
    }
    const base = `http://127.0.0.1:${listen}`;
    const probeUrls = SIZES_KB.flatMap((kb) => [`${base}/plain${kb}/p`, `${base}/val${kb}/p`]);
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
    return { base, controllerUrl: controller.url, envoy, bodies, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
