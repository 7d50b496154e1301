// Every file of deploy/istio judged by a real kube-apiserver: `kubectl apply --dry-run=server` runs defaulting,
// strict field validation, the CRDs' CEL rules and admission, which the schema-only check (test/mesh/
// manifests.test.ts) cannot. Istio's published CRDs, the PodMonitor CRD and the project's own CRDs are applied
// first, and the namespaces the files use exist, as they would in a cluster being set up.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { schemaDir } from "../mesh/k8s-schemas.ts";
import { type KubeCluster, startKubeCluster } from "./cluster.ts";
import { applyIstioCrds } from "./istiod.ts";

const ISTIO_DIR = join(repoRoot, "deploy", "istio");
const CRD_FILE = join(ISTIO_DIR, "modelrollouts.crd.yaml");

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : []))
    .sort();
}

const objectsOf = (file: string): Array<Record<string, any>> =>
  parseAllDocuments(readFileSync(file, "utf8"))
    .map((d) => d.toJS())
    .filter((o) => o);

let cluster: KubeCluster;
const files = yamlFiles(ISTIO_DIR);

beforeAll(async () => {
  cluster = await startKubeCluster();
  await applyIstioCrds(cluster);
  // Client-side apply, as a user's first `kubectl apply` would: the dry runs below then see the same annotation.
  await cluster.kubectlOk(["apply", "--server-side", "-f", join(schemaDir(), "podmonitors.yaml")]);
  await cluster.kubectlOk(["apply", "-f", CRD_FILE]);
  await cluster.kubectlOk(["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
  // The namespaces the files put objects in (a Namespace in a file is created by the same apply in a real
  // cluster; a dry run creates nothing, so the objects after it would find no namespace).
  const namespaces = new Set(files.flatMap((f) => objectsOf(f).map((o) => o.metadata?.namespace as string | undefined)).filter((n) => n !== undefined));
  for (const ns of namespaces) await cluster.kubectlOk(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }));
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("deploy/istio against a real kube-apiserver (kubectl apply --dry-run=server)", () => {
  it("finds the files: the filter resources, both controller forms, monitoring, the CRDs, the example", () => {
    const names = files.map((f) => relative(ISTIO_DIR, f));
    expect(names).toEqual(
      expect.arrayContaining([
        "controller.yaml",
        "controller-ha.yaml",
        "modelrollouts.crd.yaml",
        "filter.wasmplugin.yaml",
        "filter.gitops.wasmplugin.yaml",
        "filter.trafficextension.yaml",
        "monitoring.yaml",
        "example/two-models.yaml",
      ]),
    );
  });

  it.each(files.map((f) => [relative(ISTIO_DIR, f), f]))("%s is accepted by the API server", async (_name, file) => {
    const r = await cluster.kubectl(["apply", "--dry-run=server", "-f", file]);
    expect(r.stderr.trim(), `kubectl apply --dry-run=server -f ${file}`).toBe("");
    expect(r.code).toBe(0);
    // One line per object, each "(server dry run)": the server judged every document.
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(objectsOf(file).length);
    for (const line of lines) expect(line).toMatch(/\(server dry run\)$/);
  });

  it("refuses what the schema check could not see: a CEL rule, and a typo'd field by strict validation", async () => {
    const plugin = objectsOf(join(ISTIO_DIR, "filter.wasmplugin.yaml")).find((o) => o.kind === "WasmPlugin");
    expect(plugin).toBeDefined();
    // Istio's CRD (x-kubernetes-validations): a selector and targetRefs together are refused.
    const both = structuredClone(plugin) as Record<string, any>;
    both.spec.targetRefs = [{ kind: "Service", name: "fraud-model" }];
    const cel = await cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], JSON.stringify(both));
    expect(cel.code).not.toBe(0);
    expect(cel.stderr).toMatch(/only one of targetRefs or selector can be set/);

    const deployment = objectsOf(join(ISTIO_DIR, "controller-ha.yaml")).find((o) => o.kind === "Deployment") as Record<string, any>;
    deployment.spec.template.spec.containers[0].readinesProbe = deployment.spec.template.spec.containers[0].readinessProbe;
    const typo = await cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], JSON.stringify(deployment));
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/unknown field "spec\.template\.spec\.containers\[0\]\.readinesProbe"/);
  });
});
