/**
 * Which upstream hosts each Envoy cluster reaches, as the proxies themselves say (admin `GET /clusters?format=json`):
 * where a rollout's stable and canary traffic goes when its spec declares no model versions, for the views,
 * notifications and report ("which model is the canary?"). Read in the background every few seconds and kept:
 * a view is built synchronously and must not wait on an Envoy. Without admin endpoints (a mesh read through
 * Prometheus) nothing is known, and the views say so.
 */
import { describeFetchError } from "../net.ts";

/** The hosts a cluster reaches ("127.0.0.1:9001", or "model-a.internal:80 (10.0.0.7)"), or null when unknown. */
export type UpstreamLookup = (cluster: string) => string[] | null;

/** Cluster name -> its hosts, from one admin answer. Pure; anything it cannot read is left out. */
export function parseClusterHosts(body: unknown): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const statuses = (body as { cluster_statuses?: unknown })?.cluster_statuses;
  if (!Array.isArray(statuses)) return out;
  for (const status of statuses) {
    const name = (status as { name?: unknown })?.name;
    if (typeof name !== "string") continue;
    const hosts: string[] = [];
    const hostStatuses = (status as { host_statuses?: unknown }).host_statuses;
    for (const host of Array.isArray(hostStatuses) ? hostStatuses : []) {
      const socket = (host as { address?: { socket_address?: { address?: unknown; port_value?: unknown } } })?.address?.socket_address;
      if (typeof socket?.address !== "string") continue;
      const address = typeof socket.port_value === "number" ? `${socket.address}:${socket.port_value}` : socket.address;
      // A DNS cluster's host has the name it was resolved from: that is what a person wrote and recognises.
      const hostname = (host as { hostname?: unknown }).hostname;
      const named = typeof hostname === "string" && hostname !== "" && hostname !== socket.address;
      hosts.push(named ? `${hostname}${typeof socket.port_value === "number" ? `:${socket.port_value}` : ""} (${socket.address})` : address);
    }
    out.set(name, hosts);
  }
  return out;
}

interface EnvoyUpstreamsOptions {
  /** Per admin endpoint; default 2000 ms. */
  timeoutMs?: number;
}

/** The clusters' hosts of every Envoy admin endpoint, merged, refreshed by `start()` or `refresh()`. */
export class EnvoyUpstreams {
  readonly #adminUrls: string[];
  readonly #timeoutMs: number;
  #known = new Map<string, string[]>();
  #timer: NodeJS.Timeout | null = null;
  #refreshing: Promise<void> | null = null;
  /** Why the last read failed on every endpoint (null: it worked, or none was tried). */
  lastError: string | null = null;
  /** Moves when what the clusters reach changes: text cached from the views (the rollout list) is stale then. */
  version = 0;
  #knownText = "";

  constructor(adminUrls: readonly string[], options: EnvoyUpstreamsOptions = {}) {
    this.#adminUrls = adminUrls.map((url) => url.replace(/\/+$/, ""));
    this.#timeoutMs = options.timeoutMs ?? 2000;
  }

  readonly lookup: UpstreamLookup = (cluster) => {
    const hosts = this.#known.get(cluster);
    return hosts === undefined ? null : [...hosts];
  };

  /** Reads every endpoint once; a failed endpoint keeps what it said before (a restarting Envoy is not news). */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#read().finally(() => (this.#refreshing = null));
    return this.#refreshing;
  }

  async #read(): Promise<void> {
    if (this.#adminUrls.length === 0) return;
    const answers = await Promise.all(this.#adminUrls.map((url) => this.#readOne(url)));
    const read = answers.filter((a): a is Map<string, string[]> => a instanceof Map);
    if (read.length === 0) {
      this.lastError = answers.filter((a): a is string => typeof a === "string").join("; ");
      return;
    }
    this.lastError = null;
    const merged = new Map<string, string[]>();
    for (const clusters of read) for (const [name, hosts] of clusters) merged.set(name, [...new Set([...(merged.get(name) ?? []), ...hosts])].sort());
    const text = JSON.stringify([...merged]);
    if (text !== this.#knownText) this.version++;
    this.#knownText = text;
    this.#known = merged;
  }

  async #readOne(url: string): Promise<Map<string, string[]> | string> {
    try {
      const response = await fetch(`${url}/clusters?format=json`, { signal: AbortSignal.timeout(this.#timeoutMs) });
      if (!response.ok) return `${url}: HTTP ${response.status}`;
      return parseClusterHosts(await response.json());
    } catch (error) {
      return `${url}: ${describeFetchError(error, this.#timeoutMs)}`;
    }
  }

  /** Every `intervalMs` (call refresh() for now); the timer does not keep the process alive. */
  start(intervalMs: number): void {
    if (this.#timer !== null || this.#adminUrls.length === 0) return;
    this.#timer = setInterval(() => void this.refresh(), intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#refreshing;
  }
}
