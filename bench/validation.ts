// Benchmark (not a test): what reading and validating answers costs on the data path, per KB of answer.
// One Envoy (1 worker) with the filter in front of a fixed upstream; for 1, 16 and 256 KB answers, two
// rollouts on the same bodies: one that only routes, one with output analysis and an output schema.
//   npm run bench:validation   (needs wrk)
import { renderBootstrap } from "../controller/src/envoy/bootstrap.ts";
import { startEnvoy } from "../controller/src/envoy/process.ts";
import { startController } from "../controller/src/server.ts";
import { api, freePort, sendMany, waitFor } from "../test/e2e/harness.ts";
import { envoyVersion, fixedUpstreamYaml, keysScript, median, requireWrk, wrk } from "./lib.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const SIZES_KB = [1, 16, 256];

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

requireWrk();
const script = keysScript();
const stops: Array<() => Promise<void>> = [];
try {
  const [upAdmin, upPort] = [await freePort(), await freePort()];
  const bodies = Object.fromEntries(SIZES_KB.map((kb) => [kb, answer(kb)]));
  const upstream = await startEnvoy({
    bootstrapYaml: fixedUpstreamYaml(upAdmin, [{ name: "models", port: upPort, routes: SIZES_KB.flatMap((kb) => [{ prefix: `/plain${kb}/`, body: bodies[kb] }, { prefix: `/val${kb}/`, body: bodies[kb] }]) }]),
    adminPort: upAdmin,
    concurrency: 1,
  });
  stops.push(() => upstream.stop());
  const [ctlPort, admin, listen] = [await freePort(), await freePort(), await freePort()];
  const controller = await startController({ host: "127.0.0.1", port: ctlPort, envoyAdminUrls: [`http://127.0.0.1:${admin}`] });
  stops.push(() => controller.close());
  const envoy = await startEnvoy({
    bootstrapYaml: renderBootstrap({
      listen: { host: "127.0.0.1", port: listen }, admin: { host: "127.0.0.1", port: admin },
      stable: { host: "127.0.0.1", port: upPort }, canary: { host: "127.0.0.1", port: upPort }, controller: { host: "127.0.0.1", port: ctlPort },
    }),
    adminPort: admin,
    concurrency: 1,
  });
  stops.push(() => envoy.stop());
  for (const kb of SIZES_KB) {
    for (const [name, output] of [[`plain${kb}`, undefined], [`val${kb}`, { schema, labels: ["approve", "review", "decline"], maxBodyBytes: 1024 * 1024 }]] as const) {
      const r = await api(controller.url, "POST", "/v1/rollouts", { name, match: { pathPrefix: `/${name}/` }, stickyKey: { header: "x-user-id" }, ...(output ? { output } : {}) });
      if (r.status !== 201) throw new Error(JSON.stringify(r.json));
    }
  }
  const base = `http://127.0.0.1:${listen}`;
  const probeUrls = SIZES_KB.flatMap((kb) => [`${base}/plain${kb}/p`, `${base}/val${kb}/p`]);
  await waitFor("rollouts active", async () => (await sendMany((i) => probeUrls[i], probeUrls.length, () => ({ "x-user-id": "w" }), 1)).every((x) => x.variant !== null), 15_000, 50);

  console.log(`\nmodelroll validation bench (${REPEATS} x ${SECONDS}s per point, medians; ${envoyVersion()}, 1 worker)`);
  for (const kb of SIZES_KB) {
    const bodyKb = Buffer.byteLength(bodies[kb]) / 1024;
    const plainUrl = `${base}/plain${kb}/p`;
    const valUrl = `${base}/val${kb}/p`;
    await wrk(plainUrl, 2, 2, script);
    await wrk(valUrl, 2, 2, script);
    const light = { plain: [] as number[], val: [] as number[] };
    const sat = { plain: [] as number[], val: [] as number[] };
    for (let i = 0; i < REPEATS; i++) {
      light.plain.push((await wrk(plainUrl, 2, SECONDS, script)).p50us);
      light.val.push((await wrk(valUrl, 2, SECONDS, script)).p50us);
      sat.plain.push((await wrk(plainUrl, 16, SECONDS, script)).rps);
      sat.val.push((await wrk(valUrl, 16, SECONDS, script)).rps);
    }
    const added = median(light.val) - median(light.plain);
    console.log(`${kb} KB answer (${bodyKb.toFixed(1)} KB): p50 ${median(light.plain).toFixed(0)} -> ${median(light.val).toFixed(0)} us, added ${added.toFixed(0)} us = ${(added / bodyKb).toFixed(2)} us per KB (target <= 3); throughput ratio validated/plain ${(median(sat.val) / median(sat.plain)).toFixed(3)} (${median(sat.plain).toFixed(0)} -> ${median(sat.val).toFixed(0)} rps)`);
  }
  const stats = (await api(controller.url, "GET", "/v1/rollouts/val16/stats")).json.variants.stable.output;
  console.log(`check: val16 answers validated ${stats.schema.validated}, valid ${stats.schema.valid}, unanalyzed ${JSON.stringify(stats.unanalyzed)}`);
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
}
process.exit(0);
