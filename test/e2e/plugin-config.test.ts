// The filter refuses an invalid plugin configuration when Envoy configures it, and says which field.
import { describe, expect, it } from "vitest";
import { pluginConfig, renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { startEnvoy } from "../../controller/src/envoy/process.ts";
import { freePort } from "./harness.ts";

async function bootstrapWith(config: string): Promise<{ yaml: string; admin: number; listen: number }> {
  const [listen, admin, ctl] = [await freePort(), await freePort(), await freePort()];
  const opts = {
    listen: { host: "127.0.0.1", port: listen },
    admin: { host: "127.0.0.1", port: admin },
    stable: { host: "127.0.0.1", port: 1 },
    canary: { host: "127.0.0.1", port: 2 },
    controller: { host: "127.0.0.1", port: ctl },
  };
  const yaml = renderBootstrap(opts);
  const original = pluginConfig(opts).replace(/'/g, "''");
  expect(yaml).toContain(original);
  return { yaml: yaml.replace(original, config.replace(/'/g, "''")), admin, listen };
}

describe("plugin configuration in real Envoy", () => {
  it.each([
    [JSON.stringify({ variantHeadr: "x-v" }), "variantHeadr: unknown field"],
    [
      JSON.stringify({ controller: { cluster: "modelroll_controller", authority: "a:1", pollWaitSeconds: 0 } }),
      "controller.pollWaitSeconds: must be an integer 1..60",
    ],
    ["{not json", "not JSON"],
    // Hand-written static rollouts (Istio's pluginConfig) are where typos happen: refused too, at any depth.
    [
      JSON.stringify({ rollouts: [{ name: "fraud-model", pathPrefix: "/v1/predict", stickyHeader: "x-user-id", canaryBasisPoint: 500 }] }),
      "rollouts[0].canaryBasisPoint: unknown field",
    ],
    [
      JSON.stringify({ rollouts: [{ name: "fraud-model", pathPrefix: "/v1/predict", stickyHeader: "x-user-id", shadow: { percent: 10 } }] }),
      "rollouts[0].shadow.percent: unknown field",
    ],
  ])("refuses %s and logs the field", async (config, expected) => {
    const { yaml, admin } = await bootstrapWith(config);
    let accepted = false;
    let log = "";
    try {
      const envoy = await startEnvoy({ bootstrapYaml: yaml, adminPort: admin, concurrency: 1, readyTimeoutMs: 15_000 });
      accepted = true;
      log = envoy.log();
      await envoy.stop();
    } catch (err) {
      // startEnvoy's error carries Envoy's log.
      log = (err as Error).message;
    }
    expect(accepted, `Envoy accepted an invalid plugin config; log:\n${log.slice(-2000)}`).toBe(false);
    expect(log).toContain(`modelroll: plugin configuration refused: ${expected}`);
  });

  it("accepts the rendered configuration (the refusals above are about the config, not the setup)", async () => {
    const { yaml, admin, listen } = await bootstrapWith(pluginConfigFor());
    const envoy = await startEnvoy({ bootstrapYaml: yaml, adminPort: admin, concurrency: 1 });
    try {
      const ready = await fetch(`${envoy.adminUrl}/ready`);
      expect(ready.status).toBe(200);
      expect((await ready.text()).trim()).toBe("LIVE");
      // The filter took the configuration: its metrics are defined, it refused nothing, and a request goes
      // through it to the (absent) upstream, so the answer is Envoy's own connect failure.
      const stats = await (await fetch(`${envoy.adminUrl}/stats?filter=^wasmcustom\\.modelroll\\.config\\.`)).text();
      expect(stats).toContain("wasmcustom.modelroll.config.rejected: 0");
      const through = await fetch(`http://127.0.0.1:${listen}/v1/predict`, { method: "POST", body: '{"features":[1]}' });
      expect(through.status).toBe(503);
      expect(await through.text()).toMatch(/^upstream connect error/);
      expect(envoy.log()).not.toContain("plugin configuration refused");
    } finally {
      await envoy.stop();
    }
  });
});

function pluginConfigFor(): string {
  return JSON.stringify({ variantHeader: "x-rollout-variant", headersStopIteration: true });
}
