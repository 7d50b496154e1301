// What `npm run controller` will do, decided from argv and the environment without side effects.
import { parseHostPort, type HostPort } from "../envoy/bootstrap.ts";
import { parseConfigDelivery, parseWasmPluginRef, writesWasmPlugin, type ConfigDeliveryMode } from "../filter-config/delivery.ts";
import { LEASE_FLAGS, LEASE_USAGE, leaseSettings, type LeaseSettings } from "./lease-flags.ts";
import { CONTROLLER_FLAGS, controllerSettings, DEFAULT_STATE_FILE, METRICS_USAGE, parseFlags, type ControllerSettings } from "./start-plan.ts";

interface ControllerPlan extends ControllerSettings {
  listen: HostPort;
  /** Envoy admin base URLs whose stats the engine reads. */
  envoyAdminUrls: string[];
  /** `--state kube`: the state lives in the Kubernetes API (kubeconfig absent: the pod's service account). */
  kube?: { kubeconfig?: string; namespace?: string; election: LeaseSettings };
  /** --config-delivery and what istiod delivery needs: the WasmPlugin and where the Kubernetes API is. */
  delivery: { mode: ConfigDeliveryMode; wasmPlugin?: { namespace: string; name: string }; kubeconfig?: string };
}

export const CONTROLLER_USAGE = `usage: npm run controller -- [--listen HOST:PORT] [--state FILE|kube [--kubeconfig PATH] [--namespace NS] [--leader-elect=true|false] [--lease-name NAME] [--lease-duration 3s] [--renew-deadline 2s] [--retry-period 500ms]] [--fresh] [--envoy-admin URL[,URL...]] [--prometheus URL] [--metrics admin|prometheus] [--tick-ms N] [--public-url URL] [--config-delivery long-poll|istiod|both [--wasmplugin NS/NAME]]
  --listen       REST API                              (env MODELROLL_CONTROLLER, default 127.0.0.1:8080)
  --state        state file (SQLite), resumed on start (env MODELROLL_STATE, default ${DEFAULT_STATE_FILE})
                 kube: ModelRollouts in the Kubernetes API server are the state (docs: Kubernetes mode)
  --kubeconfig   with --state kube or --config-delivery istiod|both: the kubeconfig to use (env MODELROLL_KUBECONFIG; absent: the pod's service account)
  --namespace    with --state kube: the namespace of the ModelRollouts (env MODELROLL_NAMESPACE; default: the kubeconfig context's or the pod's)
${LEASE_USAGE}
  --fresh        start with an empty state file (what it held is copied to FILE.before-fresh-TIME)
  --envoy-admin  Envoy admin URLs to read stats from   (env MODELROLL_ENVOY_ADMIN, default http://127.0.0.1:9901)
  --tick-ms      engine tick period                    (env MODELROLL_TICK_MS, default 5000)
${METRICS_USAGE}
  --public-url   the controller as people reach it, for links in notifications (env MODELROLL_PUBLIC_URL)
  --config-delivery  how the rollouts reach the filters: long-poll (default; the filters poll this controller),
                 istiod (written into the WasmPlugin's pluginConfig, istiod pushes it), or both (env MODELROLL_CONFIG_DELIVERY)
  --wasmplugin   NAMESPACE/NAME of the WasmPlugin written with istiod or both (env MODELROLL_WASMPLUGIN)
  --max-event-streams  open dashboard/CLI event streams at most, an eighth kept for the API token (env MODELROLL_MAX_EVENT_STREAMS, default 256)
  env MODELROLL_NOTIFY_TARGETS: controller-wide notification targets (every managed rollout's events), as
    slack=URL,teams=URL,webhook=URL or a JSON list of targets; from the environment only (the URLs are secrets).
  env MODELROLL_API_TOKEN: bearer token for writes (required to listen on a non-loopback address);
  env MODELROLL_FILTER_TOKEN: read-only token the filters send for their config.
SIGINT, SIGTERM or SIGHUP stop it and print what the state file keeps.`;

const FLAGS = new Set(["--listen", "--envoy-admin", "--kubeconfig", "--namespace", "--config-delivery", "--wasmplugin", ...LEASE_FLAGS, ...CONTROLLER_FLAGS]);

type ControllerPlanResult = { plan: ControllerPlan } | { help: true } | { error: string };

export function planController(argv: string[], env: Record<string, string | undefined>): ControllerPlanResult {
  const flags = parseFlags(argv, FLAGS);
  if (!("given" in flags)) return flags;
  const given = flags.given;
  try {
    const envoyAdminUrls = (given.get("--envoy-admin") ?? env.MODELROLL_ENVOY_ADMIN ?? "http://127.0.0.1:9901")
      .split(",")
      .map((u) => u.trim())
      .filter((u) => u !== "");
    for (const url of envoyAdminUrls) {
      if (!/^https?:\/\/[^/]+\/?$/.test(url)) return { error: `--envoy-admin: expected base URLs like http://127.0.0.1:9901, got '${url}'` };
    }
    const settings = controllerSettings(given, env);
    const kubeconfig = given.get("--kubeconfig") ?? env.MODELROLL_KUBECONFIG;
    const namespace = given.get("--namespace") ?? env.MODELROLL_NAMESPACE;
    const kubeMode = settings.stateFile === "kube";
    const delivery = deliveryOf(given, env, kubeconfig);
    if (!kubeMode && given.has("--namespace")) return { error: "--namespace needs --state kube" };
    if (!kubeMode && !delivery.wasmPlugin && given.has("--kubeconfig")) return { error: "--kubeconfig needs --state kube or --config-delivery istiod|both" };
    const leaseFlag = LEASE_FLAGS.find((f) => given.has(f));
    if (!kubeMode && leaseFlag) return { error: `${leaseFlag}: leader election is for --state kube (a state file allows one controller)` };
    if (kubeMode && given.has("--fresh"))
      return { error: "--fresh: not with --state kube (the API server's ModelRollouts are the state; delete them with kubectl)" };
    if (namespace !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace))
      return { error: `--namespace: '${namespace}' is not a namespace name` };
    return {
      plan: {
        listen: parseHostPort(given.get("--listen") ?? env.MODELROLL_CONTROLLER ?? "127.0.0.1:8080", "--listen"),
        envoyAdminUrls,
        ...settings,
        ...(kubeMode ? { kube: { ...(kubeconfig ? { kubeconfig } : {}), ...(namespace ? { namespace } : {}), election: leaseSettings(given, env) } } : {}),
        delivery,
      },
    };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function deliveryOf(given: Map<string, string>, env: Record<string, string | undefined>, kubeconfig: string | undefined): ControllerPlan["delivery"] {
  const mode = parseConfigDelivery(given.get("--config-delivery") ?? env.MODELROLL_CONFIG_DELIVERY ?? "long-poll");
  const plugin = given.get("--wasmplugin") ?? env.MODELROLL_WASMPLUGIN;
  if (!writesWasmPlugin(mode)) {
    if (given.has("--wasmplugin")) throw new Error("--wasmplugin: only with --config-delivery istiod or both");
    return { mode };
  }
  if (plugin === undefined) throw new Error(`--config-delivery ${mode}: name the WasmPlugin to write with --wasmplugin NAMESPACE/NAME`);
  return { mode, wasmPlugin: parseWasmPluginRef(plugin), ...(kubeconfig ? { kubeconfig } : {}) };
}
