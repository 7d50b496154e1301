// Memory check (not a test): a long-running Envoy worker must not grow without bound now that the filter runs
// on AssemblyScript's minimal runtime (collections only at callback ends, filter/sdk/dispatch.ts). Hammers
// analyzed 256 KB and 1 KB answers round after round and prints Envoy's resident memory after each round: it
// must level off, not climb with the number of answers.
//   npx tsx bench/validation-memory.ts   (needs wrk; MEMORY_ROUNDS, MEMORY_SECONDS)
import { readFileSync } from "node:fs";
import { api } from "../test/e2e/harness.ts";
import { envoyVersion, keysScript, present, requireWrk, wrk } from "./lib.ts";
import { startValidationStack } from "./validation-stack.ts";

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

const ROUNDS = Number(process.env.MEMORY_ROUNDS ?? 8);
const SECONDS = Number(process.env.MEMORY_SECONDS ?? 10);

requireWrk();
const script = keysScript();
const { base, controllerUrl, envoy, stop } = await startValidationStack();
try {
  console.log(`\nmodelroll validation memory (${ROUNDS} rounds of ${SECONDS}s at 256 KB + ${SECONDS}s at 1 KB, 16 connections; ${envoyVersion()}, 1 worker)`);
  const pid = present(envoy.child.pid, "Envoy process id");
  console.log(`before: Envoy RSS ${rssMiB(pid).toFixed(1)} MiB`);
  let answers = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const big = await wrk(`${base}/val256/p`, 16, SECONDS, script);
    const small = await wrk(`${base}/val1/p`, 16, SECONDS, script);
    answers += Math.round(big.rps * SECONDS) + Math.round(small.rps * SECONDS);
    console.log(`round ${round}: about ${answers} analyzed answers so far, Envoy RSS ${rssMiB(pid).toFixed(1)} MiB`);
  }
  const stats = (await api(controllerUrl, "GET", "/v1/rollouts/val256/stats")).json.variants.stable.output;
  console.log(`check: val256 answers validated ${stats.schema.validated}, valid ${stats.schema.valid}, unanalyzed ${JSON.stringify(stats.unanalyzed)}`);
} finally {
  await stop();
}
process.exit(0);
