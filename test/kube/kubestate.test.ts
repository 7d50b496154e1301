// Kubernetes mode end to end: a real etcd and kube-apiserver (cluster.ts), the real controller process with
// --state kube, a real Envoy running the filter in front of the demo models (e2e/harness.ts). kubectl apply starts
// a rollout that `kubectl wait` sees succeed, `kubectl get` prints the columns, a changed spec is applied or
// refused (Invalid, field errors), commands reach the resource both ways (annotation, REST), a kill -9 and restart
// resumes from the API server with nothing lost, and a delete withdraws the canary. Also KubeClient against the
// real server (409, 422 with causes, the status subresource, a watch).
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, KubeError, type KubeObject, type WatchEvent } from "../../controller/src/kube/client.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { startController } from "../../controller/src/server.ts";
import { within } from "../bounded.ts";
import { api, type Stack, sendMany, startStack, waitFor } from "../e2e/harness.ts";
import { type KubeCluster, startKubeCluster } from "./cluster.ts";

const ENTRY = fileURLToPath(new URL("../../controller/dist/cli/controller.js", import.meta.url));
const NS = "ml-team";
const MRO = { group: "modelroll.io", version: "v1alpha1", plural: "modelrollouts", namespace: NS };

let cluster: KubeCluster;
let stack: Stack;
let controller: { child: ChildProcess; output: () => string } | null = null;

async function startControllerProcess(): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      ENTRY,
      ...["--listen", `127.0.0.1:${stack.controllerPort}`, "--state", "kube", "--kubeconfig", cluster.kubeconfig, "--namespace", NS],
      ...["--envoy-admin", stack.adminUrl, "--tick-ms", "250"],
    ],
    { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (c: string) => {
    output += c;
  });
  child.stderr?.setEncoding("utf8").on("data", (c: string) => {
    output += c;
  });
  controller = { child, output: () => output };
  await waitFor(
    "the controller's 'listening on' line",
    async () => {
      if (child.exitCode !== null) throw new Error(`controller exited:\n${output}`);
      return output.includes("listening on");
    },
    60_000,
    50,
  );
}

async function killController(signal: NodeJS.Signals): Promise<void> {
  const running = controller;
  if (!running || running.child.exitCode !== null || running.child.signalCode !== null) return;
  const exited = new Promise((resolve) => running.child.once("exit", resolve));
  running.child.kill(signal);
  await within(15_000, "the controller to exit", exited);
  controller = null;
}

const ctl = () => `http://127.0.0.1:${stack.controllerPort}`;
const kubectl = (args: string[], input?: string) => cluster.kubectl(["-n", NS, ...args], input);
const kubectlOk = (args: string[], input?: string) => cluster.kubectlOk(["-n", NS, ...args], input);
const jsonpath = (name: string, path: string) => kubectlOk(["get", "modelrollout", name, "-o", `jsonpath=${path}`]);

function manifest(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: "modelroll.io/v1alpha1", kind: "ModelRollout", metadata: { name }, spec });
}

const baseSpec = (name: string) => ({
  match: { pathPrefix: `/${name}` },
  stickyKey: { header: "x-user-id" },
  models: { stable: "v1", canary: "v2" },
  owner: "team-ml",
  rollbackCondition: "canary error rate above 1%",
  promotion_gates: { error_rate: { maximum: 0.01 } },
});

async function writes(): Promise<Record<string, number>> {
  const text = await (await fetch(`${ctl()}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^modelroll_kube_writes\{kind="(\w+)"\} (\d+)/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

beforeAll(async () => {
  cluster = await startKubeCluster();
  await cluster.kubectlOk(["apply", "-f", join(repoRoot, "deploy/istio/modelrollouts.crd.yaml")]);
  await cluster.kubectlOk(["wait", "--for=condition=Established", "crd/modelrollouts.modelroll.io", "crd/modelrolloutdecisions.modelroll.io", "--timeout=60s"]);
  await cluster.kubectlOk(["create", "namespace", NS]);
  stack = await startStack({ pollWaitSeconds: 5 });
  // The stack's in-process controller makes way for the real process on the same port (Envoy long-polls it).
  await stack.stopController();
  await startControllerProcess();
}, 180_000);

afterAll(async () => {
  await killController("SIGTERM").catch(() => {});
  await stack?.stop();
  await cluster?.stop();
});

describe("ModelRollouts with the controller in Kubernetes mode", () => {
  it("kubectl apply -> Succeeded, as `kubectl wait` sees it; kubectl get prints phase, stage, canary and the model versions", async () => {
    const name = "fraud-model";
    const spec = { ...baseSpec(name), stages: [20, 100], stageDefaults: { minDurationSeconds: 1, minRequests: 100, deadlineSeconds: 120 } };
    await kubectlOk(["apply", "-f", "-"], manifest(name, spec));
    let sent = 0;
    let waited = { code: 1, stdout: "", stderr: "" };
    const versions = new Set<string>();
    for (let round = 0; round < 60 && waited.code !== 0; round += 1) {
      const replies = await sendMany(`${stack.dataUrl}/${name}/p`, 200, (i) => ({ "x-user-id": `u${sent + i}` }), 16);
      sent += replies.length;
      for (const r of replies) if (r.modelVersion) versions.add(r.modelVersion);
      expect(replies.every((r) => r.status === 200)).toBe(true);
      waited = await kubectl(["wait", "--for=jsonpath={.status.phase}=Succeeded", `modelrollout/${name}`, "--timeout=2s"]);
    }
    expect(waited.stderr).toBe("");
    expect(waited.stdout).toContain(`modelrollout.modelroll.io/${name} condition met`);
    // Traffic went through the filter to both models on the way.
    expect([...versions].sort()).toEqual(["v1", "v2"]);
    const table = await kubectlOk(["get", "modelrollouts"]);
    const [header, row] = table.trim().split("\n");
    expect(header?.split(/\s+/)).toEqual(["NAME", "PHASE", "STAGE", "CANARY", "STABLE-MODEL", "CANARY-MODEL", "AGE"]);
    expect(row?.split(/\s+/).slice(0, 6)).toEqual([name, "Succeeded", "100%", "100", "v1", "v2"]);
    expect(await jsonpath(name, '{.status.conditions[?(@.type=="Succeeded")].status}')).toBe("True");
    // The history is in the API server, chunked, and is what the REST API shows.
    const history = (await api(ctl(), "GET", `/v1/rollouts/${name}/history`)).json;
    const kinds = history.decisions.map((d: { kind: string }) => d.kind).filter((k: string) => k !== "held");
    expect(kinds).toEqual(["started", "advanced", "succeeded"]);
    const chunks = JSON.parse(await kubectlOk(["get", "modelrolloutdecisions", "-l", `modelroll.io/rollout=${name}`, "-o", "json"]));
    const stored = chunks.items.flatMap((c: { decisions: unknown[] }) => c.decisions);
    expect(stored.length).toBe(history.decisions.length);
    expect(Number(await jsonpath(name, "{.status.decisions.count}"))).toBe(history.decisions.length);
    const bytes = chunks.items.map((c: unknown) => JSON.stringify(c).length);
    const w = await writes();
    console.log(
      `kubestate: ${name} Succeeded after ${sent} requests; ${history.decisions.length} decisions in ${chunks.items.length} chunk object(s) of ${bytes.join(", ")} bytes; API writes so far ${JSON.stringify(w)}`,
    );
  });

  it("a changed spec is applied (observedGeneration follows) or refused as Invalid with the field errors, the rollout going on", async () => {
    const name = "held-model";
    const spec = { ...baseSpec(name), stages: [10, 100], stageDefaults: { minDurationSeconds: 1, minRequests: 1_000_000, deadlineSeconds: 3600 } };
    await kubectlOk(["apply", "-f", "-"], manifest(name, spec));
    await waitFor("held-model at 10%", async () => (await jsonpath(name, "{.status.phase} {.status.stage}")) === "Canary 10%", 30_000, 100);

    await kubectlOk(["apply", "-f", "-"], manifest(name, { ...spec, rollbackCondition: "canary error rate above 0.5%" }));
    await waitFor("generation 2 observed", async () => (await jsonpath(name, "{.metadata.generation} {.status.observedGeneration}")) === "2 2", 30_000, 100);
    const view = (await api(ctl(), "GET", `/v1/rollouts/${name}`)).json;
    expect(view.spec.rollbackCondition).toBe("canary error rate above 0.5%");
    expect(await jsonpath(name, '{.status.conditions[?(@.type=="Invalid")].status}')).toBe("False");

    // Open in the CRD schema (a stage may be "shadow", a number or an object): the controller judges it.
    await kubectlOk(["apply", "-f", "-"], manifest(name, { ...spec, stages: [10, "x", 100] }));
    await waitFor("generation 3 observed", async () => (await jsonpath(name, "{.status.observedGeneration}")) === "3", 30_000, 100);
    expect(await jsonpath(name, '{.status.conditions[?(@.type=="Invalid")].status}')).toBe("True");
    const errors = JSON.parse(await jsonpath(name, "{.status.fieldErrors}"));
    expect(errors).toEqual([{ path: "/stages/1", reason: expect.stringContaining("must be 'shadow', a canary percent") }]);
    expect(await jsonpath(name, "{.status.phase} {.status.stage} {.status.canaryPercent}")).toBe("Canary 10% 10");

    // What the CRD's schema can say, kubectl's strict validation refuses before the controller sees it.
    const typo = await kubectl(["apply", "-f", "-"], manifest(name, { ...spec, canaryPrecent: 5 }));
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toContain('unknown field "spec.canaryPrecent"');
  });

  it("commands reach the resource both ways: an annotation pauses, the REST API resumes; a REST PUT of a manifest's rollout is refused", async () => {
    const name = "held-model";
    await kubectlOk(["annotate", "--overwrite", `modelrollout/${name}`, "modelroll.io/pause=ci-1"]);
    await waitFor("Paused by annotation", async () => (await jsonpath(name, "{.status.phase}")) === "Paused", 30_000, 100);
    expect(await jsonpath(name, '{.status.conditions[?(@.type=="Paused")].status}')).toBe("True");
    const resumed = await api(ctl(), "POST", `/v1/rollouts/${name}/resume`, { reason: "checked" });
    expect(resumed.status, JSON.stringify(resumed.json)).toBe(200);
    // The REST answer came after the API server had it: kubectl sees it at once.
    expect(await jsonpath(name, "{.status.phase}")).toBe("Canary");
    // The same token again is no new command.
    await kubectlOk(["annotate", "--overwrite", `modelrollout/${name}`, "modelroll.io/pause=ci-1", "modelroll.io/note=x"]);
    expect(await jsonpath(name, "{.status.phase}")).toBe("Canary");
    const put = await api(ctl(), "PUT", `/v1/rollouts/${name}`, { name, ...baseSpec(name), stages: [10, 100] });
    expect(put.status).toBe(409);
    expect(put.json.error).toContain(`its spec belongs to the ModelRollout ${NS}/${name}`);
  });

  it("a rollout made through the REST API is a ModelRollout too; a stale write is refused 409, not lost or doubled", async () => {
    const name = "rest-made";
    const created = await api(ctl(), "POST", "/v1/rollouts", { name, match: { pathPrefix: `/${name}` }, stickyKey: { header: "x-user-id" }, canaryPercent: 3 });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    expect(await jsonpath(name, "{.status.phase} {.status.canaryPercent} {.metadata.annotations.modelroll\\.io/origin}")).toBe("Manual 3 rest");
    // Another writer moves the object on (as another replica would); this controller's next write is then stale.
    const client = KubeClient.fromKubeconfig(cluster.kubeconfig);
    try {
      const object = await client.get(MRO, name);
      await client.replace(MRO, { ...object, metadata: { ...object.metadata, labels: { touched: "yes" } } });
      const weight = await api(ctl(), "PUT", `/v1/rollouts/${name}/weight`, { canaryPercent: 9 });
      // Either the watch delivered the other write first (200) or the write was refused as stale (409, the server's version kept).
      expect([200, 409]).toContain(weight.status);
      const shown = (await api(ctl(), "GET", `/v1/rollouts/${name}`)).json.canaryPercent;
      expect(Number(await jsonpath(name, "{.status.canaryPercent}"))).toBe(shown);
      expect(shown).toBe(weight.status === 200 ? 9 : 3);
    } finally {
      client.close();
    }
    const deleted = await api(ctl(), "DELETE", `/v1/rollouts/${name}`);
    expect(deleted.status).toBe(204);
    expect((await kubectl(["get", "modelrollout", name])).stderr).toContain("NotFound");
  });

  it("kill -9 and a new controller process: every rollout resumes from the API server, same phase, stage, revision and decisions", async () => {
    const before = (await api(ctl(), "GET", "/v1/rollouts")).json.rollouts.map(
      (r: { name: string; phase: string; revision: number; canaryPercent: number }) => [r.name, r.phase, r.revision, r.canaryPercent],
    );
    const historyBefore = (await api(ctl(), "GET", "/v1/rollouts/held-model/history")).json.decisions.filter((d: { kind: string }) => d.kind !== "held");
    await killController("SIGKILL");
    await startControllerProcess();
    expect(controller?.output()).toContain(`namespace ${NS} (2 rollouts resumed)`);
    const after = (await api(ctl(), "GET", "/v1/rollouts")).json.rollouts.map((r: { name: string; phase: string; revision: number; canaryPercent: number }) => [
      r.name,
      r.phase,
      r.revision,
      r.canaryPercent,
    ]);
    expect(after).toEqual(before);
    const historyAfter = (await api(ctl(), "GET", "/v1/rollouts/held-model/history")).json.decisions.filter((d: { kind: string }) => d.kind !== "held");
    expect(historyAfter.slice(0, historyBefore.length)).toEqual(historyBefore);
    // A changed spec after the restart is judged against the resumed record (which reads back exactly as written).
    const spec = { ...baseSpec("held-model"), rollbackCondition: "canary error rate above 0.25%", stages: [10, 100] };
    await kubectlOk(
      ["apply", "-f", "-"],
      manifest("held-model", { ...spec, stageDefaults: { minDurationSeconds: 1, minRequests: 1_000_000, deadlineSeconds: 3600 } }),
    );
    await waitFor("generation 4 observed", async () => (await jsonpath("held-model", "{.status.observedGeneration}")) === "4", 30_000, 100);
    expect(await jsonpath("held-model", '{.status.conditions[?(@.type=="Invalid")].status}')).toBe("False");
    expect((await api(ctl(), "GET", "/v1/rollouts/held-model")).json.spec.rollbackCondition).toBe("canary error rate above 0.25%");
    // And it goes on deciding: the annotation's next token promotes held-model to its last stage.
    await kubectlOk(["annotate", "--overwrite", "modelrollout/held-model", "modelroll.io/promote=ci-2"]);
    await waitFor("held-model promoted to 100%", async () => (await jsonpath("held-model", "{.status.stage}")) === "100%", 30_000, 100);
  });

  it("kubectl delete withdraws the canary: traffic back on stable, the rollout archived, the object gone", async () => {
    const name = "held-model";
    await kubectlOk(["delete", "modelrollout", name, "--timeout=60s"]);
    expect((await kubectl(["get", "modelrollout", name])).stderr).toContain("NotFound");
    await waitFor(
      "all of /held-model on stable",
      async () => (await sendMany(`${stack.dataUrl}/${name}/p`, 32, (i) => ({ "x-user-id": `d${i}` }), 8)).every((r) => r.modelVersion === "v1"),
      20_000,
      50,
    );
    const archived = (await api(ctl(), "GET", "/v1/rollouts?archived=true")).json.rollouts;
    expect(archived.map((r: { name: string; archived: { reason: string } }) => [r.name, r.archived.reason])).toContainEqual([
      name,
      "deleted by kubectl: ModelRollout deleted",
    ]);
    console.log(`kubestate: API writes at the end ${JSON.stringify(await writes())}`);
  });
});

describe("a stale write (in process, the watch stopped so the controller cannot have seen the other write)", () => {
  it("is refused: REST answers 409 (412 with If-Match), the store takes the server's version, nothing doubled", async () => {
    const ns = "ml-team-2";
    await cluster.kubectlOk(["create", "namespace", ns]);
    const client = KubeClient.fromKubeconfig(cluster.kubeconfig);
    const running = await startController({ kube: { client, namespace: ns }, tickIntervalMs: 0, envoyAdminUrls: [] });
    const other = KubeClient.fromKubeconfig(cluster.kubeconfig);
    try {
      const url = running.url;
      const created = await api(url, "POST", "/v1/rollouts", {
        name: "stale",
        match: { pathPrefix: "/stale" },
        stickyKey: { header: "x-u" },
        canaryPercent: 3,
      });
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      await running.app.modelroll.kube?.sync.stop();
      // Another writer (another replica) sets the weight to 4 in the API server.
      const ref = { ...MRO, namespace: ns };
      const object = await other.get<KubeObject & { status: Record<string, unknown> }>(ref, "stale");
      const record = JSON.parse(String(object.status.state));
      await other.replaceStatus(ref, {
        ...object,
        status: { ...object.status, canaryPercent: 4, state: JSON.stringify({ ...record, canaryPercent: 4, revision: record.revision + 1 }) },
      });
      const refused = await api(url, "PUT", "/v1/rollouts/stale/weight", { canaryPercent: 9 });
      expect(refused.status).toBe(409);
      expect(refused.json.error).toContain("rollout stale: changed meanwhile by another writer");
      // The store now holds the server's version: the weight the other writer set, its revision.
      const view = (await api(url, "GET", "/v1/rollouts/stale")).json;
      expect([view.canaryPercent, view.revision]).toEqual([4, record.revision + 1]);
      const withEtag = await api(url, "PUT", "/v1/rollouts/stale/weight", { canaryPercent: 6 }, { "if-match": `"${view.revision}"` });
      expect(withEtag.status, JSON.stringify(withEtag.json)).toBe(200);
      expect((await other.get<KubeObject & { status: { canaryPercent: number } }>(ref, "stale")).status.canaryPercent).toBe(6);
      // Stale again, now with If-Match: 412.
      const again = await other.get<KubeObject & { status: Record<string, unknown> }>(ref, "stale");
      await other.replaceStatus(ref, { ...again, status: { ...again.status, pending: "touched" } });
      const precondition = await api(url, "PUT", "/v1/rollouts/stale/weight", { canaryPercent: 7 }, { "if-match": `"${view.revision + 1}"` });
      expect(precondition.status).toBe(412);
    } finally {
      await running.close();
      other.close();
    }
  });
});

describe("KubeClient against the real API server", () => {
  it("409 on a stale resourceVersion, 422 with the field causes, the status subresource apart from the spec, and a watch", async () => {
    // A namespace no controller watches: nothing but this test writes there.
    const ns = "ml-team-3";
    await cluster.kubectlOk(["create", "namespace", ns]);
    const mro = { ...MRO, namespace: ns };
    const client = KubeClient.fromKubeconfig(cluster.kubeconfig);
    const ref = { group: "", version: "v1", plural: "configmaps", namespace: ns };
    const abort = new AbortController();
    const seen: WatchEvent[] = [];
    const list = await client.list(ref);
    const watching = (async () => {
      for await (const event of client.watch(ref, { resourceVersion: list.resourceVersion, signal: abort.signal })) {
        seen.push(event);
        if (event.type === "DELETED") abort.abort();
      }
    })();
    try {
      const made = await client.create<KubeObject>(ref, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c1" }, data: { a: "1" } } as KubeObject);
      await client.replace(ref, { ...made, data: { a: "2" } });
      const stale = await client.replace(ref, { ...made, data: { a: "3" } }).catch((e: unknown) => e as KubeError);
      expect(stale).toBeInstanceOf(KubeError);
      expect([(stale as KubeError).status, (stale as KubeError).reason]).toEqual([409, "Conflict"]);
      const invalid = await client
        .create(mro, { apiVersion: "modelroll.io/v1alpha1", kind: "ModelRollout", metadata: { name: "bad" }, spec: { match: { pathPrefix: 5 } } })
        .catch((e: unknown) => e as KubeError);
      expect([(invalid as KubeError).status, (invalid as KubeError).reason]).toEqual([422, "Invalid"]);
      expect((invalid as KubeError).causes.map((c) => c.field)).toEqual(expect.arrayContaining(["spec.match.pathPrefix", "spec.stickyKey"]));
      const made2 = await client.create(mro, {
        apiVersion: "modelroll.io/v1alpha1",
        kind: "ModelRollout",
        metadata: { name: "status-only" },
        spec: { match: { pathPrefix: "/s" }, stickyKey: { header: "x-u" } },
        status: { phase: "Ignored" },
      });
      expect(made2.status).toBeUndefined();
      const withStatus = await client.replaceStatus(mro, {
        ...made2,
        spec: { match: { pathPrefix: "/changed" }, stickyKey: { header: "x-u" } },
        status: { phase: "Set" },
      });
      expect([(withStatus.status as { phase: string }).phase, (withStatus.spec as { match: { pathPrefix: string } }).match.pathPrefix]).toEqual(["Set", "/s"]);
      await client.delete(mro, "status-only");
      await client.delete(ref, "c1");
      await within(15_000, "the watch to see c1 added, modified and deleted", watching);
      expect(seen.filter((e) => e.object.metadata.name === "c1").map((e) => e.type)).toEqual(["ADDED", "MODIFIED", "DELETED"]);
    } finally {
      abort.abort();
      client.close();
    }
  });
});
