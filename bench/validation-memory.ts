// Memory check (not a test): a long-running Envoy worker must not grow without bound now that the filter runs
// on AssemblyScript's minimal runtime (collections only at callback ends, filter/sdk/dispatch.ts). Hammers
// analyzed 256 KB and 1 KB answers round after round and prints Envoy's resident memory after each round: it
// must level off, not climb with the number of answers.
//   npx tsx bench/validation-memory.ts   (needs wrk; MEMORY_ROUNDS, MEMORY_SECONDS)
import { renderBootstrap } from "../controller/src/envoy/bootstrap.ts";
import { startEnvoy } from "../controller/src/envoy/process.ts";
import { startController } from "../controller/src/server.ts";
import { api, freePort, sendMany, waitFor } from "../test/e2e/harness.ts";
import { readFileSync } from "node:fs";
import { envoyVersion, fixedUpstreamYaml, keysScript, requireWrk, wrk } from "./lib.ts";

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

const ROUNDS = Number(process.env.MEMORY_ROUNDS ?? 8);
const SECONDS = Number(process.env.MEMORY_SECONDS ?? 10);
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

  console.log(`\nmodelroll validation memory (${ROUNDS} rounds of ${SECONDS}s at 256 KB + ${SECONDS}s at 1 KB, 16 connections; ${envoyVersion()}, 1 worker)`);
  const pid = envoy.child.pid!;
  console.log(`before: Envoy RSS ${rssMiB(pid).toFixed(1)} MiB`);
  let answers = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const big = await wrk(`${base}/val256/p`, 16, SECONDS, script);
    const small = await wrk(`${base}/val1/p`, 16, SECONDS, script);
    answers += Math.round(big.rps * SECONDS) + Math.round(small.rps * SECONDS);
    console.log(`round ${round}: about ${answers} analyzed answers so far, Envoy RSS ${rssMiB(pid).toFixed(1)} MiB`);
  }
  const stats = (await api(controller.url, "GET", "/v1/rollouts/val256/stats")).json.variants.stable.output;
  console.log(`check: val256 answers validated ${stats.schema.validated}, valid ${stats.schema.valid}, unanalyzed ${JSON.stringify(stats.unanalyzed)}`);
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
}
process.exit(0);
