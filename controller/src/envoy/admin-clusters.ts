// What each Envoy cluster reaches, as the Envoy admin endpoint reports it (GET /clusters?format=json): the
// endpoints of every cluster, a DNS cluster's by the host name it resolves (its addresses change, its name is
// what was configured). The controller compares these with what each rollout was tested against
// (rollouts/upstream-check.ts) when it runs beside Envoys it did not start (`npm run controller`).

interface ClustersJson {
  cluster_statuses?: Array<{
    name?: string;
    host_statuses?: Array<{ address?: { socket_address?: { address?: string; port_value?: number } }; hostname?: string }>;
  }>;
}

/** "host:port", several sorted and joined by ", " (the form UpstreamRecord.endpoint keeps). */
export function endpointText(endpoints: ReadonlyArray<{ host: string; port: number }>): string {
  const shown = endpoints.map((e) => (e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`));
  return [...new Set(shown)].sort().join(", ");
}

/** Cluster name -> endpoint text, from one /clusters?format=json answer. Clusters without endpoints are left out. */
export function parseClusters(json: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const cluster of (json as ClustersJson).cluster_statuses ?? []) {
    if (typeof cluster.name !== "string") continue;
    const endpoints = (cluster.host_statuses ?? []).flatMap((h) => {
      const socket = h.address?.socket_address;
      const host = h.hostname || socket?.address;
      return host && typeof socket?.port_value === "number" ? [{ host, port: socket.port_value }] : [];
    });
    if (endpoints.length > 0) out.set(cluster.name, endpointText(endpoints));
  }
  return out;
}

/**
 * Every admin endpoint's clusters, merged: a cluster that reaches different endpoints in two Envoys lists all
 * of them. Throws when an admin endpoint cannot be read (the caller then knows nothing new).
 */
export async function readClusterEndpoints(adminUrls: readonly string[], timeoutMs = 2000): Promise<Map<string, string>> {
  const merged = new Map<string, Set<string>>();
  for (const base of adminUrls) {
    const url = `${base.replace(/\/$/, "")}/clusters?format=json`;
    let json: unknown;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      json = await res.json();
    } catch (error) {
      throw new Error(`Envoy admin ${url}: ${(error as Error).message}`, { cause: error });
    }
    for (const [name, text] of parseClusters(json)) {
      const set = merged.get(name) ?? new Set<string>();
      for (const one of text.split(", ")) set.add(one);
      merged.set(name, set);
    }
  }
  return new Map([...merged].map(([name, set]) => [name, [...set].sort().join(", ")]));
}
