// Renders deploy/envoy/envoy.template.yaml into a concrete bootstrap.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../paths.ts";

export interface HostPort {
  host: string;
  port: number;
}

export interface BootstrapOptions {
  listen: HostPort;
  admin: HostPort; // admin always binds 127.0.0.1; only the port is taken from here
  stable: HostPort;
  canary: HostPort;
  /** The shadow cluster's endpoint; defaults to the canary's (mirroring the new model before it takes traffic). */
  shadow?: HostPort;
  controller: HostPort;
  wasmPath?: string;
  variantHeader?: string;
  routeTimeout?: string;
  pollWaitSeconds?: number;
  /** The controller's read-only filter token, sent by the filter on its config long-poll. */
  filterToken?: string;
}

export const TEMPLATE_PATH = join(repoRoot, "deploy", "envoy", "envoy.template.yaml");
const DEFAULT_WASM_PATH = join(repoRoot, "build", "filter.wasm");

export function parseHostPort(text: string, what: string): HostPort {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1];
  const port = m ? Number(m[2]) : NaN;
  if (host === undefined || port < 0 || port > 65535) throw new Error(`${what}: expected host:port, got '${text}'`);
  return { host: host.replace(/^\[|\]$/g, ""), port };
}

export function parseUrlHostPort(url: string, what: string): HostPort {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${what}: not a URL: '${url}'`);
  }
  if (u.protocol !== "http:") throw new Error(`${what}: only http:// upstreams are supported, got '${url}'`);
  if (u.pathname !== "/" && u.pathname !== "") throw new Error(`${what}: give the server's base URL without a path, got '${url}'`);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return { host, port: u.port ? Number(u.port) : 80 };
}

/** An IPv4 or IPv6 literal: Envoy reaches it as given (STATIC); anything else is a DNS name. */
export function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}

/**
 * How Envoy finds an upstream's endpoints: an IP address as given (STATIC), a host name by DNS (STRICT_DNS:
 * every address the name resolves to is an endpoint, re-resolved every dns_refresh_rate, 5 s by default). IPv4
 * is preferred, so `localhost` reaches a server listening on 127.0.0.1 only.
 */
export function clusterDiscovery(endpoint: HostPort): { type: "STATIC" | "STRICT_DNS"; dns_lookup_family?: "V4_PREFERRED" } {
  return isIpAddress(endpoint.host) ? { type: "STATIC" } : { type: "STRICT_DNS", dns_lookup_family: "V4_PREFERRED" };
}

/** The template's cluster discovery lines for an endpoint (type, and the DNS lookup family of a DNS name). */
function discoveryYaml(endpoint: HostPort): string {
  const d = clusterDiscovery(endpoint);
  return d.dns_lookup_family ? `${d.type}\n    dns_lookup_family: ${d.dns_lookup_family}` : d.type;
}

/** The plugin configuration JSON the filter parses (filter/config.ts). */
export function pluginConfig(opts: BootstrapOptions): string {
  return JSON.stringify({
    variantHeader: opts.variantHeader ?? "x-rollout-variant",
    // The bootstrap sets allow_on_headers_stop_iteration: the output guard may hold answers.
    headersStopIteration: true,
    controller: {
      cluster: "modelroll_controller",
      authority: `${opts.controller.host}:${opts.controller.port}`,
      path: "/v1/filter-config",
      pollWaitSeconds: opts.pollWaitSeconds ?? 20,
      ...(opts.filterToken ? { token: opts.filterToken } : {}),
    },
  });
}

export function renderBootstrap(opts: BootstrapOptions): string {
  const values: Record<string, string> = {
    ADMIN_PORT: String(opts.admin.port),
    LISTEN_HOST: opts.listen.host,
    LISTEN_PORT: String(opts.listen.port),
    STABLE_HOST: opts.stable.host,
    STABLE_PORT: String(opts.stable.port),
    CANARY_HOST: opts.canary.host,
    CANARY_PORT: String(opts.canary.port),
    STABLE_DISCOVERY: discoveryYaml(opts.stable),
    CANARY_DISCOVERY: discoveryYaml(opts.canary),
    SHADOW_DISCOVERY: discoveryYaml(opts.shadow ?? opts.canary),
    SHADOW_HOST: (opts.shadow ?? opts.canary).host,
    SHADOW_PORT: String((opts.shadow ?? opts.canary).port),
    CONTROLLER_HOST: opts.controller.host,
    CONTROLLER_PORT: String(opts.controller.port),
    WASM_PATH: JSON.stringify(opts.wasmPath ?? DEFAULT_WASM_PATH),
    VARIANT_HEADER: opts.variantHeader ?? "x-rollout-variant",
    ROUTE_TIMEOUT: opts.routeTimeout ?? "30s",
    // Inside a single-quoted YAML scalar a quote is written twice.
    PLUGIN_CONFIG: pluginConfig(opts).replace(/'/g, "''"),
  };
  const template = readFileSync(TEMPLATE_PATH, "utf8");
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`envoy template: unknown placeholder {{${name}}}`);
    return value;
  });
}
