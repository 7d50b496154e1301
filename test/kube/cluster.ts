// A real Kubernetes control plane for the tests: etcd and kube-apiserver (built by scripts/install-kube.mjs into
// .tools/kube) on free loopback ports, set up as a real cluster's API server is: TLS (the server's self-signed
// certificate, which the kubeconfig trusts), static bearer tokens, RBAC and Node authorization, service-account
// token signing keys, a service IP range, the default admission plugins. There is no controller-manager,
// scheduler or kubelet: objects are stored, validated, admitted, watched and authorized, but a Deployment makes no
// pods (the tests run the controller replicas as host processes with a kubeconfig, which is what a pod with a
// mounted service-account token amounts to for the API server).
//
//   const cluster = await startKubeCluster({ users: [serviceAccountUser("modelroll", "modelroll-controller")] });
//   await cluster.kubectl(["get", "ns"]);                                          // as the admin
//   await cluster.kubectl(["get", "secrets"], undefined, { user: "system:serviceaccount:modelroll:modelroll-controller" });
//   await cluster.stopApiServer(); ...; await cluster.startApiServer();           // same etcd, same port
//   await cluster.stop();                                                         // everything stopped and removed
import { spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../../controller/src/paths.ts";
import { freePorts, logTail, type ServerProcess, startServer } from "./process.ts";

export interface KubeUser {
  /** The user name the API server authenticates the token as (RBAC subjects of kind User name it). */
  name: string;
  /** Groups besides system:authenticated, which every token user gets. */
  groups?: string[];
}

export interface StartKubeClusterOptions {
  /** Users with a static token of their own and no permissions until a RoleBinding grants them some. */
  users?: KubeUser[];
  /** Bound for each server to become ready (default 90 s: a loaded 2-core machine, far above the usual 5-20 s). */
  readyTimeoutMs?: number;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** Run as this user (one of the options' users) instead of the admin. */
  user?: string;
  /** Bound for the command (default 60 s); past it kubectl is killed and the result says so. */
  timeoutMs?: number;
}

export interface KubeCluster {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** The admin's bearer token (group system:masters). */
  readonly token: string;
  /** The CA that signed the API server's certificate (its self-signed bundle), for clients that verify TLS. */
  readonly caFile: string;
  /** A kubeconfig for the admin (kubectl, the controller's --kubeconfig). */
  readonly kubeconfig: string;
  /** The harness's temporary directory (removed by stop()); a test may put its own files here. */
  readonly dir: string;
  /** How long the first start took until /readyz answered ok, in ms (for the report; never asserted). */
  readonly readyMs: number;
  /** The bearer token of one of the options' users. */
  tokenFor(user: string): string;
  /** A kubeconfig file for one of the options' users. */
  kubeconfigFor(user: string): string;
  /** Runs .tools/kube/kubectl against this cluster; never throws for a non-zero exit. */
  kubectl(args: string[], input?: string, opts?: KubectlOptions): Promise<KubectlResult>;
  /** kubectl that must succeed: its stdout, or an error with the command and its stderr. */
  kubectlOk(args: string[], input?: string, opts?: KubectlOptions): Promise<string>;
  /** GET a path of the API as the admin (or a user): status and body text. */
  get(path: string, user?: string): Promise<{ status: number; body: string }>;
  /** Stops kube-apiserver alone (etcd keeps the objects). */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same port with the same etcd and keys; resolves when ready. */
  startApiServer(): Promise<void>;
  apiServerLog(): string;
  etcdLog(): string;
  /** Stops both servers and removes the temporary directory. Safe to call twice. */
  stop(): Promise<void>;
}

export const ADMIN_USER = "modelroll-test-admin";

/** A static-token user standing for a ServiceAccount (what its mounted token authenticates as), for RBAC tests. */
export function serviceAccountUser(namespace: string, name: string): KubeUser {
  return { name: `system:serviceaccount:${namespace}:${name}`, groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`] };
}

/** The path of one of the Kubernetes tools (KUBE_BIN_DIR or .tools/kube). */
export function kubeBinary(name: "etcd" | "kube-apiserver" | "kubectl"): string {
  const bin = join(process.env.KUBE_BIN_DIR ?? join(repoRoot, ".tools", "kube"), name);
  if (!existsSync(bin)) {
    throw new Error(
      `${bin} is missing: run 'node scripts/test-tools.mjs kube' (the test set-up does it for files listed under "kube" in test/suites.ts NEEDS) or set KUBE_BIN_DIR`,
    );
  }
  return bin;
}

function kubeconfigText(url: string, caFile: string, user: string, token: string): string {
  return `${JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "modelroll-test", cluster: { server: url, "certificate-authority": caFile } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: "modelroll-test", context: { cluster: "modelroll-test", user, namespace: "default" } }],
      "current-context": "modelroll-test",
    },
    null,
    2,
  )}\n`;
}

function httpsGet(url: string, ca: Buffer, token: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { authorization: `Bearer ${token}` }, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** Polls `probe` until it returns null (ready) or the server exits or the bound passes; the error says why. */
async function waitReady(server: ServerProcess, what: string, timeoutMs: number, probe: () => Promise<string | null>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "not answering yet";
  for (;;) {
    if (server.exited() !== null) throw new Error(`${what} exited during start-up (${server.exited()}):\n${logTail(server)}`);
    try {
      const problem = await probe();
      if (problem === null) return;
      last = problem;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms (last: ${last}):\n${logTail(server)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function startKubeCluster(opts: StartKubeClusterOptions = {}): Promise<KubeCluster> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 90_000;
  const etcdBin = kubeBinary("etcd");
  const apiBin = kubeBinary("kube-apiserver");
  const kubectlBin = kubeBinary("kubectl");
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), "modelroll-kube-"));
  const certDir = join(dir, "pki");
  mkdirSync(certDir);
  const caFile = join(certDir, "apiserver.crt"); // kube-apiserver writes its self-signed bundle here at first start

  // Service-account token signing keys, as a real cluster's API server has them.
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  writeFileSync(join(certDir, "sa.pub"), publicKey.export({ type: "spki", format: "pem" }));
  writeFileSync(join(certDir, "sa.key"), privateKey.export({ type: "pkcs8", format: "pem" }));

  const newToken = () => randomBytes(24).toString("hex");
  const token = newToken();
  const tokens = new Map<string, string>();
  const csvLines = [`${token},${ADMIN_USER},uid-admin,"system:masters"`];
  for (const [i, user] of (opts.users ?? []).entries()) {
    if (user.name === ADMIN_USER || tokens.has(user.name)) throw new Error(`startKubeCluster: user ${user.name} given twice`);
    if (/[",\n]/.test(user.name) || (user.groups ?? []).some((g) => /[",\n]/.test(g)))
      throw new Error(`startKubeCluster: user ${user.name}: no quotes, commas or newlines in names and groups`);
    const t = newToken();
    tokens.set(user.name, t);
    csvLines.push(`${t},${user.name},uid-user-${i}${user.groups?.length ? `,"${user.groups.join(",")}"` : ""}`);
  }
  const tokenFile = join(certDir, "tokens.csv");
  writeFileSync(tokenFile, `${csvLines.join("\n")}\n`, { mode: 0o600 });

  const [etcdPort, etcdPeerPort, apiPort] = await freePorts(3);
  const url = `https://127.0.0.1:${apiPort}`;
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigText(url, caFile, ADMIN_USER, token), { mode: 0o600 });
  const userConfigs = new Map<string, string>();
  for (const [name, t] of tokens) {
    const path = join(dir, `kubeconfig-${userConfigs.size + 1}`);
    writeFileSync(path, kubeconfigText(url, caFile, name, t), { mode: 0o600 });
    userConfigs.set(name, path);
  }

  const etcdClient = `http://127.0.0.1:${etcdPort}`;
  const etcdPeer = `http://127.0.0.1:${etcdPeerPort}`;
  // --unsafe-no-fsync: test data, thrown away; fsyncs on a shared disk only slow every write down.
  const etcd = startServer(
    "etcd",
    etcdBin,
    [
      "--name=default",
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=${etcdClient}`,
      `--advertise-client-urls=${etcdClient}`,
      `--listen-peer-urls=${etcdPeer}`,
      `--initial-advertise-peer-urls=${etcdPeer}`,
      `--initial-cluster=default=${etcdPeer}`,
      "--unsafe-no-fsync",
      "--log-level=warn",
    ],
    { cwd: dir },
  );
  let api: ServerProcess | null = null;
  let stopped = false;

  const apiArgs = [
    `--etcd-servers=${etcdClient}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${apiPort}`,
    `--cert-dir=${certDir}`,
    `--token-auth-file=${tokenFile}`,
    "--authorization-mode=Node,RBAC",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${join(certDir, "sa.pub")}`,
    `--service-account-signing-key-file=${join(certDir, "sa.key")}`,
    "--service-cluster-ip-range=10.96.0.0/16",
    // The `kubernetes` Service's endpoints would be 127.0.0.1, which Endpoints refuse (loopback): keep none.
    "--endpoint-reconciler-type=none",
    "--profiling=false",
  ];

  const cleanUp = async () => {
    stopped = true;
    await api?.stop();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  };

  const ca = () => readFileSync(caFile);
  const startApi = async () => {
    api = startServer("kube-apiserver", apiBin, apiArgs, { cwd: dir });
    const server = api;
    await waitReady(server, `kube-apiserver on ${url}`, readyTimeoutMs, async () => {
      if (!existsSync(caFile)) return "no certificate written yet";
      const r = await httpsGet(`${url}/readyz`, ca(), token);
      return r.status === 200 && r.body.trim() === "ok" ? null : `/readyz answered ${r.status}: ${r.body.trim().split("\n").slice(-3).join(" ")}`;
    });
  };

  try {
    await waitReady(etcd, `etcd on ${etcdClient}`, readyTimeoutMs, async () => {
      const res = await fetch(`${etcdClient}/health`, { signal: AbortSignal.timeout(2000) });
      const text = await res.text();
      return res.status === 200 && /"health":\s*"true"/.test(text) ? null : `/health answered ${res.status}: ${text.slice(0, 200)}`;
    });
    await startApi();
  } catch (error) {
    await cleanUp();
    throw error;
  }
  const readyMs = performance.now() - started;

  const configOf = (user?: string) => {
    if (user === undefined) return kubeconfig;
    const path = userConfigs.get(user);
    if (!path) throw new Error(`no user ${user} in this cluster (declared: ${[...userConfigs.keys()].join(", ") || "none"})`);
    return path;
  };
  const cacheDir = join(dir, "kubectl-cache");

  const kubectl = (args: string[], input?: string, o: KubectlOptions = {}): Promise<KubectlResult> => {
    const config = configOf(o.user);
    const timeoutMs = o.timeoutMs ?? 60_000;
    return new Promise((resolve) => {
      // Its own discovery cache: another cluster on a reused port must never answer from this one's.
      const child = spawn(kubectlBin, [`--kubeconfig=${config}`, `--cache-dir=${cacheDir}`, ...args], { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c) => {
        stdout += c;
      });
      child.stderr.on("data", (c) => {
        stderr += c;
      });
      const timer = setTimeout(() => {
        stderr += `\n(killed by the harness after ${timeoutMs} ms)`;
        child.kill("SIGKILL");
      }, timeoutMs);
      child.on("error", (e) => {
        clearTimeout(timer);
        resolve({ code: -1, stdout, stderr: `${stderr}${e.message}` });
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
      child.stdin.on("error", () => {}); // kubectl may exit before reading all its input
      child.stdin.end(input ?? "");
    });
  };

  return {
    url,
    token,
    caFile,
    kubeconfig,
    dir,
    readyMs,
    tokenFor(user) {
      const t = tokens.get(user);
      if (t === undefined) throw new Error(`no user ${user} in this cluster`);
      return t;
    },
    kubeconfigFor: (user) => configOf(user),
    kubectl,
    async kubectlOk(args, input, o) {
      const r = await kubectl(args, input, o);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}${o?.user ? ` (as ${o.user})` : ""} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      return r.stdout;
    },
    get: (path, user) => httpsGet(`${url}${path}`, ca(), user === undefined ? token : (tokens.get(user) ?? "unknown-user"), 10_000),
    async stopApiServer() {
      await api?.stop();
    },
    async startApiServer() {
      if (stopped) throw new Error("the cluster was stopped");
      if (api !== null && api.exited() === null) throw new Error("kube-apiserver is already running");
      await startApi();
    },
    apiServerLog: () => api?.log() ?? "",
    etcdLog: () => etcd.log(),
    stop: async () => {
      if (!stopped) await cleanUp();
    },
  };
}
