// Controller mode over ECDS on real Envoy: deploy/istio/filter.wasmplugin.yaml's pluginConfig (the controller's
// Istio cluster name and authority, the read-only filter token) delivered as istiod + istio-agent deliver it.
// A changed pluginConfig makes Envoy configure a new root context on the same VM and drop the old one: the old
// root's long-poll must end with it, or every update would add one more poller per worker.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startController, type RunningController } from "../../controller/src/server.ts";
import { freePort } from "../../controller/src/net.ts";
import { api, send, sendMany, waitFor, type Reply } from "../e2e/harness.ts";
import { PollCounter } from "./ecds.ts";
import { manifestFrom, startMeshStack, type MeshStack } from "./mesh-stack.ts";

const WORKERS = 2;
// Envoy configures the plugin on its main thread too (measured: 2 steady pollers with --concurrency 1, 3 with 2).
const POLLERS = WORKERS + 1;
const API_TOKEN = "mesh-test-api-token-0123";
let stack: MeshStack;
let controller: RunningController;
let polls: PollCounter;
let controllerUrl: string;
const manifest = manifestFrom("filter.wasmplugin.yaml", "WasmPlugin");
const ctl = manifest.spec.pluginConfig.controller;
const auth = { authorization: `Bearer ${API_TOKEN}` };
const fraud = () => `${stack.dataUrl}/v1/models/fraud-model:predict`;

/** The open long-polls stay at `n` for a while (sampled), not just once. */
async function steadyOpenPolls(n: number): Promise<void> {
  await waitFor(`${n} open long-polls (open: ${JSON.stringify(polls.log.filter((e) => e.end === "open"))})`, async () => polls.open === n, 10_000, 10);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 25));
    expect(polls.open, "open long-polls").toBe(n);
  }
}

beforeAll(async () => {
  // The controller knows the manifest's filter token as its read-only token, so the filter's polls are accepted.
  controller = await startController({ host: "127.0.0.1", port: 0, apiToken: API_TOKEN, filterToken: ctl.token, logger: false });
  controllerUrl = controller.url;
  const target = new URL(controller.url);
  polls = new PollCounter({ host: target.hostname, port: Number(target.port) });
  await polls.start(await freePort());
  const created = await api(controllerUrl, "POST", "/v1/rollouts", {
    name: "fraud-model", match: { pathPrefix: "/v1/models/fraud-model" }, stickyKey: { header: "x-user-id" }, canaryPercent: 10,
  }, auth);
  expect(created.status).toBe(201);
  // Istio's name for the controller's cluster in the sidecar, as the manifest says, here pointing at the counter.
  stack = await startMeshStack({ manifest, clusters: { [ctl.cluster]: { host: "127.0.0.1", port: polls.port } }, concurrency: WORKERS });
});

afterAll(async () => {
  await stack?.stop();
  await polls?.stop();
  await controller?.close();
});

describe("controller mode: the WasmPlugin's pluginConfig over ECDS", () => {
  it("each worker's filter long-polls the controller with the manifest's token and routes by its rollouts", async () => {
    await waitFor("the rollout on every worker", async () => (await sendMany(fraud(), 20, (i) => ({ "x-user-id": `p-${i}` }), 4)).every((r) => r.variant !== null), 15_000, 20);
    await steadyOpenPolls(POLLERS);
    const replies = await sendMany(fraud(), 300, (i) => ({ "x-user-id": `u-${i}` }));
    const canary = replies.filter((r) => r.variant === "canary");
    expect(canary.length).toBeGreaterThan(10);
    expect(canary.length).toBeLessThan(60);
    expect(canary.every((r) => r.modelVersion === "v2")).toBe(true);
  });

  it("pluginConfig changes replace the root contexts: traffic never fails, old long-polls end, no extra pollers", async () => {
    const pid = stack.envoy.child.pid!;
    let running = true;
    const during: Reply[] = [];
    const background = (async () => {
      let i = 0;
      while (running && i < 20_000) during.push(await send(fraud(), { "x-user-id": `bg-${i++ % 50}` }));
    })();
    const pollsBefore = polls.total;
    const UPDATES = 10;
    for (let n = 1; n <= UPDATES; n++) {
      const config = structuredClone(manifest.spec.pluginConfig);
      // A different pluginConfig each time, as an edit of the manifest would give.
      config.controller.pollWaitSeconds = 20 - n;
      await stack.update(config);
    }
    await steadyOpenPolls(POLLERS);
    running = false;
    await background;
    expect(stack.envoy.child.pid).toBe(pid);
    expect(during.length).toBeGreaterThan(UPDATES);
    expect(during.filter((r) => r.status !== 200)).toEqual([]);
    // The polls still open are the newest roots' (their pluginConfig's wait); every older root's poll ended when
    // Envoy dropped that root. A root that outlived its config would keep one open with its own wait.
    const open = polls.log.filter((e) => e.end === "open").map((e) => /wait=(\d+)/.exec(e.query)![1]);
    expect(open).toEqual(Array(POLLERS).fill(String(20 - UPDATES)));
    // Per update: each new root asks at once (no version yet), then waits in a held poll; Envoy also configures
    // one short-lived root per update that asks once (measured: 7 polls per update with 2 workers).
    expect(polls.total - pollsBefore).toBeLessThanOrEqual((2 * POLLERS + 1) * UPDATES + POLLERS);
  });

  it("after the updates a weight change still reaches every worker (the new roots are the ones polling)", async () => {
    const set = await api(controllerUrl, "PUT", "/v1/rollouts/fraud-model/weight", { canaryPercent: 100 }, auth);
    expect(set.status).toBe(200);
    await waitFor("100% canary", async () => (await sendMany(fraud(), 40, (i) => ({ "x-user-id": `w-${i}` }), 8)).every((r) => r.variant === "canary"), 10_000, 10);
    await steadyOpenPolls(POLLERS);
  });
});
