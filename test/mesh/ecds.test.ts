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

const openWaits = () => polls.log.filter((e) => e.end === "open").map((e) => /wait=(\d+)/.exec(e.query)?.[1]);

/**
 * The open long-polls settle at `n`, all made by roots of the pluginConfig whose pollWaitSeconds is `wait`, and
 * stay so for a while (sampled). Envoy drops an old root once nothing uses its config any more, so right after an
 * update old and new polls can overlap for a moment.
 */
async function steadyOpenPolls(n: number, wait: number): Promise<void> {
  const settled = () => polls.open === n && openWaits().every((w) => w === String(wait));
  await waitFor(`${n} open long-polls of the config with wait=${wait} (open: ${JSON.stringify(openWaits())})`, async () => settled(), 15_000, 10);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 25));
    expect(openWaits(), "open long-polls, by their config's wait").toEqual(Array(n).fill(String(wait)));
  }
}

/** Sends requests one after another until stopped; a failed send is recorded as status 0, never thrown. */
function backgroundTraffic(url: () => string): { replies: Reply[]; stop(): Promise<void> } {
  let running = true;
  const replies: Reply[] = [];
  const loop = (async () => {
    for (let i = 0; running && i < 20_000; i++) {
      try {
        replies.push(await send(url(), { "x-user-id": `bg-${i % 50}` }));
      } catch (error) {
        replies.push({ status: 0, variant: null, modelVersion: null, body: String(error) });
      }
    }
  })();
  return {
    replies,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

beforeAll(async () => {
  // The controller knows the manifest's filter token as its read-only token, so the filter's polls are accepted.
  controller = await startController({ host: "127.0.0.1", port: 0, apiToken: API_TOKEN, filterToken: ctl.token, logger: false });
  controllerUrl = controller.url;
  const target = new URL(controller.url);
  polls = new PollCounter({ host: target.hostname, port: Number(target.port) });
  await polls.start(await freePort());
  const created = await api(
    controllerUrl,
    "POST",
    "/v1/rollouts",
    {
      name: "fraud-model",
      match: { pathPrefix: "/v1/models/fraud-model" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 10,
    },
    auth,
  );
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
    await waitFor(
      "the rollout on every worker",
      async () => (await sendMany(fraud(), 20, (i) => ({ "x-user-id": `p-${i}` }), 4)).every((r) => r.variant !== null),
      15_000,
      20,
    );
    await steadyOpenPolls(POLLERS, 20);
    const replies = await sendMany(fraud(), 300, (i) => ({ "x-user-id": `u-${i}` }));
    const canary = replies.filter((r) => r.variant === "canary");
    expect(canary.length).toBeGreaterThan(10);
    expect(canary.length).toBeLessThan(60);
    expect(canary.every((r) => r.modelVersion === "v2")).toBe(true);
  });

  it("pluginConfig changes replace the root contexts: traffic never fails, old long-polls end, no extra pollers", async () => {
    const pid = stack.envoy.child.pid!;
    const traffic = backgroundTraffic(fraud);
    const pollsBefore = polls.total;
    const UPDATES = 10;
    try {
      for (let n = 1; n <= UPDATES; n++) {
        const config = structuredClone(manifest.spec.pluginConfig);
        // A different pluginConfig each time, as an edit of the manifest would give.
        config.controller.pollWaitSeconds = 20 - n;
        await stack.update(config);
      }
      // The polls still open are the newest roots' (their pluginConfig's wait); every older root's poll ended when
      // Envoy dropped that root. A root that outlived its config would keep one open with its own wait.
      await steadyOpenPolls(POLLERS, 20 - UPDATES);
    } finally {
      await traffic.stop();
    }
    expect(stack.envoy.child.pid).toBe(pid);
    expect(traffic.replies.length).toBeGreaterThan(UPDATES);
    expect(traffic.replies.filter((r) => r.status !== 200)).toEqual([]);
    // Per update: each new root asks at once (no version yet), then waits in a held poll; Envoy also configures
    // one short-lived root per update that asks once (measured: 7 polls per update with 2 workers).
    expect(polls.total - pollsBefore).toBeLessThanOrEqual((2 * POLLERS + 1) * UPDATES + POLLERS);
  });

  it("after the updates a weight change still reaches every worker (the new roots are the ones polling)", async () => {
    const set = await api(controllerUrl, "PUT", "/v1/rollouts/fraud-model/weight", { canaryPercent: 100 }, auth);
    expect(set.status).toBe(200);
    await waitFor(
      "100% canary",
      async () => (await sendMany(fraud(), 40, (i) => ({ "x-user-id": `w-${i}` }), 8)).every((r) => r.variant === "canary"),
      10_000,
      10,
    );
    await steadyOpenPolls(POLLERS, 10);
  });
});
