// One Envoy in front of many models (`npm start -- --models`): the single-model bootstrap (same listener,
// filter, stats tags and buckets, controller cluster), with the route table and clusters replaced by each
// model's. Per model, longest path prefix first: `x-rollout-variant: canary` on its prefix goes to
// <name>-canary, the rest of its prefix to <name>-stable; mirrored requests go to <name>-shadow when a
// rollout names it (clusters.shadow). A path under no model's prefix gets Envoy's 404.
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { clusterDiscovery, renderBootstrap, TEMPLATE_PATH, type BootstrapOptions, type HostPort } from "./bootstrap.ts";

export interface ModelRoute {
  name: string;
  pathPrefix: string;
  stable: HostPort;
  canary: HostPort;
  /** Default: the canary's endpoint. */
  shadow?: HostPort;
}

interface ModelsBootstrapOptions extends Omit<BootstrapOptions, "stable" | "canary" | "shadow"> {
  models: ModelRoute[];
}

/** The Envoy clusters of a model, as its rollouts name them in `clusters`. */
export function modelClusters(name: string): { stable: string; canary: string; shadow: string } {
  return { stable: `${name}-stable`, canary: `${name}-canary`, shadow: `${name}-shadow` };
}

function staticCluster(name: string, endpoint: HostPort): Record<string, unknown> {
  return {
    name,
    ...clusterDiscovery(endpoint),
    connect_timeout: "1s",
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: endpoint.host, port_value: endpoint.port } } } }] }],
    },
  };
}

interface Bootstrap {
  static_resources: {
    listeners: Array<{
      filter_chains: Array<{ filters: Array<{ typed_config: { route_config: { virtual_hosts: Array<{ routes: Array<{ route: { timeout: string } }> }> } } }> }>;
    }>;
    clusters: Array<{ name: string }>;
  };
}

export function renderModelsBootstrap(opts: ModelsBootstrapOptions): string {
  const first = opts.models[0];
  if (first === undefined) throw new Error("models bootstrap: no models");
  const base = parseYaml(renderBootstrap({ ...opts, stable: first.stable, canary: first.canary })) as Bootstrap;
  const variantHeader = opts.variantHeader ?? "x-rollout-variant";
  const host = base.static_resources.listeners[0]?.filter_chains[0]?.filters[0]?.typed_config.route_config.virtual_hosts[0];
  const timeout = host?.routes[0]?.route.timeout;
  if (host === undefined || timeout === undefined) throw new Error(`models bootstrap: ${TEMPLATE_PATH} has no listener route to copy the models' routes from`);
  // Envoy takes the first route that matches: longer prefixes first, so /v1/models/a-2 is not taken by /v1/models/a.
  const ordered = [...opts.models].sort((a, b) => b.pathPrefix.length - a.pathPrefix.length || (a.name < b.name ? -1 : 1));
  host.routes = ordered.flatMap((m) => {
    const clusters = modelClusters(m.name);
    return [
      { match: { prefix: m.pathPrefix, headers: [{ name: variantHeader, string_match: { exact: "canary" } }] }, route: { cluster: clusters.canary, timeout } },
      { match: { prefix: m.pathPrefix }, route: { cluster: clusters.stable, timeout } },
    ];
  });
  const controller = base.static_resources.clusters.filter((c) => c.name === "modelroll_controller");
  base.static_resources.clusters = [
    ...opts.models.flatMap((m) => {
      const clusters = modelClusters(m.name);
      return [staticCluster(clusters.stable, m.stable), staticCluster(clusters.canary, m.canary), staticCluster(clusters.shadow, m.shadow ?? m.canary)];
    }),
    ...controller,
  ] as Bootstrap["static_resources"]["clusters"];
  return `# Rendered by controller/src/envoy/models-bootstrap.ts from deploy/envoy/envoy.template.yaml: one route pair and three clusters per model.\n${stringifyYaml(base, { lineWidth: 0 })}`;
}
