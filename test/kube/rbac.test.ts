// The HA controller's RBAC (deploy/istio/controller-ha.yaml), applied for real and judged by the API server: the
// ServiceAccount's token (a static-token user standing for it) may do what the controller does and nothing else.
// The controller itself then runs with exactly those rights (`--state kube` with that user's kubeconfig): a
// ModelRollout applied with kubectl is taken in and its status written, so the Role misses nothing it uses.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { type KubeCluster, serviceAccountUser, startKubeCluster } from "./cluster.ts";
import { applyIstioCrds } from "./istiod.ts";
import { freePorts, logTail, type ServerProcess, startServer } from "./process.ts";

const ISTIO_DIR = join(repoRoot, "deploy", "istio");
const SA = serviceAccountUser("modelroll", "modelroll-controller");
const OTHER = serviceAccountUser("modelroll", "someone-else");

let cluster: KubeCluster;

beforeAll(async () => {
  cluster = await startKubeCluster({ users: [SA, OTHER] });
  await applyIstioCrds(cluster);
  await cluster.kubectlOk(["apply", "-f", join(ISTIO_DIR, "modelrollouts.crd.yaml")]);
  await cluster.kubectlOk(["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
  for (const ns of ["ml", "default"])
    await cluster.kubectlOk(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }));
  await cluster.kubectlOk(["apply", "-f", join(ISTIO_DIR, "controller-ha.yaml")]);
  // The WasmPlugin the controller manages (module and all: the user's), and one it does not.
  await cluster.kubectlOk(["apply", "-f", join(ISTIO_DIR, "filter.gitops.wasmplugin.yaml")]);
  await cluster.kubectlOk(["-n", "ml", "create", "configmap", "not-the-controllers", "--from-literal=a=1"]);
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

const can = async (user: string, ...args: string[]) => {
  const r = await cluster.kubectl(["auth", "can-i", ...args], undefined, { user });
  return r.stdout.trim();
};

describe("the controller's Role, bound to its ServiceAccount (controller-ha.yaml)", () => {
  it("allows what the controller does, in its namespace", async () => {
    const allowed = [
      ["get", "modelrollouts.modelroll.io"],
      ["list", "modelrollouts.modelroll.io"],
      ["watch", "modelrollouts.modelroll.io"],
      ["create", "modelrollouts.modelroll.io"],
      ["update", "modelrollouts.modelroll.io"],
      ["patch", "modelrollouts.modelroll.io"],
      ["delete", "modelrollouts.modelroll.io"],
      ["update", "modelrollouts.modelroll.io", "--subresource=status"],
      ["create", "modelrolloutdecisions.modelroll.io"],
      ["list", "modelrolloutdecisions.modelroll.io"],
      ["update", "modelrolloutdecisions.modelroll.io"],
      ["create", "leases.coordination.k8s.io"],
      ["get", "leases.coordination.k8s.io/modelroll-controller"],
      ["update", "leases.coordination.k8s.io/modelroll-controller"],
      ["create", "events"],
      ["create", "events.events.k8s.io"],
    ];
    const answers = await Promise.all(allowed.map((a) => can(SA.name, ...a, "-n", "modelroll")));
    expect(Object.fromEntries(allowed.map((a, i) => [a.join(" "), answers[i]]))).toEqual(Object.fromEntries(allowed.map((a) => [a.join(" "), "yes"])));
    expect(await can(SA.name, "get", "wasmplugins.extensions.istio.io/modelroll-filter", "-n", "ml")).toBe("yes");
    expect(await can(SA.name, "patch", "wasmplugins.extensions.istio.io/modelroll-filter", "-n", "ml")).toBe("yes");
  });

  it("refuses secrets, other kinds, other namespaces, other Leases and other WasmPlugins; another account gets nothing", async () => {
    const refused: string[][] = [
      ["get", "secrets", "-n", "modelroll"],
      ["list", "secrets", "-n", "modelroll"],
      ["get", "configmaps", "-n", "modelroll"],
      ["create", "pods", "-n", "modelroll"],
      ["list", "modelrollouts.modelroll.io", "-n", "default"],
      ["update", "leases.coordination.k8s.io/kube-controller-manager", "-n", "modelroll"],
      ["create", "leases.coordination.k8s.io", "-n", "default"],
      ["update", "deployments.apps", "-n", "modelroll"],
      ["create", "rolebindings.rbac.authorization.k8s.io", "-n", "modelroll"],
      ["create", "wasmplugins.extensions.istio.io", "-n", "ml"],
      ["patch", "wasmplugins.extensions.istio.io/another-plugin", "-n", "ml"],
      ["delete", "wasmplugins.extensions.istio.io/modelroll-filter", "-n", "ml"],
      ["get", "configmaps", "-n", "ml"],
      ["list", "namespaces"],
      ["create", "customresourcedefinitions.apiextensions.k8s.io"],
    ];
    const answers = await Promise.all(refused.map((a) => can(SA.name, ...a)));
    expect(Object.fromEntries(refused.map((a, i) => [a.join(" "), answers[i]]))).toEqual(Object.fromEntries(refused.map((a) => [a.join(" "), "no"])));
    expect(await can(OTHER.name, "list", "modelrollouts.modelroll.io", "-n", "modelroll")).toBe("no");

    // Real requests, not only the access review: the API server answers 403 to the controller's token.
    const secret = await cluster.kubectl(["-n", "modelroll", "get", "secrets"], undefined, { user: SA.name });
    expect(secret.stderr).toMatch(/forbidden: User "system:serviceaccount:modelroll:modelroll-controller" cannot list resource "secrets"/);
    const cm = await cluster.kubectl(["-n", "ml", "get", "configmap", "not-the-controllers"], undefined, { user: SA.name });
    expect(cm.stderr).toMatch(/cannot get resource "configmaps"/);
  });

  it("lets the controller renew its Lease and write the weights into its WasmPlugin by server-side apply, and no other", async () => {
    const lease = (name: string) =>
      JSON.stringify({
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name, namespace: "modelroll" },
        spec: { holderIdentity: "replica-a", leaseDurationSeconds: 3 },
      });
    await cluster.kubectlOk(["create", "-f", "-"], lease("modelroll-controller"), { user: SA.name });
    // patch is not granted: the controller replaces the Lease with the resourceVersion it read.
    const patch = await cluster.kubectl(
      ["-n", "modelroll", "patch", "lease", "modelroll-controller", "--type=merge", "-p", '{"spec":{"holderIdentity":"x"}}'],
      undefined,
      {
        user: SA.name,
      },
    );
    expect(patch.stderr).toMatch(/cannot patch resource "leases"/);
    const current = JSON.parse(
      await cluster.kubectlOk(["-n", "modelroll", "get", "lease", "modelroll-controller", "-o", "json"], undefined, { user: SA.name }),
    );
    current.spec.holderIdentity = "replica-b";
    await cluster.kubectlOk(["replace", "-f", "-"], JSON.stringify(current), { user: SA.name });
    expect(await cluster.kubectlOk(["-n", "modelroll", "get", "lease", "modelroll-controller", "-o", "jsonpath={.spec.holderIdentity}"])).toBe("replica-b");
    // Another Lease can be created (create cannot be limited to a name) but never renewed.
    await cluster.kubectlOk(["create", "-f", "-"], lease("squatter"), { user: SA.name });
    const other = JSON.parse(await cluster.kubectlOk(["-n", "modelroll", "get", "lease", "squatter", "-o", "json"]));
    other.spec.holderIdentity = "replica-b";
    const renew = await cluster.kubectl(["replace", "-f", "-"], JSON.stringify(other), { user: SA.name });
    expect(renew.stderr).toMatch(/cannot update resource "leases"/);

    const weights = (name: string) =>
      JSON.stringify({
        apiVersion: "extensions.istio.io/v1alpha1",
        kind: "WasmPlugin",
        metadata: { name, namespace: "ml" },
        spec: {
          pluginConfig: { rollouts: [{ name: "fraud-model", pathPrefix: "/v1/models/fraud-model", stickyHeader: "x-user-id", canaryBasisPoints: 2500 }] },
        },
      });
    const apply = ["apply", "--server-side", "--force-conflicts", "--field-manager=modelroll-controller", "-f", "-"];
    await cluster.kubectlOk(apply, weights("modelroll-filter"), { user: SA.name });
    const plugin = JSON.parse(await cluster.kubectlOk(["-n", "ml", "get", "wasmplugin", "modelroll-filter", "-o", "json"]));
    expect(plugin.spec.pluginConfig.rollouts[0].canaryBasisPoints).toBe(2500);
    expect(plugin.spec.url).toMatch(/^oci:\/\//); // the module stays the user's
    const elsewhere = await cluster.kubectl(apply, weights("another-plugin"), { user: SA.name });
    expect(elsewhere.code).not.toBe(0);
    expect(elsewhere.stderr).toMatch(/forbidden/);
  });

  it("is all the real controller needs: in Kubernetes mode with only this token, it takes a kubectl-applied ModelRollout in and writes its status", async () => {
    const [port] = await freePorts(1);
    const controller: ServerProcess = startServer(
      "controller",
      process.execPath,
      [
        join(repoRoot, "controller", "dist", "cli", "controller.js"),
        "--listen",
        `127.0.0.1:${port}`,
        "--state",
        "kube",
        "--kubeconfig",
        cluster.kubeconfigFor(SA.name),
        "--namespace",
        "modelroll",
        "--envoy-admin",
        "http://127.0.0.1:1",
        "--tick-ms",
        "200",
      ],
      // No API token (an inherited one would make the REST read below need it).
      { env: { MODELROLL_API_TOKEN: "" } },
    );
    try {
      const rollout = {
        apiVersion: "modelroll.io/v1alpha1",
        kind: "ModelRollout",
        metadata: { name: "fraud-model", namespace: "modelroll" },
        spec: {
          match: { pathPrefix: "/v1/predict" },
          stickyKey: { header: "x-user-id" },
          owner: "team-fraud",
          rollbackCondition: "errors above 1%",
          stages: [10, 100],
          stageDefaults: { minDurationSeconds: 60, minRequests: 300, deadlineSeconds: 3600 },
          promotion_gates: { error_rate: { maximum: 0.01 } },
        },
      };
      await cluster.kubectlOk(["apply", "-f", "-"], JSON.stringify(rollout));
      const deadline = Date.now() + 60_000;
      let phase = "";
      while (Date.now() < deadline && !phase) {
        if (controller.exited() !== null) throw new Error(`the controller exited (${controller.exited()}):\n${logTail(controller)}`);
        phase = await cluster.kubectlOk(["-n", "modelroll", "get", "modelrollout", "fraud-model", "-o", "jsonpath={.status.phase}"]);
        if (!phase) await new Promise((r) => setTimeout(r, 250));
      }
      expect(phase, `no status written within 60 s; controller log:\n${logTail(controller)}`).not.toBe("");
      // Written by the controller's token, with its finalizer, and the REST API shows the same rollout.
      const object = JSON.parse(await cluster.kubectlOk(["-n", "modelroll", "get", "modelrollout", "fraud-model", "-o", "json", "--show-managed-fields"]));
      expect(object.metadata.finalizers).toContain("modelroll.io/withdraw");
      const managers = (object.metadata.managedFields as Array<{ manager: string; subresource?: string }>).map(
        (f) => `${f.manager}${f.subresource ? `/${f.subresource}` : ""}`,
      );
      expect(managers.some((m) => m.endsWith("/status"))).toBe(true);
      const rest = await (await fetch(`http://127.0.0.1:${port}/v1/rollouts/fraud-model`)).json();
      expect(rest.name).toBe("fraud-model");
      expect(controller.log()).not.toMatch(/forbidden/i);
    } finally {
      await controller.stop();
    }
  });
});
