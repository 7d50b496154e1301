// The Kubernetes client against a loopback server this test runs: the paths, verbs, content types and bodies it
// sends, the errors it makes of the API's Status answers, the watch (lines, bookmarks, reconnect from the last
// version, 410 Gone, abort), and the kubeconfig forms (token, token file, client certificate over TLS with a CA).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, KubeError, type ResourceRef, type WatchEvent } from "../../controller/src/kube/client.ts";
import { readInCluster } from "../../controller/src/kube/config.ts";
import { within } from "../bounded.ts";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

type Handler = (req: Seen, res: ServerResponse) => void;

const ROLLOUTS: ResourceRef = { group: "modelroll.io", version: "v1alpha1", plural: "modelrollouts", namespace: "team-a" };
const CONFIGMAPS: ResourceRef = { group: "", version: "v1", plural: "configmaps", namespace: "team-a" };

let dir: string;
const servers: Server[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "kube-client-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: Handler, server: Server = createServer(), scheme = "http"): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const entry = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString() };
      seen.push(entry);
      handler(entry, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  servers.push(server);
  return { url: `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

function kubeconfig(name: string, cluster: Record<string, unknown>, user: Record<string, unknown>, namespace = "team-a"): string {
  const path = join(dir, name);
  const text = [
    "apiVersion: v1",
    "kind: Config",
    "current-context: test",
    "contexts:",
    `- name: test\n  context: {cluster: c1, user: u1, namespace: ${namespace}}`,
    "clusters:",
    `- name: c1\n  cluster: ${JSON.stringify(cluster)}`,
    "users:",
    `- name: u1\n  user: ${JSON.stringify(user)}`,
  ].join("\n");
  writeFileSync(path, text);
  return path;
}

describe("KubeClient verbs", () => {
  it("sends each verb to the resource's path with the token, content type and body the API expects", async () => {
    const { url, seen } = await serve((req, res) => {
      if (req.method === "GET" && req.url.includes("?"))
        return json(res, 200, { kind: "List", metadata: { resourceVersion: "42", continue: "next" }, items: [{ metadata: { name: "a" } }] });
      if (req.method === "DELETE") return json(res, 200, { kind: "Status", status: "Success" });
      return json(res, 200, { metadata: { name: "fraud-model", resourceVersion: "7" }, echo: req.body === "" ? null : JSON.parse(req.body) });
    });
    const client = KubeClient.fromKubeconfig(kubeconfig("token.yaml", { server: url }, { token: "s3cret" }));
    expect(client.namespace).toBe("team-a");
    const object = { apiVersion: "modelroll.io/v1alpha1", kind: "ModelRollout", metadata: { name: "fraud-model", resourceVersion: "6" }, spec: { x: 1 } };

    await client.get(ROLLOUTS, "fraud-model");
    const list = await client.list(ROLLOUTS, { labelSelector: "app=a", limit: 1 });
    await client.create(ROLLOUTS, object, { fieldManager: "modelroll" });
    await client.replace(ROLLOUTS, object);
    await client.replaceStatus(ROLLOUTS, object);
    await client.patch(ROLLOUTS, "fraud-model", { metadata: { annotations: { a: "b" } } });
    await client.patchStatus(ROLLOUTS, "fraud-model", object, { type: "apply", fieldManager: "modelroll", force: true });
    await client.delete(ROLLOUTS, "fraud-model", { resourceVersion: "7", propagationPolicy: "Background" });
    await client.get(CONFIGMAPS, "outbox");
    client.close();

    expect(list).toEqual({ items: [{ metadata: { name: "a" } }], resourceVersion: "42", continue: "next" });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      "GET /apis/modelroll.io/v1alpha1/namespaces/team-a/modelrollouts/fraud-model",
      "GET /apis/modelroll.io/v1alpha1/namespaces/team-a/modelrollouts?labelSelector=app%3Da&limit=1",
      "POST /apis/modelroll.io/v1alpha1/namespaces/team-a/modelrollouts?fieldManager=modelroll",
      "PUT /apis/modelroll.io/v1alpha1/namespaces/team-a/modelrollouts/fraud-model",
      "PUT /apis/modelroll.io/v1alpha1/namespaces/team-a/modelrollouts/fraud-model/status",
      "PATCH /apis/modelroll.io/v1alpha1/namespaces/team-a/modelrollouts/fraud-model",
      "PATCH /apis/modelroll.io/v1alpha1/namespaces/team-a/modelrollouts/fraud-model/status?fieldManager=modelroll&force=true",
      "DELETE /apis/modelroll.io/v1alpha1/namespaces/team-a/modelrollouts/fraud-model",
      "GET /api/v1/namespaces/team-a/configmaps/outbox",
    ]);
    expect(seen.every((s) => s.headers.authorization === "Bearer s3cret")).toBe(true);
    expect(seen[5].headers["content-type"]).toBe("application/merge-patch+json");
    expect(seen[6].headers["content-type"]).toBe("application/apply-patch+yaml");
    expect(JSON.parse(seen[3].body).metadata.resourceVersion).toBe("6");
    expect(JSON.parse(seen[7].body)).toEqual({
      kind: "DeleteOptions",
      apiVersion: "v1",
      preconditions: { resourceVersion: "7" },
      propagationPolicy: "Background",
    });
  });

  it("listAll follows continue tokens and keeps the first page's resourceVersion", async () => {
    const { url, seen } = await serve((req, res) => {
      const page = new URL(req.url, "http://x").searchParams.get("continue");
      if (page === null) return json(res, 200, { metadata: { resourceVersion: "10", continue: "p2" }, items: [{ metadata: { name: "a" } }] });
      return json(res, 200, { metadata: { resourceVersion: "11" }, items: [{ metadata: { name: "b" } }] });
    });
    const client = KubeClient.fromKubeconfig(kubeconfig("pages.yaml", { server: url }, { token: "t" }));
    const all = await client.listAll(ROLLOUTS, { pageSize: 1 });
    client.close();
    expect(all.items.map((i) => i.metadata.name)).toEqual(["a", "b"]);
    expect(all.resourceVersion).toBe("10");
    expect(seen).toHaveLength(2);
  });

  it("makes a typed KubeError of every error answer: Status objects, causes, text bodies, no server", async () => {
    const { url } = await serve((req, res) => {
      if (req.url.endsWith("/conflict"))
        return json(res, 409, {
          kind: "Status",
          status: "Failure",
          reason: "Conflict",
          code: 409,
          message: 'Operation cannot be fulfilled on modelrollouts.modelroll.io "conflict": the object has been modified',
        });
      if (req.method === "POST")
        return json(res, 422, {
          kind: "Status",
          reason: "Invalid",
          code: 422,
          message: "invalid",
          details: { causes: [{ field: "spec.stages", reason: "FieldValueRequired", message: "Required value" }] },
        });
      res.writeHead(502, { "content-type": "text/plain" });
      res.end("bad gateway from a proxy");
    });
    const client = KubeClient.fromKubeconfig(kubeconfig("errors.yaml", { server: url }, { token: "t" }));
    const error = (p: Promise<unknown>) =>
      p.then(
        () => expect.unreachable("no error"),
        (e: unknown) => e as KubeError,
      );

    const conflict = await error(client.get(ROLLOUTS, "conflict"));
    expect(conflict).toBeInstanceOf(KubeError);
    expect([conflict.status, conflict.reason, conflict.isConflict]).toEqual([409, "Conflict", true]);
    expect(conflict.message).toContain("the object has been modified");

    const invalid = await error(client.create(ROLLOUTS, { metadata: { name: "invalid" } }));
    expect([invalid.status, invalid.reason]).toEqual([422, "Invalid"]);
    expect(invalid.causes).toEqual([{ field: "spec.stages", reason: "FieldValueRequired", message: "Required value" }]);

    const proxy = await error(client.get(ROLLOUTS, "other"));
    expect([proxy.status, proxy.reason, proxy.message]).toEqual([502, "Unknown", "bad gateway from a proxy"]);
    client.close();

    const port = Number(new URL(url).port);
    await new Promise((r) => servers.pop()?.close(r));
    const down = new KubeClient({ server: `http://127.0.0.1:${port}` });
    const unreachable = await error(down.get(ROLLOUTS, "x"));
    expect([unreachable.status, unreachable.reason, unreachable.isUnreachable]).toEqual([0, "Unreachable", true]);
    expect(unreachable.message).toContain("ECONNREFUSED");
  });
});

describe("KubeClient.watch", () => {
  it("yields the events, opens the next request from the last version seen (bookmarks count), ends on abort", async () => {
    let request = 0;
    const { url, seen } = await serve((_req, res) => {
      request += 1;
      res.writeHead(200, { "content-type": "application/json" });
      if (request === 1) {
        // Two events in one chunk and one split across two writes, then the server's timeout closes it.
        res.write(
          `${JSON.stringify({ type: "ADDED", object: { metadata: { name: "a", resourceVersion: "5" } } })}\n${JSON.stringify({ type: "MODIFIED", object: { metadata: { name: "a", resourceVersion: "6" } } })}\n`,
        );
        const split = `${JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } })}\n`;
        res.write(split.slice(0, 10));
        setTimeout(() => res.end(split.slice(10)), 20);
      } else {
        res.write(`${JSON.stringify({ type: "DELETED", object: { metadata: { name: "a", resourceVersion: "12" } } })}\n`);
        // Left open: the abort must end it.
      }
    });
    const client = KubeClient.fromKubeconfig(kubeconfig("watch.yaml", { server: url }, { token: "t" }));
    const abort = new AbortController();
    const events: WatchEvent[] = [];
    await within(
      10_000,
      "the watch's four events and its end on abort",
      (async () => {
        for await (const event of client.watch(ROLLOUTS, { resourceVersion: "4", signal: abort.signal, timeoutSeconds: 30 })) {
          events.push(event);
          if (event.type === "DELETED") abort.abort();
        }
      })(),
    );
    client.close();
    expect(events.map((e) => `${e.type} ${e.object.metadata.resourceVersion}`)).toEqual(["ADDED 5", "MODIFIED 6", "BOOKMARK 9", "DELETED 12"]);
    const queries = seen.map((s) => new URL(s.url, "http://x").searchParams);
    expect(queries.map((q) => q.get("resourceVersion"))).toEqual(["4", "9"]);
    expect(queries.every((q) => q.get("watch") === "true" && q.get("allowWatchBookmarks") === "true" && q.get("timeoutSeconds") === "30")).toBe(true);
  });

  it("throws KubeError 410 Gone when the version is too old (an ERROR event or a 410 answer)", async () => {
    let request = 0;
    const { url } = await serve((_req, res) => {
      request += 1;
      if (request === 2) return json(res, 410, { kind: "Status", reason: "Expired", code: 410, message: "too old resource version: 1 (50)" });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`${JSON.stringify({ type: "ERROR", object: { kind: "Status", reason: "Expired", code: 410, message: "too old resource version: 1 (50)" } })}\n`);
    });
    const client = KubeClient.fromKubeconfig(kubeconfig("gone.yaml", { server: url }, { token: "t" }));
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const error = await (async () => {
        for await (const _ of client.watch(ROLLOUTS, { resourceVersion: "1" })) expect.unreachable("no event");
      })().then(
        () => expect.unreachable("no error"),
        (e: unknown) => e as KubeError,
      );
      expect([error.status, error.isGone, error.message]).toEqual([410, true, "too old resource version: 1 (50)"]);
    }
    client.close();
  });
});

describe("kubeconfig and in-cluster credentials", () => {
  it("speaks TLS with the kubeconfig's CA and client certificate (files relative to the kubeconfig), and a token file", async () => {
    const ssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca"]);
    writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
    ssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    ssl([
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.crt",
      "-days",
      "1",
      "-extfile",
      "san.ext",
    ]);
    ssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=modelroll/O=system:masters"]);
    ssl(["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "1"]);
    const read = (f: string) => readFileSync(join(dir, f));
    const tls = createTlsServer({ key: read("server.key"), cert: read("server.crt"), ca: read("ca.crt"), requestCert: true, rejectUnauthorized: true });
    const { url } = await serve(
      (req, res) => {
        const socket = (res.req.socket as import("node:tls").TLSSocket).getPeerCertificate();
        json(res, 200, { metadata: { name: "peer" }, cn: socket.subject?.CN, auth: req.headers.authorization ?? null });
      },
      tls,
      "https",
    );

    const byFile = KubeClient.fromKubeconfig(
      kubeconfig("cert.yaml", { server: url, "certificate-authority": "ca.crt" }, { "client-certificate": "client.crt", "client-key": "client.key" }),
    );
    expect(await byFile.get(CONFIGMAPS, "x")).toMatchObject({ cn: "modelroll", auth: null });
    byFile.close();

    const b64 = (f: string) => read(f).toString("base64");
    const inline = KubeClient.fromKubeconfig(
      kubeconfig(
        "inline.yaml",
        { server: url, "certificate-authority-data": b64("ca.crt") },
        { "client-certificate-data": b64("client.crt"), "client-key-data": b64("client.key") },
      ),
    );
    expect(await inline.get(CONFIGMAPS, "x")).toMatchObject({ cn: "modelroll" });
    inline.close();

    // Without the CA the server's certificate is refused: no silent fallback to skipping verification.
    const noCa = KubeClient.fromKubeconfig(kubeconfig("no-ca.yaml", { server: url }, { "client-certificate": "client.crt", "client-key": "client.key" }));
    await expect(noCa.get(CONFIGMAPS, "x")).rejects.toMatchObject({ status: 0, reason: "Unreachable" });
    noCa.close();

    writeFileSync(join(dir, "token-1"), "first\n");
    const tokenFile = KubeClient.fromKubeconfig(
      kubeconfig(
        "token-file.yaml",
        { server: url, "certificate-authority": "ca.crt" },
        { tokenFile: "token-1", "client-certificate": "client.crt", "client-key": "client.key" },
      ),
    );
    expect(await tokenFile.get(CONFIGMAPS, "x")).toMatchObject({ auth: "Bearer first" });
    tokenFile.close();
  });

  it("names the file and the reason when a kubeconfig cannot be used", () => {
    const missing = join(dir, "absent.yaml");
    expect(() => KubeClient.fromKubeconfig(missing)).toThrow(`kubeconfig ${missing}: cannot be read`);
    const exec = kubeconfig("exec.yaml", { server: "https://127.0.0.1:1" }, { exec: { command: "gke-gcloud-auth-plugin" } });
    expect(() => KubeClient.fromKubeconfig(exec)).toThrow(/needs a credential plugin/);
    expect(() => KubeClient.fromKubeconfig(exec, { context: "other" })).toThrow('no context named "other"');
  });

  it("in cluster: the service account's CA, namespace and token, and the server from KUBERNETES_SERVICE_HOST", () => {
    const sa = mkdtempSync(join(dir, "sa-"));
    writeFileSync(join(sa, "ca.crt"), "CA");
    writeFileSync(join(sa, "namespace"), "modelroll-system\n");
    writeFileSync(join(sa, "token"), "sa-token\n");
    const connection = readInCluster(sa, { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" });
    expect([connection.server, connection.namespace, connection.token?.(), connection.ca?.toString()]).toEqual([
      "https://10.0.0.1:443",
      "modelroll-system",
      "sa-token",
      "CA",
    ]);
    expect(() => readInCluster(sa, {})).toThrow(/KUBERNETES_SERVICE_HOST is not set/);
  });
});
