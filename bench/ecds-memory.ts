// Memory over ECDS updates (not a test): Envoy's resident memory while the filter's pluginConfig is replaced
// again and again, as istiod pushes a changed WasmPlugin (GitOps manifest, weights changing), against a baseline
// in the same run: the same traffic with no updates. Each update makes Envoy configure new root contexts on the
// same VMs and drop the old ones; a leak per update shows as a slope well above the baseline's.
//   npx tsx bench/ecds-memory.ts   (ECDS_UPDATES, default 500)
import { sendMany } from "../test/e2e/harness.ts";
import { envoyStat, rssBytes } from "../test/mesh/ecds.ts";
import { manifestFrom, startMeshStack } from "../test/mesh/mesh-stack.ts";
import { envoyVersion, present } from "./lib.ts";

const UPDATES = Number(process.env.ECDS_UPDATES ?? 500);
const STEP = Math.max(1, Math.floor(UPDATES / 5));
const stack = await startMeshStack({ manifest: manifestFrom("filter.gitops.wasmplugin.yaml", "WasmPlugin") });
const envoyPid = present(stack.envoy.child.pid, "Envoy process id");
const mib = () => rssBytes(envoyPid) / 2 ** 20;
const url = `${stack.dataUrl}/v1/models/fraud-model:predict`;
const traffic = (n: number) => sendMany(url, 8, (i) => ({ "x-user-id": `u-${n}-${i}` }), 4);
try {
  console.log(`\nmodelroll ECDS memory (${UPDATES} rounds of 8 requests, with and without a pluginConfig update per round; ${envoyVersion()}, 2 workers)`);
  const config = (bp: number) => {
    const c = structuredClone(stack.manifest.spec.pluginConfig);
    c.rollouts[0].canaryBasisPoints = bp;
    return c;
  };
  // Warm-up: the first updates and requests size Envoy's and V8's pools.
  for (let n = 0; n < 20; n++) {
    await stack.update(config(1000 + n));
    await traffic(n);
  }
  const measure = async (label: string, round: (n: number) => Promise<void>) => {
    const start = mib();
    const t0 = performance.now();
    const points: string[] = [];
    for (let n = 1; n <= UPDATES; n++) {
      await round(n);
      if (n % STEP === 0) points.push(`${mib().toFixed(1)}`);
    }
    const end = mib();
    console.log(
      `${label.padEnd(22)} RSS ${start.toFixed(1)} -> ${points.join(" -> ")} MiB: ${(((end - start) * 1024) / UPDATES).toFixed(1)} KiB per round, ${((performance.now() - t0) / UPDATES).toFixed(1)} ms per round`,
    );
    return end - start;
  };
  const baseline = await measure("baseline (no updates)", (n) => traffic(n).then(() => undefined));
  const vms = await envoyStat(stack.adminUrl, "wasm.envoy.wasm.runtime.v8.active");
  const updates = await measure("an update per round", async (n) => {
    await stack.update(config(n % 2 === 0 ? 2000 : 3000));
    await traffic(n);
  });
  console.log(
    `Wasm VMs active: ${vms} before the updates, ${await envoyStat(stack.adminUrl, "wasm.envoy.wasm.runtime.v8.active")} after; growth with updates minus baseline: ${(((updates - baseline) * 1024) / UPDATES).toFixed(1)} KiB per update`,
  );
} finally {
  await stack.stop();
}
