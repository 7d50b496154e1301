// Every manifest under deploy/istio against the published schemas (Kubernetes' OpenAPI v3, Istio's CRDs from
// istio.io/api, the PodMonitor CRD), as `kubectl apply` with strict field validation would judge it, plus the
// routing promises the schemas cannot express.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { ISTIO_API, KUBERNETES } from "../../scripts/mesh-versions.mjs";
import { loadManifests, ManifestValidator, type ManifestDoc } from "./k8s-schemas.ts";
import { proxyStatsBootstrapJson } from "./proxy-stats.ts";

const ISTIO_DIR = join(repoRoot, "deploy", "istio");

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(e.name) ? [path] : [];
  });
}

let validator: ManifestValidator;
let docs: ManifestDoc[];

const find = (kind: string, name: string, file?: string) => {
  const found = docs.filter((d) => d.object.kind === kind && d.object.metadata?.name === name && (file === undefined || d.file.endsWith(file)));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}${file ? ` in ${file}` : ""}, found ${found.length}`);
  return structuredClone(found[0].object);
};

beforeAll(() => {
  validator = new ManifestValidator();
  docs = loadManifests(yamlFiles(ISTIO_DIR));
});

describe(`deploy/istio against Kubernetes ${KUBERNETES.version} and Istio ${ISTIO_API.module}@${ISTIO_API.version}`, () => {
  it("every document is a kind with a published schema, and valid against it", () => {
    const problems: string[] = [];
    for (const d of docs) {
      // modelroll's own CRDs are generated and applied to a real kube-apiserver (test/kube/kubestate.test.ts).
      if (d.object.kind === "CustomResourceDefinition" && d.object.spec?.group === "modelroll.io") continue;
      const where = `${d.file.slice(repoRoot.length + 1)} #${d.index} ${d.object.kind} ${d.object.metadata?.name}`;
      for (const p of validator.validate(d.object)) problems.push(`${where}: ${p}`);
    }
    expect(problems).toEqual([]);
    const kinds = new Set(docs.map((d) => d.object.kind));
    for (const k of [
      "WasmPlugin",
      "TrafficExtension",
      "DestinationRule",
      "VirtualService",
      "ServiceAccount",
      "Deployment",
      "Service",
      "PersistentVolumeClaim",
      "PodMonitor",
      "ConfigMap",
      "Namespace",
    ]) {
      expect(kinds, `no ${k} under deploy/istio`).toContain(k);
    }
  });

  it("a typo'd or misplaced field, a wrong enum value or type fails validation, naming the field", () => {
    const plugin = find("WasmPlugin", "modelroll-filter", "filter.wasmplugin.yaml");
    expect(validator.validate(plugin)).toEqual([]);
    plugin.spec.failStratgy = plugin.spec.failStrategy;
    delete plugin.spec.failStrategy;
    expect(validator.validate(plugin)).toContain("/spec: must NOT have additional properties 'failStratgy'");

    const phase = find("WasmPlugin", "modelroll-filter", "filter.wasmplugin.yaml");
    phase.spec.phase = "STAT";
    expect(validator.validate(phase).join("\n")).toMatch(/^\/spec\/phase: must be equal to one of the allowed values/m);

    const deployment = find("Deployment", "modelroll-controller");
    const sc = deployment.spec.template.spec.containers[0].securityContext;
    sc.readOnlyRootFilesytem = true;
    delete sc.readOnlyRootFilesystem;
    expect(validator.validate(deployment)).toContain(
      "/spec/template/spec/containers/0/securityContext: must NOT have additional properties 'readOnlyRootFilesytem'",
    );

    const vs = find("VirtualService", "fraud-model");
    vs.spec.http[0].route[0].destination.subst = "canary";
    expect(validator.validate(vs)).toContain("/spec/http/0/route/0/destination: must NOT have additional properties 'subst'");

    const pvc = find("PersistentVolumeClaim", "modelroll-state");
    pvc.spec.accessModes = "ReadWriteOnce";
    expect(validator.validate(pvc)).toContain("/spec/accessModes: must be array");

    const meta = find("DestinationRule", "churn-model");
    meta.metadata.lables = { a: "b" };
    expect(validator.validate(meta)).toContain("/metadata: must NOT have additional properties 'lables'");

    // Istio's pluginConfig is free-form in the CRD (x-kubernetes-preserve-unknown-fields): the filter itself
    // refuses unknown keys there, which the ECDS test shows on real Envoy.
    const open = find("WasmPlugin", "modelroll-filter", "filter.wasmplugin.yaml");
    open.spec.pluginConfig.anything = 1;
    expect(validator.validate(open)).toEqual([]);
  });

  it("the controller runs as one non-root replica, Recreate, read-only root, probes on /healthz, tokens from a Secret", () => {
    const d = find("Deployment", "modelroll-controller").spec;
    expect(d.replicas).toBe(1);
    expect(d.strategy.type).toBe("Recreate");
    const pod = d.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const c = pod.containers[0];
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.readinessProbe.httpGet.path).toBe("/healthz");
    expect(c.livenessProbe.httpGet.path).toBe("/healthz");
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.valueFrom?.secretKeyRef]));
    expect(env.MODELROLL_API_TOKEN).toEqual({ name: "modelroll-tokens", key: "api-token" });
    expect(env.MODELROLL_FILTER_TOKEN).toEqual({ name: "modelroll-tokens", key: "filter-token" });
    const state = pod.volumes.find((v: any) => v.persistentVolumeClaim);
    expect(state.persistentVolumeClaim.claimName).toBe("modelroll-state");
    expect(c.args.join(" ")).toContain(`--state ${c.volumeMounts.find((m: any) => m.name === state.name).mountPath}/`);
    find("PersistentVolumeClaim", "modelroll-state");
    const svc = find("Service", "modelroll-controller");
    expect(svc.spec.selector).toEqual(d.selector.matchLabels);
  });

  it("each model routes canary to its canary subset only from filtered callers, and everything else to stable", () => {
    for (const model of ["fraud-model", "churn-model"]) {
      const host = `${model}.ml.svc.cluster.local`;
      const dr = find("DestinationRule", model).spec;
      expect(dr.host).toBe(host);
      const subsets = new Set(dr.subsets.map((s: any) => s.name));
      expect(subsets.has("stable") && subsets.has("canary")).toBe(true);
      const routes = find("VirtualService", model).spec.http;
      const last = routes[routes.length - 1];
      // The default route: taken by requests without the header, e.g. when the filter failed open.
      expect(last.match).toBeUndefined();
      expect(last.route).toEqual([{ destination: { host, subset: "stable" } }]);
      const canary = routes.filter((r: any) => r.route.some((x: any) => x.destination.subset === "canary"));
      expect(canary).toHaveLength(1);
      expect(canary[0].match).toEqual([{ headers: { "x-rollout-variant": { exact: "canary" } }, sourceLabels: { "modelroll.io/filter": "enabled" } }]);
      for (const r of routes) for (const x of r.route) expect(subsets.has(x.destination.subset)).toBe(true);
    }
    expect(find("DestinationRule", "fraud-model").spec.subsets.map((s: any) => s.name)).toContain("shadow");
  });

  it("the filter resources select the filtered callers, fail open, and name the controller's cluster as Istio does", () => {
    const plugins = docs.filter((d) => d.object.kind === "WasmPlugin" || d.object.kind === "TrafficExtension");
    expect(plugins).toHaveLength(3);
    for (const { object } of plugins) {
      const spec = object.spec;
      const wasm = object.kind === "WasmPlugin" ? spec : spec.wasm;
      // CEL rule of both CRDs (not evaluated by the schema validator): selector or targetRefs, not both.
      expect(spec.selector !== undefined && spec.targetRefs !== undefined).toBe(false);
      expect(spec.selector.matchLabels).toEqual({ "modelroll.io/filter": "enabled" });
      expect(spec.match).toEqual([{ mode: "CLIENT" }]);
      expect(wasm.failStrategy).toBe("FAIL_OPEN");
      expect(wasm.url).toMatch(/^oci:\/\//);
      const ctl = wasm.pluginConfig.controller;
      if (ctl) {
        expect(ctl.cluster).toBe("outbound|8080||modelroll-controller.modelroll.svc.cluster.local");
        expect(ctl.authority).toBe("modelroll-controller.modelroll.svc.cluster.local:8080");
      } else {
        expect(wasm.pluginConfig.rollouts.map((r: any) => r.name)).toEqual(["fraud-model", "churn-model"]);
      }
    }
    const svc = find("Service", "modelroll-controller").spec;
    expect(svc.ports.map((p: any) => p.port)).toContain(8080);
  });

  it("the sidecars' stats bootstrap override carries exactly the bootstrap template's stats tags and buckets", () => {
    const cm = find("ConfigMap", "modelroll-proxy-stats");
    expect(cm.data["custom_bootstrap.json"].trimEnd()).toBe(proxyStatsBootstrapJson());
    const caller = find("Deployment", "scoring-api").spec.template.metadata;
    expect(caller.annotations["sidecar.istio.io/bootstrapOverride"]).toBe("modelroll-proxy-stats");
    expect(caller.annotations["sidecar.istio.io/statsInclusionPrefixes"]).toBe("wasmcustom.modelroll");
    expect(caller.labels["modelroll.io/filter"]).toBe("enabled");
  });
});
