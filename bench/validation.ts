// Benchmark (not a test): what reading and validating answers costs on the data path, per KB of answer.
// One Envoy (1 worker) with the filter in front of a fixed upstream; for 1, 16 and 256 KB answers, two
// rollouts on the same bodies: one that only routes, one with output analysis and an output schema.
//   npm run bench:validation   (needs wrk)
import { api } from "../test/e2e/harness.ts";
import { envoyVersion, keysScript, median, requireWrk, wrk } from "./lib.ts";
import { SIZES_KB, startValidationStack } from "./validation-stack.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);

requireWrk();
const script = keysScript();
const { base, controllerUrl, bodies, stop } = await startValidationStack();
try {
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
  const stats = (await api(controllerUrl, "GET", "/v1/rollouts/val16/stats")).json.variants.stable.output;
  console.log(`check: val16 answers validated ${stats.schema.validated}, valid ${stats.schema.valid}, unanalyzed ${JSON.stringify(stats.unanalyzed)}`);
} finally {
  await stop();
}
process.exit(0);
