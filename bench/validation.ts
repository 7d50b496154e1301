// Benchmark (not a test): what reading and validating answers costs on the data path, per KB of answer.
// One Envoy (1 worker) with the filter in front of a fixed upstream; for 1, 16 and 256 KB answers, two
// rollouts on the same bodies: one that only routes, one with output analysis and an output schema.
//   npm run bench:validation   (needs wrk)
// BENCH_BASELINE_WASM=/path/to/filter.wasm also measures that build of the filter (e.g. main's) on a second such
// stack, in the same rounds, and prints this build's figures against it.
import { api } from "../test/e2e/harness.ts";
import { envoyVersion, keysScript, median, requireWrk, wrk } from "./lib.ts";
import { SIZES_KB, startValidationStack, type ValidationStack } from "./validation-stack.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const BASELINE_WASM = process.env.BENCH_BASELINE_WASM;

requireWrk();
const script = keysScript();
const stacks: Array<{ name: string; stack: ValidationStack }> = [];
try {
  stacks.push({ name: "this build", stack: await startValidationStack() });
  if (BASELINE_WASM) stacks.push({ name: "baseline", stack: await startValidationStack(BASELINE_WASM) });
  console.log(
    `\nmodelroll validation bench (${REPEATS} x ${SECONDS}s per point, medians; ${envoyVersion()}, 1 worker)${BASELINE_WASM ? `; baseline build ${BASELINE_WASM}` : ""}`,
  );
  for (const kb of SIZES_KB) {
    const bodyKb = Buffer.byteLength(stacks[0].stack.bodies[kb]) / 1024;
    const urls = stacks.map(({ stack }) => ({ plain: `${stack.base}/plain${kb}/p`, val: `${stack.base}/val${kb}/p` }));
    for (const u of urls) {
      await wrk(u.plain, 2, 2, script);
      await wrk(u.val, 2, 2, script);
    }
    const runs = urls.map(() => ({ lightPlain: [] as number[], lightVal: [] as number[], satPlain: [] as number[], satVal: [] as number[] }));
    // Alternate the builds within each round, so drift on the machine hits both alike.
    for (let i = 0; i < REPEATS; i++) {
      // ... and swap their order every round, so neither always follows the same neighbour.
      const order = i % 2 === 0 ? urls.map((_, k) => k) : urls.map((_, k) => urls.length - 1 - k);
      for (const k of order) {
        runs[k].lightPlain.push((await wrk(urls[k].plain, 2, SECONDS, script)).p50us);
        runs[k].lightVal.push((await wrk(urls[k].val, 2, SECONDS, script)).p50us);
        runs[k].satPlain.push((await wrk(urls[k].plain, 16, SECONDS, script)).rps);
        runs[k].satVal.push((await wrk(urls[k].val, 16, SECONDS, script)).rps);
      }
    }
    const figures = runs.map((r) => {
      const added = median(r.lightVal) - median(r.lightPlain);
      return {
        added,
        perKb: added / bodyKb,
        valRps: median(r.satVal),
        plainRps: median(r.satPlain),
        p50Plain: median(r.lightPlain),
        p50Val: median(r.lightVal),
      };
    });
    figures.forEach((f, k) => {
      console.log(
        `${kb} KB answer (${bodyKb.toFixed(1)} KB), ${stacks[k].name}: p50 ${f.p50Plain.toFixed(0)} -> ${f.p50Val.toFixed(0)} us, added ${f.added.toFixed(0)} us = ${f.perKb.toFixed(2)} us per KB (target <= 3); throughput ratio validated/plain ${(f.valRps / f.plainRps).toFixed(3)} (${f.plainRps.toFixed(0)} -> ${f.valRps.toFixed(0)} rps)`,
      );
    });
    if (figures.length === 2) {
      const [now, base] = figures;
      console.log(
        `${kb} KB, this build / baseline: validated throughput ${(now.valRps / base.valRps).toFixed(3)}, routing-only throughput ${(now.plainRps / base.plainRps).toFixed(3)}, added us per KB ${(now.perKb / base.perKb).toFixed(3)}`,
      );
    }
  }
  for (const { name, stack } of stacks) {
    const stats = (await api(stack.controllerUrl, "GET", "/v1/rollouts/val16/stats")).json.variants.stable.output;
    console.log(
      `check (${name}): val16 answers validated ${stats.schema.validated}, valid ${stats.schema.valid}, unanalyzed ${JSON.stringify(stats.unanalyzed)}`,
    );
  }
} finally {
  for (const { stack } of stacks.reverse()) await stack.stop();
}
process.exit(0);
