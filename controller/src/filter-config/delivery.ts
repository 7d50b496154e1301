/**
 * Which way the filter config reaches the proxies (`--config-delivery`):
 *  - long-poll: the filters hold GET /v1/filter-config open against the controller (npm start, Envoys outside a
 *    mesh). Milliseconds from decision to proxy; one held connection per Envoy worker.
 *  - istiod: the controller writes the rollouts into the WasmPlugin (wasmplugin-distributor.ts) and istiod pushes
 *    them (ECDS). Seconds; no connection from the proxies to the controller. Held polls are refused, so a
 *    WasmPlugin that still names the controller cannot quietly pile connections on it.
 *  - both: the WasmPlugin is written and the long-poll served: the filters poll for the fast path and
 *    restart from the WasmPlugin's copy (a new sidecar, a controller that is down).
 */
import { WasmPluginDistributor, type ApplyClient, type WasmPluginDistributorOptions } from "./wasmplugin-distributor.ts";

export const CONFIG_DELIVERIES = ["long-poll", "istiod", "both"] as const;
export type ConfigDeliveryMode = (typeof CONFIG_DELIVERIES)[number];

export interface ConfigDeliveryOptions {
  mode: ConfigDeliveryMode;
  /** The WasmPlugin written with istiod and both, and the Kubernetes client that writes it. */
  wasmPlugin?: { namespace: string; name: string; client: ApplyClient };
}

/** Whether the filters' long-poll is served (istiod alone refuses held polls). */
export const longPollServed = (mode: ConfigDeliveryMode): boolean => mode !== "istiod";

/** Whether the controller writes the WasmPlugin. */
export const writesWasmPlugin = (mode: ConfigDeliveryMode): boolean => mode !== "long-poll";

/** `--config-delivery`'s value, or an error naming the flag. */
export function parseConfigDelivery(text: string): ConfigDeliveryMode {
  if (!(CONFIG_DELIVERIES as readonly string[]).includes(text)) throw new Error(`--config-delivery: expected ${CONFIG_DELIVERIES.join(", ")}; got '${text}'`);
  return text as ConfigDeliveryMode;
}

/** `--wasmplugin NAMESPACE/NAME` (both DNS names, as Kubernetes requires). */
export function parseWasmPluginRef(text: string): { namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?)$/.exec(text);
  if (!m) throw new Error(`--wasmplugin: expected NAMESPACE/NAME (lowercase DNS names), e.g. ml/modelroll-filter; got '${text}'`);
  return { namespace: m[1] as string, name: m[3] as string };
}

/** The WasmPlugin writer the delivery asks for, or null (long-poll); an error when istiod/both name no WasmPlugin. */
export function wasmPluginDistributor(delivery: ConfigDeliveryOptions, log?: WasmPluginDistributorOptions["log"]): WasmPluginDistributor | null {
  if (!writesWasmPlugin(delivery.mode)) return null;
  if (!delivery.wasmPlugin) throw new Error(`--config-delivery ${delivery.mode}: name the WasmPlugin the controller writes with --wasmplugin NAMESPACE/NAME`);
  return new WasmPluginDistributor({ ...delivery.wasmPlugin, log });
}
