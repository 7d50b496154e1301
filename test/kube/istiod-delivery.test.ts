// `--config-delivery istiod` end to end: the real kube-apiserver and istiod, three sidecar stand-ins (plain Envoy
// 1.40 with the filter from istiod over ECDS, test/kube/sidecar.ts), and the compiled controller writing the
// WasmPlugin of deploy/istio/filter.istiod.wasmplugin.yaml as the ServiceAccount that controller-ha.yaml's Role in ml binds.
// A rollout's weights reach every Envoy through istiod (seen in which model each one routes a probe key to),
// the module fields stay with the user who applied the WasmPlugin, and with the API server down a change is
// committed, retried, and delivered once it is back while the Envoys keep their last config.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRealController, type RealController } from "../controller/real-controller.ts";
import { serviceAccountUser, startKubeCluster, type KubeCluster } from "./cluster.ts";
import { applyWasmPlugin, controllerRbac, istiodManifests, NAMESPACE, PATH, PLUGIN, probeKeys, ROLLOUT, startFleet, untilEvery, type Fleet } from "./fleet.ts";
import { startIstiod, type Istiod } from "./istiod.ts";
import { envoyStat } from "../mesh/ecds.ts";
import { variantAt, wasmPluginResourceName } from "./sidecar.ts";
import { decodeVersions, EnvoyAdminConfigVersions, type ProxyVersion } from "../../controller/src/metrics/config-versions.ts";

const TOKEN = "istiod-delivery-api-token-0123";
const SA = serviceAccountUser("modelroll", "modelroll-controller");
const WAIT = { intervalMs: 20, timeoutMs: 60_000 };
let cluster: KubeCluster;
let istiod: Istiod;
let fleet: Fleet;
let controller: RealController;
let LOW: string; // bucket < 1000: canary from 10% up
let MID: string; // bucket in [1000, 5000): canary at 50%, stable at 10% and 0

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${controller.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith("{") || text.startsWith("[") ? JSON.parse(text) : text };
};
const metric = async (name: string) => {
  const text = (await api("GET", "/metrics")).body as string;
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`${name} not in the controller's /metrics`);
  return Number(line.split(" ").at(-1));
};
const wasmPlugin = async () => JSON.parse(await cluster.kubectlOk(["-n", NAMESPACE, "get", "wasmplugin", PLUGIN, "-o", "json", "--show-managed-fields"]));
const every = (key: string, variant: string) => untilEvery(fleet.sidecars, key, variant, { since: performance.now(), ...WAIT });

beforeAll(async () => {
  cluster = await startKubeCluster({ users: [SA] });
  istiod = await startIstiod(cluster);
  // As a user would: kubectl apply of the manifest (the module as a local file, see fleet.ts).
  await applyWasmPlugin(cluster);
  expect(controllerRbac().map((o) => o.kind)).toEqual(["Role", "RoleBinding"]);
  fleet = await startFleet(istiod.grpcAddr);
  await fleet.grow(3, 3);
  const keys = await probeKeys();
  LOW = keys.between(0, 1000);
  MID = keys.between(1000, 5000);
  controller = await startRealController(
    ["--config-delivery", "istiod", "--wasmplugin", `${NAMESPACE}/${PLUGIN}`, "--kubeconfig", cluster.kubeconfigFor(SA.name)],
    { MODELROLL_API_TOKEN: TOKEN, MODELROLL_LOG_LEVEL: "info" },
  );
}, 300_000);

afterAll(async () => {
  await controller?.stop();
  await fleet?.stop();
  await istiod?.stop();
  await cluster?.stop();
}, 60_000);

describe("--config-delivery istiod: the WasmPlugin, istiod, every Envoy", () => {
  it("before any rollout the Envoys run the user's WasmPlugin: no rollout, no variant", async () => {
    for (const s of fleet.sidecars) expect(await variantAt(s, PATH, LOW)).toBeNull();
  });

  it("a rollout created through the API reaches every Envoy through istiod, and no filter polls the controller", async () => {
    const created = await api("POST", "/v1/rollouts", {
      name: ROLLOUT,
      match: { pathPrefix: "/v1/models/fraud-model" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 10,
    });
    expect(created.status).toBe(201);
    await every(LOW, "canary");
    for (const s of fleet.sidecars) expect(await variantAt(s, PATH, MID)).toBe("stable");
    const plugin = await wasmPlugin();
    expect(plugin.spec.pluginConfig.rollouts.map((r: any) => [r.name, r.canaryBasisPoints])).toEqual([[ROLLOUT, 1000]]);
    const served = (await api("GET", "/v1/filter-config")).body;
    expect(plugin.metadata.annotations["modelroll.io/config-version"]).toBe(String(served.version));
    expect(await metric("modelroll_config_polls_held")).toBe(0);
  });

  it("a promotion and then a rollback reach every Envoy, in that order", async () => {
    expect((await api("PUT", `/v1/rollouts/${ROLLOUT}/weight`, { canaryPercent: 50 })).status).toBe(200);
    await every(MID, "canary");
    expect((await api("POST", `/v1/rollouts/${ROLLOUT}/rollback`, { reason: "e2e" })).status).toBe(200);
    await every(MID, "stable");
    await every(LOW, "stable");
    const plugin = await wasmPlugin();
    expect(plugin.spec.pluginConfig.rollouts[0].canaryBasisPoints).toBe(0);
    expect(plugin.metadata.annotations["modelroll.io/config-version"]).toBe(String((await api("GET", "/v1/filter-config")).body.version));
    expect(await metric("modelroll_wasmplugin_write_pending")).toBe(0);
  });

  it("after the pushes every Envoy reports the controller's config version from all its root contexts (no context of an older push lingers, so the stage window can confirm through istiod)", async () => {
    const version = (await api("GET", "/v1/filter-config")).body.version as number;
    const source = new EnvoyAdminConfigVersions(fleet.sidecars.map((s) => s.adminUrl));
    const decoded = async () => (await source.read()).map((p) => decodeVersions(p, version));
    let last: ProxyVersion[] = [];
    const deadline = performance.now() + 20_000;
    for (;;) {
      last = await decoded();
      if (last.every((p) => p.note === null && p.oldest === version && p.versions.length === 1)) break;
      if (performance.now() > deadline) throw new Error(`Envoys not all at version ${version} after 20 s: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, WAIT.intervalMs));
    }
    for (const p of last) expect(p.contexts, p.proxy).toBeGreaterThan(0);
  });

  it("istiod's config for a sidecar carries the controller's weights and the module as a local file; each Envoy applied it under the ECDS name", async () => {
    const res = await fetch(`${istiod.debugUrl}/debug/config_dump?proxyID=scoring-api-0.${NAMESPACE}`);
    expect(res.status).toBe(200);
    const dump = (await res.json()) as { configs: Array<Record<string, any>> };
    const ecds = dump.configs.find((c) => c["@type"] === "type.googleapis.com/envoy.admin.v3.EcdsConfigDump");
    const wasm = ecds?.ecdsFilters?.[0]?.ecdsFilter?.config;
    expect(wasm?.name).toBe(`${NAMESPACE}.${PLUGIN}~istio-translated-wasmplugin`);
    expect(wasm.vmConfig.code).toEqual({
      local: {
        filename: istiodManifests()
          .find((d) => d.kind === "WasmPlugin")
          ?.spec.url.replace("file://", ""),
      },
    });
    expect(JSON.parse(wasm.configuration.value).rollouts.map((r: any) => r.canaryBasisPoints)).toEqual([0]);
    const stat = `extension_config_discovery.http_filter.${wasmPluginResourceName(NAMESPACE, PLUGIN)}.config_reload`;
    for (const s of fleet.sidecars) expect(await envoyStat(s.adminUrl, stat), `${s.id}: ${stat}`).toBeGreaterThanOrEqual(3);
  });

  it("the module fields stay the user's across the weight writes: the controller's field manager owns only pluginConfig's rollouts and configVersion", async () => {
    const plugin = await wasmPlugin();
    const applied = istiodManifests().find((d) => d.kind === "WasmPlugin") as Record<string, any>;
    for (const field of ["url", "sha256", "imagePullPolicy", "pluginName", "phase", "failStrategy", "selector", "match"]) {
      expect(plugin.spec[field], `spec.${field}`).toEqual(applied.spec[field]);
    }
    expect(plugin.spec.pluginConfig.variantHeader).toBe("x-rollout-variant");
    const managers = plugin.metadata.managedFields as Array<{ manager: string; operation: string; fieldsV1: any }>;
    const ours = managers.filter((m) => m.manager === "modelroll-controller");
    expect(ours.map((m) => m.operation)).toEqual(["Apply"]);
    const fields = ours[0]?.fieldsV1;
    expect(Object.keys(fields["f:spec"])).toEqual(["f:pluginConfig"]);
    expect(Object.keys(fields["f:spec"]["f:pluginConfig"]).sort()).toEqual(["f:configVersion", "f:rollouts"]);
    expect(Object.keys(fields["f:metadata"]["f:annotations"])).toEqual(["f:modelroll.io/config-version"]);
    // kubectl's manager still owns the module.
    const user = managers.find((m) => m.manager !== "modelroll-controller" && m.fieldsV1?.["f:spec"]?.["f:url"]);
    expect(user?.fieldsV1["f:spec"]).toHaveProperty("f:sha256");
  });

  it("the controller's ServiceAccount may patch this WasmPlugin and nothing else (controller-ha.yaml's Role in ml)", async () => {
    const list = await cluster.kubectl(["-n", NAMESPACE, "get", "wasmplugins"], undefined, { user: SA.name });
    expect(list.code).not.toBe(0);
    expect(list.stderr).toMatch(/forbidden/i);
    const other = await cluster.kubectl(["-n", NAMESPACE, "patch", "wasmplugin", "someone-else", "--type", "merge", "-p", "{}"], undefined, { user: SA.name });
    expect(other.stderr).toMatch(/forbidden/i);
  });

  it("with the API server down a weight change is committed, retried, and reaches every Envoy once it is back; meanwhile they keep their last config", async () => {
    await cluster.stopApiServer();
    try {
      expect((await api("PUT", `/v1/rollouts/${ROLLOUT}/weight`, { canaryPercent: 50 })).status).toBe(200);
      const deadline = Date.now() + 30_000;
      while ((await metric("modelroll_wasmplugin_write_failures")) < 2) {
        if (Date.now() > deadline) throw new Error(`no failed WasmPlugin writes counted:\n${controller.output().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await metric("modelroll_wasmplugin_write_pending")).toBe(1);
      expect(controller.output()).toContain("wasmplugin: write failed; the filters keep their last config; retrying");
      // The Envoys keep the rollback's config (their filter has it; istiod has nothing newer).
      for (const s of fleet.sidecars) expect(await variantAt(s, PATH, MID)).toBe("stable");
    } finally {
      await cluster.startApiServer();
    }
    await every(MID, "canary");
    expect(await metric("modelroll_wasmplugin_write_failures")).toBe(0);
    expect(await metric("modelroll_wasmplugin_write_pending")).toBe(0);
  });
});
