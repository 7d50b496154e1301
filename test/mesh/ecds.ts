// The filter delivered the way Istio delivers it, on real Envoy without a cluster:
//  1. istiod's part (written here after pilot/pkg/model/extensions.go): a WasmPlugin or TrafficExtension manifest
//     becomes an ECDS resource, a TypedExtensionConfig whose Wasm code is remote (the oci:// url and sha256), with
//     pluginConfig as JSON text in `configuration` and the ISTIO_META_* variables the agent reads;
//  2. istio-agent's part, by Istio's own code (tools/istio-wasm convert): fetch the module, check it, rewrite the
//     code to the local file, strip the ISTIO_META_* variables;
//  3. Envoy reads the resource from a file (a filesystem ECDS config source, as the agent serves it locally) and
//     applies every new version written over it, as it would from istiod's push.
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { renderBootstrap, type BootstrapOptions } from "../../controller/src/envoy/bootstrap.ts";
import { istioWasmBinary, runTool } from "./tools.ts";

export const WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
const EXTENSION_TYPE = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";

/** The ECDS resource name istiod gives the filter (a WasmPlugin is served as a synthetic TrafficExtension). */
export function ecdsName(manifest: Record<string, any>): string {
  const suffix = manifest.kind === "WasmPlugin" ? "~istio-translated-wasmplugin" : "";
  return `extensions.istio.io/trafficextension/${manifest.metadata.namespace}.${manifest.metadata.name}${suffix}`;
}

/** What istiod pushes for one version of the manifest: the TypedExtensionConfig in protobuf JSON. */
export function istiodResource(manifest: Record<string, any>, resourceVersion: string, url: string): Record<string, unknown> {
  const wasm = manifest.kind === "WasmPlugin" ? manifest.spec : manifest.spec.wasm;
  const suffix = manifest.kind === "WasmPlugin" ? "~istio-translated-wasmplugin" : "";
  const policy: Record<string, string> = { FAIL_OPEN: "FAIL_OPEN", FAIL_CLOSE: "FAIL_CLOSED", FAIL_RELOAD: "FAIL_RELOAD" };
  const env: Record<string, string> = { ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION: resourceVersion };
  if (wasm.imagePullPolicy) env.ISTIO_META_WASM_IMAGE_PULL_POLICY = wasm.imagePullPolicy;
  return {
    name: ecdsName(manifest),
    typedConfig: {
      "@type": WASM_TYPE,
      config: {
        name: `${manifest.metadata.namespace}.${manifest.metadata.name}${suffix}`,
        rootId: wasm.pluginName ?? "",
        // pluginConfig (a protobuf Struct) marshalled to JSON text.
        configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: JSON.stringify(wasm.pluginConfig) },
        vmConfig: {
          runtime: "envoy.wasm.runtime.v8",
          code: { remote: { httpUri: { uri: url, cluster: "_", timeout: "30s" }, sha256: wasm.sha256 } },
          environmentVariables: { keyValues: env },
        },
        ...(wasm.failStrategy ? { failurePolicy: policy[wasm.failStrategy] } : {}),
      },
    },
  };
}

/** istio-agent's rewrite of the resource (Istio's own code): remote module -> local file in `cacheDir`. */
export async function agentConvert(resource: Record<string, unknown>, cacheDir: string): Promise<Record<string, any>> {
  const r = await runTool(istioWasmBinary(), ["convert", "-dir", cacheDir], JSON.stringify(resource));
  if (r.status !== 0) throw new Error(`istio-agent's conversion failed (exit ${r.status}):\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-3000)}`);
  // The agent logs on stdout like the agent does; the resource is the JSON after the log lines.
  const start = r.stdout.indexOf("{\n");
  return JSON.parse(r.stdout.slice(start));
}

/** The same converted resource with another pluginConfig (the agent rewrites only vm_config, the same each time). */
export function withPluginConfig(converted: Record<string, any>, pluginConfig: unknown): Record<string, any> {
  const next = structuredClone(converted);
  next.typedConfig.config.configuration.value = JSON.stringify(pluginConfig);
  return next;
}

/** The file Envoy's ECDS config source watches; every write is a rename over it, as Envoy expects. */
export class EcdsFile {
  readonly dir = mkdtempSync(join(tmpdir(), "modelroll-ecds-"));
  readonly path = join(this.dir, "extension.json");
  private writes = 0;

  write(resource: Record<string, unknown>, version: string): void {
    const temp = join(this.dir, `.next-${++this.writes}.json`);
    writeFileSync(temp, JSON.stringify({ version_info: version, resources: [{ "@type": EXTENSION_TYPE, ...resource }] }));
    renameSync(temp, this.path);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The project's bootstrap with the Wasm filter taken from the ECDS file instead of inline, as in a sidecar:
 * no early removal of the variant header (the filter alone overwrites it), and extra STATIC clusters (e.g.
 * Istio's outbound|8080||modelroll-controller... name) pointing at local servers.
 */
export function ecdsBootstrap(opts: BootstrapOptions, ecds: EcdsFile, filterName: string, clusters: Record<string, { host: string; port: number }>): string {
  const bootstrap = parse(renderBootstrap(opts));
  // xDS needs a node identity; this is the form istio-agent gives a sidecar.
  bootstrap.node = { id: "sidecar~127.0.0.1~scoring-api-0.ml~ml.svc.cluster.local", cluster: "scoring-api.ml" };
  const hcm = bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  delete hcm.early_header_mutation_extensions;
  hcm.http_filters = hcm.http_filters.map((f: { name: string }) =>
    f.name !== "envoy.filters.http.wasm"
      ? f
      : {
          name: filterName,
          config_discovery: {
            // Istio: block until the first version arrives (initial_fetch_timeout 0), Wasm or the agent's RBAC fallback.
            config_source: { path_config_source: { path: ecds.path }, resource_api_version: "V3", initial_fetch_timeout: "0s" },
            type_urls: [WASM_TYPE, RBAC_TYPE],
          },
        },
  );
  for (const [name, { host, port }] of Object.entries(clusters)) {
    bootstrap.static_resources.clusters.push({
      name,
      type: "STATIC",
      connect_timeout: "1s",
      load_assignment: {
        cluster_name: name,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
      },
    });
  }
  return stringify(bootstrap);
}

/** A counter of Envoy's by exact name from /stats?format=json (0 when absent). */
export async function envoyStat(adminUrl: string, name: string): Promise<number> {
  const res = await fetch(`${adminUrl}/stats?format=json&filter=${encodeURIComponent(`^${name.replace(/[.|]/g, "\\$&")}$`)}`);
  const body = (await res.json()) as { stats: Array<{ name: string; value?: number }> };
  return body.stats.find((s) => s.name === name)?.value ?? 0;
}

/** Envoy's resident memory, from /proc (bytes). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * A pass-through HTTP proxy in front of the controller that counts the filters' config long-polls: how many are
 * open right now and how many were made. Old root contexts that keep polling after a config update show up as
 * more open polls than Envoy has workers.
 */
export class PollCounter {
  open = 0;
  total = 0;
  /** Every poll: its query, and how it ended ("answered <status>" or "aborted by the filter"). */
  readonly log: Array<{ query: string; end: string }> = [];
  private server: Server;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((req, res) => this.forward(req, res));
  }

  async start(port: number): Promise<void> {
    this.port = port;
    await new Promise<void>((r) => this.server.listen(port, "127.0.0.1", r));
  }

  private forward(req: IncomingMessage, res: import("node:http").ServerResponse): void {
    const isPoll = (req.url ?? "").startsWith("/v1/filter-config");
    const entry = { query: (req.url ?? "").replace(/^[^?]*\??/, ""), end: "open" };
    if (isPoll) {
      this.open++;
      this.total++;
      this.log.push(entry);
    }
    let counted = isPoll;
    const done = () => {
      if (counted) {
        counted = false;
        this.open--;
        if (entry.end === "open") entry.end = "aborted by the filter";
      }
    };
    const upstream = request({ host: this.target.host, port: this.target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      entry.end = `answered ${up.statusCode}`;
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    // The poll ends when either side is done: answered, or the caller (the filter's root context) went away.
    res.on("close", () => {
      done();
      upstream.destroy();
    });
    req.pipe(upstream);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
