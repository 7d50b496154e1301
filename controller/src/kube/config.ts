/**
 * How to reach and authenticate to an API server: from a kubeconfig file (its current context, or the one
 * named) or from the files Kubernetes mounts into a pod for its service account.
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { KubeError } from "./errors.ts";

export interface KubeConnection {
  /** e.g. https://127.0.0.1:6443 */
  server: string;
  /** The bearer token, asked before each request (a service account's token file rotates). */
  token?: () => string | undefined;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTlsVerify?: boolean;
  /** The context's namespace (kubeconfig) or the pod's (in cluster). */
  namespace?: string;
}

interface Named<T> {
  name: string;
  [key: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}
type Fields = Record<string, unknown>;

/** The connection a kubeconfig file describes; KubeError 400 naming the file and the field when it cannot be used. */
export function readKubeconfig(path: string, contextName?: string): KubeConnection {
  const fail = (what: string) => new KubeError(400, "BadKubeconfig", `kubeconfig ${path}: ${what}`);
  let doc: Fields;
  try {
    doc = (parseYaml(readFileSync(path, "utf8")) ?? {}) as Fields;
  } catch (error) {
    throw fail(`cannot be read: ${(error as Error).message}`);
  }
  const base = dirname(path);
  const pick = (list: unknown, name: string, kind: "cluster" | "user" | "context"): Fields => {
    const found = Array.isArray(list) ? (list as Named<Fields>[]).find((entry) => entry?.name === name) : undefined;
    if (!found?.[kind]) throw fail(`no ${kind} named "${name}"`);
    return found[kind] as Fields;
  };
  const current = contextName ?? (doc["current-context"] as string | undefined);
  if (!current) throw fail("no current-context (and none named)");
  const context = pick(doc.contexts, current, "context");
  const cluster = pick(doc.clusters, String(context.cluster), "cluster");
  const user = context.user === undefined ? {} : pick(doc.users, String(context.user), "user");
  if (typeof cluster.server !== "string") throw fail(`cluster "${context.cluster}" has no server`);
  if (user.exec || user["auth-provider"])
    throw fail(`user "${context.user}" needs a credential plugin (exec/auth-provider), which modelroll does not run: use a token or a client certificate`);

  const file = (value: unknown) => readFileSync(isAbsolute(String(value)) ? String(value) : join(base, String(value)));
  const data = (inline: unknown, pathField: unknown): Buffer | undefined => {
    if (typeof inline === "string") return Buffer.from(inline, "base64");
    if (typeof pathField === "string") return file(pathField);
    return undefined;
  };
  let token: KubeConnection["token"];
  if (typeof user.token === "string") {
    const value = user.token;
    token = () => value;
  } else if (typeof user.tokenFile === "string") {
    token = rereadToken(isAbsolute(user.tokenFile) ? user.tokenFile : join(base, user.tokenFile));
  }
  return {
    server: cluster.server,
    token,
    ca: data(cluster["certificate-authority-data"], cluster["certificate-authority"]),
    cert: data(user["client-certificate-data"], user["client-certificate"]),
    key: data(user["client-key-data"], user["client-key"]),
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true,
    namespace: typeof context.namespace === "string" ? context.namespace : undefined,
  };
}

/** Where Kubernetes mounts a pod's service account. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The pod's own service account and the API server's in-cluster address (KUBERNETES_SERVICE_HOST/PORT). */
export function readInCluster(dir = SERVICE_ACCOUNT_DIR, env: NodeJS.ProcessEnv = process.env): KubeConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  if (!host) throw new KubeError(400, "NotInCluster", "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set): give --kubeconfig PATH");
  let ca: Buffer;
  let namespace: string;
  try {
    ca = readFileSync(join(dir, "ca.crt"));
    namespace = readFileSync(join(dir, "namespace"), "utf8").trim();
  } catch (error) {
    throw new KubeError(400, "NotInCluster", `service account files in ${dir} cannot be read: ${(error as Error).message}`);
  }
  const server = host.includes(":") ? `https://[${host}]:${port}` : `https://${host}:${port}`;
  return { server, ca, namespace, token: rereadToken(join(dir, "token")) };
}

/** A token file read again when it changes (projected service account tokens rotate about hourly). */
function rereadToken(path: string): () => string | undefined {
  let value: string | undefined;
  let mtime = -1;
  return () => {
    try {
      const stat = statSync(path);
      if (stat.mtimeMs !== mtime) {
        value = readFileSync(path, "utf8").trim();
        mtime = stat.mtimeMs;
      }
    } catch {
      // Keep the last token read: the kubelet swaps the file by a symlink rename, and a request may land mid-swap.
    }
    return value;
  };
}
