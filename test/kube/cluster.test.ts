// The Kubernetes test harness itself (cluster.ts): a real etcd and kube-apiserver that kubectl talks to, that
// refuses what RBAC does not grant, and that keeps its objects across a restart of the API server alone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type KubeCluster, serviceAccountUser, startKubeCluster } from "./cluster.ts";

const READER = "reader@example.com";
const SA = serviceAccountUser("team-a", "robot");

let cluster: KubeCluster;

beforeAll(async () => {
  cluster = await startKubeCluster({ users: [{ name: READER, groups: ["readers"] }, SA] });
  console.log(`kube-apiserver ready in ${(cluster.readyMs / 1000).toFixed(1)} s (etcd included)`);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("the test cluster (real etcd + kube-apiserver)", () => {
  it("answers kubectl as the admin, with the version it was built at and the default namespaces", async () => {
    const version = JSON.parse(await cluster.kubectlOk(["version", "-o", "json"]));
    expect(version.serverVersion.gitVersion).toBe("v1.34.2");
    const names = (await cluster.kubectlOk(["get", "ns", "-o", "jsonpath={.items[*].metadata.name}"])).split(" ");
    expect(names).toEqual(expect.arrayContaining(["default", "kube-system", "kube-public"]));
    const authz = await cluster.kubectlOk(["auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}"]);
    expect(authz).toContain("system:masters");
  });

  it("authenticates the static-token users and refuses what RBAC does not grant them, until a binding does", async () => {
    const who = await cluster.kubectlOk(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], undefined, { user: SA.name });
    expect(who).toBe(SA.name);

    await cluster.kubectlOk(["create", "namespace", "team-a"]);
    await cluster.kubectlOk(["-n", "team-a", "create", "configmap", "settings", "--from-literal=a=1"]);
    const refused = await cluster.kubectl(["-n", "team-a", "get", "configmap", "settings"], undefined, { user: READER });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/forbidden: User "reader@example.com" cannot get resource "configmaps"/);

    // A Role and a RoleBinding to the user's group: now it may read configmaps there, and nothing else.
    await cluster.kubectlOk(["-n", "team-a", "create", "role", "read-cm", "--verb=get,list", "--resource=configmaps"]);
    await cluster.kubectlOk(["-n", "team-a", "create", "rolebinding", "readers", "--role=read-cm", "--group=readers"]);
    expect(await cluster.kubectlOk(["-n", "team-a", "get", "configmap", "settings", "-o", "jsonpath={.data.a}"], undefined, { user: READER })).toBe("1");
    const write = await cluster.kubectl(["-n", "team-a", "delete", "configmap", "settings"], undefined, { user: READER });
    expect(write.stderr).toMatch(/forbidden: .* cannot delete resource "configmaps"/);
    const elsewhere = await cluster.kubectl(["-n", "default", "get", "configmaps"], undefined, { user: READER });
    expect(elsewhere.stderr).toMatch(/forbidden: .* cannot list resource "configmaps" in API group "" in the namespace "default"/);

    // A RoleBinding to the ServiceAccount subject binds the token user that stands for it.
    await cluster.kubectlOk(["-n", "team-a", "create", "rolebinding", "robot", "--role=read-cm", "--serviceaccount=team-a:robot"]);
    expect(await cluster.kubectlOk(["-n", "team-a", "auth", "can-i", "list", "configmaps"], undefined, { user: SA.name })).toBe("yes\n");
    const no = await cluster.kubectl(["-n", "team-a", "auth", "can-i", "list", "secrets"], undefined, { user: SA.name });
    expect(no.stdout).toBe("no\n");

    // The raw API answers 403 with a Status naming the reason, as the controller's client sees it.
    const raw = await cluster.get("/api/v1/namespaces/team-a/secrets", READER);
    expect(raw.status).toBe(403);
    expect(JSON.parse(raw.body).reason).toBe("Forbidden");
  });

  it("keeps its objects when the API server alone stops and starts again on the same address", async () => {
    await cluster.kubectlOk(["create", "namespace", "survivors"]);
    await cluster.kubectlOk(["-n", "survivors", "create", "configmap", "kept", "--from-literal=v=before-restart"]);
    const before = await cluster.kubectlOk(["-n", "survivors", "get", "configmap", "kept", "-o", "jsonpath={.metadata.uid}"]);

    await cluster.stopApiServer();
    const down = await cluster.kubectl(["get", "ns"], undefined, { timeoutMs: 20_000 });
    expect(down.code).not.toBe(0);
    expect(down.stderr).toMatch(/connection refused|was refused/);

    await cluster.startApiServer();
    expect(await cluster.kubectlOk(["-n", "survivors", "get", "configmap", "kept", "-o", "jsonpath={.metadata.uid}"])).toBe(before);
    expect(await cluster.kubectlOk(["-n", "survivors", "get", "configmap", "kept", "-o", "jsonpath={.data.v}"])).toBe("before-restart");
    // Users and RBAC survive too (tokens from the same file, bindings from etcd).
    expect(await cluster.kubectlOk(["-n", "team-a", "get", "configmap", "settings", "-o", "jsonpath={.data.a}"], undefined, { user: READER })).toBe("1");
  });
});
