// The stage window on real Envoy (engine/propagation.ts, engine/sample-ratio.ts). The filter long-polls the
// controller through a relay the test can pause, so the filter keeps its previous weights for as long as the
// test wants after the engine decided new ones: requests sent then are served under the previous split, and
// must not enter the new stage's window. Then a split skewed by the clients (canary users retrying) holds a
// stage that an even split of the same rollout shape passes.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pluginConfig, renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../../controller/src/envoy/process.ts";
import { startModelServer, type ModelServer } from "../../controller/src/demo/model-server.ts";
import { decodeVersions, EnvoyAdminConfigVersions } from "../../controller/src/metrics/config-versions.ts";
import { startController, type RunningController } from "../../controller/src/server.ts";
import { api, freePort, managedSpec, sendMany, waitFor } from "./harness.ts";

/** A TCP relay whose controller-to-Envoy direction can be held: the answers of the long-poll wait in it. */
class Relay {
  paused = false;
  readonly #held: Array<() => void> = [];
  readonly #sockets = new Set<Socket>();
  server: Server | null = null;
  async listen(port: number, target: number): Promise<void> {
    this.server = createServer((client) => {
      const upstream = createConnection({ host: "127.0.0.1", port: target });
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      client.pipe(upstream);
      upstream.on("data", (chunk: Buffer) => {
        if (this.paused) this.#held.push(() => client.write(chunk));
        else client.write(chunk);
      });
      upstream.on("end", () => (this.paused ? this.#held.push(() => client.end()) : client.end()));
    });
    await new Promise<void>((resolve) => this.server?.listen(port, "127.0.0.1", resolve));
  }
  resume(): void {
    this.paused = false;
    for (const send of this.#held.splice(0)) send();
  }
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

let stable: ModelServer;
let canary: ModelServer;
let controller: RunningController;
let envoy: EnvoyProcess;
let relay: Relay;
let adminUrl: string;
let dataUrl: string;

beforeAll(async () => {
  stable = await startModelServer({ version: "v1" });
  canary = await startModelServer({ version: "v2" });
  const [relayPort, listenPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  adminUrl = `http://127.0.0.1:${adminPort}`;
  dataUrl = `http://127.0.0.1:${listenPort}`;
  // Ticks by hand (tickIntervalMs 0): the test says when the engine reads.
  controller = await startController({ host: "127.0.0.1", port: 0, envoyAdminUrls: [adminUrl], tickIntervalMs: 0, logger: false });
  relay = new Relay();
  await relay.listen(relayPort, Number(new URL(controller.url).port));
  const yaml = renderBootstrap({
    listen: { host: "127.0.0.1", port: listenPort },
    admin: { host: "127.0.0.1", port: adminPort },
    stable: { host: "127.0.0.1", port: stable.port },
    canary: { host: "127.0.0.1", port: canary.port },
    shadow: { host: "127.0.0.1", port: canary.port },
    controller: { host: "127.0.0.1", port: relayPort },
    pollWaitSeconds: 20,
  });
  envoy = await startEnvoy({ bootstrapYaml: yaml, adminPort, concurrency: 2 });
}, 60_000);

afterAll(async () => {
  relay?.resume();
  await envoy?.stop();
  await controller?.close();
  await relay?.close();
  await stable?.close();
  await canary?.close();
});

const store = () => controller.app.modelroll.store;
const tick = () => controller.app.modelroll.driver.tick();
const rollout = async (name: string) => (await api(controller.url, "GET", `/v1/rollouts/${name}`)).json;

/** The oldest version any worker of the Envoy runs, as the controller reads it. */
async function oldestVersion(): Promise<number | null> {
  const [proxy] = await new EnvoyAdminConfigVersions([adminUrl]).read();
  return proxy ? decodeVersions(proxy, store().version).oldest : null;
}

async function untilEnvoyRuns(version: number): Promise<number> {
  return waitFor(`every Envoy worker at config version ${version}`, async () => ((await oldestVersion()) ?? -1) >= version, 15_000, 2);
}

const users = (tag: string) => (i: number) => ({ "x-user-id": `${tag}-${i}-${Math.random()}` });

describe("the stage window on real Envoy", () => {
  it("starts at the first reading in which Envoy runs the stage's weights: requests served under the previous split stay out", async () => {
    const spec = managedSpec("win", "canary error rate above 5%", {
      stages: [{ canaryPercent: 20, minDurationSeconds: 0, minRequests: 100_000, deadlineSeconds: 3600 }, 100],
      promotion_gates: { error_rate: { maximum: 0.05 } },
    });
    const created = await api(controller.url, "POST", "/v1/rollouts", spec);
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const atCreate = store().version;
    await untilEnvoyRuns(atCreate);

    // The engine's first step decides 20% while the filters cannot hear of it.
    relay.paused = true;
    await tick();
    const stageVersion = (await rollout("win")).configVersion as number;
    expect(stageVersion).toBeGreaterThan(atCreate);
    expect((await rollout("win")).canaryPercent).toBe(20);

    // Served under the previous split (0% canary): 200 requests, all to stable.
    const before = await sendMany(`${dataUrl}/win/p`, 200, users("old"), 16);
    expect(before.filter((r) => r.variant === "canary")).toHaveLength(0);
    expect(before.every((r) => r.status === 200)).toBe(true);

    // The engine reads Envoy still at the creation version: the window has not started, the laggard is named.
    await tick();
    let view = await rollout("win");
    expect(view.evaluation.windowStartedAt).toBeNull();
    expect(view.evaluation.propagation).toMatchObject({ required: stageVersion, ready: 0, total: 1, laggards: [{ proxy: adminUrl, oldest: atCreate }] });
    expect(view.evaluation.holds[0].text).toMatch(new RegExp(`^data plane: 0 of 1 proxies run config version ${stageVersion} or newer`));

    // The answers go through: Envoy runs the stage's weights, and the next reading is the window's baseline.
    const released = performance.now();
    relay.resume();
    await untilEnvoyRuns(stageVersion);
    console.log(`held long-poll answer released -> every worker reports version ${stageVersion}: ${(performance.now() - released).toFixed(1)} ms`);
    await tick();
    view = await rollout("win");
    expect(view.evaluation.windowStartedAt).not.toBeNull();
    expect(view.evaluation.propagation).toMatchObject({ rule: "all", ready: 1, total: 1, laggards: [] });

    // Under the new weights: 300 requests, about 20% canary.
    const after = await sendMany(`${dataUrl}/win/p`, 300, users("new"), 16);
    const canaryAfter = after.filter((r) => r.variant === "canary").length;
    expect(canaryAfter).toBeGreaterThan(0);
    await tick();
    view = await rollout("win");
    const ratio = view.evaluation.gates.find((g: { gate: string }) => g.gate === "sample_ratio");
    // The window holds exactly the 300 requests served under the stage's weights; the old way (the baseline at the
    // decision's reading) would have counted the 200 served to stable before the filters heard of the stage.
    expect({ canary: ratio.samples, stable: ratio.stableSamples }).toEqual({ canary: canaryAfter, stable: 300 - canaryAfter });
    expect(view.evaluation.sampleRatio.status).toBe("passed");
    const errorRate = view.evaluation.gates.find((g: { gate: string; slice: string }) => g.gate === "error_rate" && g.slice === "overall");
    expect(errorRate.stableSamples).toBe(300 - canaryAfter);
    console.log(
      `window after the wait: ${ratio.samples} canary + ${ratio.stableSamples} stable = 300 requests; the old baseline would have mixed in ${before.length} more (all stable)`,
    );
  }, 90_000);

  it("the long-poll: a weight change reaches every worker's reported version, timed from the commit", async () => {
    const created = await api(controller.url, "POST", "/v1/rollouts", {
      name: "timed",
      match: { pathPrefix: "/timed" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 0,
    });
    expect(created.status).toBe(201);
    await untilEnvoyRuns(store().version);
    const times: number[] = [];
    for (let i = 1; i <= 10; i++) {
      const started = performance.now();
      const put = await api(controller.url, "PUT", "/v1/rollouts/timed/weight", { canaryPercent: i });
      expect(put.status).toBe(200);
      await untilEnvoyRuns(store().version);
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    console.log(
      `commit -> every worker reports the version (long-poll, 1 Envoy, 2 workers, 10 changes): median ${times[5]?.toFixed(1)} ms, max ${times[9]?.toFixed(1)} ms`,
    );
    expect(times).toHaveLength(10);
  }, 60_000);

  it("a split skewed by canary users retrying holds its stage; the same rollout with an even split advances", async () => {
    const stages = [{ canaryPercent: 20, minDurationSeconds: 0, minRequests: 50, deadlineSeconds: 3600 }, 100];
    for (const name of ["even", "skewed"]) {
      const created = await api(
        controller.url,
        "POST",
        "/v1/rollouts",
        managedSpec(name, "canary errors above 5%", { stages, promotion_gates: { error_rate: { maximum: 0.05 } } }),
      );
      expect(created.status, JSON.stringify(created.json)).toBe(201);
    }
    await tick();
    await untilEnvoyRuns(store().version);
    await tick(); // both windows start here
    expect((await rollout("even")).evaluation.windowStartedAt).not.toBeNull();
    expect((await rollout("skewed")).evaluation.windowStartedAt).not.toBeNull();

    await sendMany(`${dataUrl}/even/p`, 600, users("even"), 16);
    // Each canary answer is asked again by its client (a retry policy keyed on the answering model): the canary
    // gets about 2w / (1 + w) = 33% of the requests at a 20% weight.
    const ids = Array.from({ length: 600 }, (_, i) => `skewed-${i}-${Math.random()}`);
    const first = await sendMany(`${dataUrl}/skewed/p`, ids.length, (i) => ({ "x-user-id": ids[i] ?? "" }), 16);
    const again = ids.filter((_, i) => first[i]?.variant === "canary");
    const retries = await sendMany(`${dataUrl}/skewed/p`, again.length, (i) => ({ "x-user-id": again[i] ?? "" }), 16);
    // Sticky: a retry goes where the first request went.
    expect(retries.every((r) => r.variant === "canary")).toBe(true);
    await tick();

    const even = await rollout("even");
    const skewed = await rollout("skewed");
    expect(even.canaryPercent).toBe(100);
    expect(skewed.canaryPercent).toBe(20);
    expect(skewed.phase).toBe("Canary");
    const row = skewed.evaluation.gates.find((g: { gate: string }) => g.gate === "sample_ratio");
    expect(row.status).toBe("Error");
    expect(skewed.evaluation.sampleRatio.status).toBe("mismatch");
    expect(skewed.evaluation.sampleRatio.pValue).toBeLessThan(0.001);
    expect(skewed.evaluation.holds[0].text).toMatch(/^sample ratio mismatch: canary \d+ of \d+ requests/);
    console.log(`skewed split: ${skewed.evaluation.sampleRatio.text}`);
    const history = (await api(controller.url, "GET", "/v1/rollouts/skewed/history")).json.decisions as Array<{ kind: string; reason: string }>;
    expect(history.at(-1)?.kind).toBe("held");
    expect(history.at(-1)?.reason).toMatch(/sample ratio mismatch/);
  }, 90_000);

  it("a filter given its rollouts in the plugin config (istiod's delivery) reports the configVersion written beside them, from every worker that served", async () => {
    const [listen, admin] = [await freePort(), await freePort()];
    const opts = {
      listen: { host: "127.0.0.1", port: listen },
      admin: { host: "127.0.0.1", port: admin },
      stable: { host: "127.0.0.1", port: stable.port },
      canary: { host: "127.0.0.1", port: canary.port },
      controller: { host: "127.0.0.1", port: 1 },
    };
    const yaml = renderBootstrap(opts);
    const config = JSON.stringify({ configVersion: 42, rollouts: [{ name: "s", pathPrefix: "/s", stickyHeader: "x-user-id", canaryBasisPoints: 5000 }] });
    const own = await startEnvoy({ bootstrapYaml: yaml.replace(pluginConfig(opts).replace(/'/g, "''"), config), adminPort: admin, concurrency: 3 });
    try {
      const source = new EnvoyAdminConfigVersions([`http://127.0.0.1:${admin}`]);
      const [before] = await source.read();
      // A context with only its plugin config's table counts itself at its first request (the main thread's roots
      // never serve, and after an ECDS push the previous config's stays alive): none before any request.
      expect(before?.gauges?.contexts ?? 0).toBe(0);
      for (let i = 0; i < 30; i++) expect((await fetch(`http://127.0.0.1:${listen}/s`, { headers: { "x-user-id": `u${i}` } })).status).toBe(200);
      const [proxy] = await source.read();
      expect(proxy).toBeDefined();
      const decoded = decodeVersions(proxy!, 42);
      // Every context that served holds the table's version.
      expect(decoded).toMatchObject({ oldest: 42, note: null, versions: [{ version: 42, contexts: decoded.contexts }] });
      expect(decoded.contexts).toBeGreaterThanOrEqual(1);
      expect(decoded.contexts).toBeLessThanOrEqual(3);
      console.log(`static plugin config, --concurrency 3: ${decoded.contexts} root contexts that served report version 42`);
    } finally {
      await own.stop();
    }
  }, 60_000);
});
