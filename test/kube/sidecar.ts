// The sidecar stand-in: a plain Envoy (the project's .envoy/envoy, 1.40) that connects to the real istiod as a
// sidecar would, in place of istio-proxy, which is not on this machine.
//  - node id `sidecar~IP~POD.NS~NS.svc.cluster.local` and the metadata istiod reads (NAMESPACE, LABELS,
//    ISTIO_VERSION, CLUSTER_ID), so istiod selects the WasmPlugin for it by its labels as it would for a pod;
//  - ADS to istiod's plaintext gRPC port, but no LDS/CDS from it: istiod's listeners carry Istio's own
//    `istio.metadata_exchange` extension, which only istio-proxy builds contain, and a plain Envoy rejects them.
//    The listener is static (the project's bootstrap, deploy/envoy/envoy.template.yaml), and its Wasm HTTP filter
//    is a `config_discovery` over ADS for the name istiod gives the WasmPlugin, so the filter, its pluginConfig and
//    every later pluginConfig come from istiod exactly as a sidecar's would (istiod's
//    /debug/config_dump?proxyID=<id> shows what it sends);
//  - the module: the WasmPlugin's url is file://<repo>/build/filter.wasm; istiod sends a file:// url to the proxy
//    as a local file name (no istio-agent fetch, no image pull), and the Envoy reads it from this machine's disk.
//    The oci:// path through istio-agent's own code is tested on its own in test/mesh/.
import { stringify, parse } from "yaml";
import { renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../../controller/src/envoy/process.ts";
import { freePort } from "../../controller/src/net.ts";

export const WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
export const ISTIO_VERSION = "1.30.0";

/** The ECDS resource name istiod gives a WasmPlugin (it serves one as a synthetic TrafficExtension). */
export const wasmPluginResourceName = (namespace: string, name: string) =>
  `extensions.istio.io/trafficextension/${namespace}.${name}~istio-translated-wasmplugin`;

export interface SidecarOptions {
  /** istiod's plaintext gRPC (xDS) address, host:port. */
  istiodGrpc: string;
  /** The ECDS resource name of the filter (wasmPluginResourceName). */
  filterName: string;
  namespace: string;
  /** The pod this stands in for: its name and IP make the node id. */
  pod: string;
  ip: string;
  labels: Record<string, string>;
  stable: { host: string; port: number };
  canary: { host: string; port: number };
  /** Envoy worker threads; default 1 (many of these run on one machine). */
  concurrency?: number;
  /** Extra STATIC clusters by name (e.g. the controller's Istio cluster name, for --config-delivery both). */
  clusters?: Record<string, { host: string; port: number }>;
}

export interface Sidecar {
  /** The node id istiod knows it by (for /debug/config_dump?proxyID=). */
  id: string;
  dataUrl: string;
  adminUrl: string;
  envoy: EnvoyProcess;
  stop(): Promise<void>;
}

export function sidecarBootstrap(opts: SidecarOptions, ports: { listen: number; admin: number }): string {
  const bootstrap = parse(
    renderBootstrap({
      listen: { host: "127.0.0.1", port: ports.listen },
      admin: { host: "127.0.0.1", port: ports.admin },
      stable: opts.stable,
      canary: opts.canary,
      // The bootstrap's own controller cluster; unused: the filter's config comes from istiod.
      controller: { host: "127.0.0.1", port: 1 },
    }),
  );
  const [istiodHost, istiodPort] = opts.istiodGrpc.split(":");
  bootstrap.node = {
    id: `sidecar~${opts.ip}~${opts.pod}.${opts.namespace}~${opts.namespace}.svc.cluster.local`,
    cluster: `${opts.labels.app ?? opts.pod}.${opts.namespace}`,
    metadata: { NAMESPACE: opts.namespace, LABELS: opts.labels, ISTIO_VERSION, CLUSTER_ID: "Kubernetes", POD_NAME: opts.pod },
  };
  bootstrap.dynamic_resources = {
    ads_config: {
      api_type: "GRPC",
      transport_api_version: "V3",
      set_node_on_first_message_only: true,
      grpc_services: [{ envoy_grpc: { cluster_name: "xds-grpc" } }],
    },
  };
  const clusters = bootstrap.static_resources.clusters as Array<Record<string, unknown>>;
  clusters.push({
    name: "xds-grpc",
    type: "STATIC",
    connect_timeout: "1s",
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    load_assignment: {
      cluster_name: "xds-grpc",
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: istiodHost, port_value: Number(istiodPort) } } } }] }],
    },
  });
  for (const [name, { host, port }] of Object.entries(opts.clusters ?? {})) {
    clusters.push({
      name,
      type: "STATIC",
      connect_timeout: "1s",
      load_assignment: {
        cluster_name: name,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
      },
    });
  }
  const hcm = bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  // As in a sidecar, the filter alone overwrites the variant header.
  delete hcm.early_header_mutation_extensions;
  hcm.http_filters = hcm.http_filters.map((f: { name: string }) =>
    f.name !== "envoy.filters.http.wasm"
      ? f
      : {
          name: opts.filterName,
          config_discovery: {
            // As Istio's sidecar listeners do: over ADS, and requests wait until the first version arrives.
            config_source: { ads: {}, resource_api_version: "V3", initial_fetch_timeout: "0s" },
            type_urls: [WASM_TYPE],
          },
        },
  );
  return stringify(bootstrap);
}

/** Starts one stand-in; resolves once Envoy is ready, which needs the filter's first config from istiod. */
export async function startSidecar(opts: SidecarOptions): Promise<Sidecar> {
  const [listen, admin] = [await freePort(), await freePort()];
  const yaml = sidecarBootstrap(opts, { listen, admin });
  const envoy = await startEnvoy({ bootstrapYaml: yaml, adminPort: admin, concurrency: opts.concurrency ?? 1, readyTimeoutMs: 60_000 });
  const id = `sidecar~${opts.ip}~${opts.pod}.${opts.namespace}~${opts.namespace}.svc.cluster.local`;
  return { id, dataUrl: `http://127.0.0.1:${listen}`, adminUrl: envoy.adminUrl, envoy, stop: () => envoy.stop() };
}

/** The variant one request with this sticky key gets through the sidecar (null: no variant header, i.e. no rollout). */
export async function variantAt(sidecar: Pick<Sidecar, "dataUrl">, path: string, key: string, header = "x-user-id"): Promise<string | null> {
  const res = await fetch(`${sidecar.dataUrl}${path}`, { method: "POST", headers: { [header]: key, "content-type": "application/json" }, body: "{}" });
  await res.arrayBuffer();
  return res.headers.get("x-rollout-variant");
}
