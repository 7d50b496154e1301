// What `npm run controller` will do, decided from argv and the environment without side effects.
import { parseHostPort, type HostPort } from "../envoy/bootstrap.ts";
import { LEASE_FLAGS, LEASE_USAGE, leaseSettings, type LeaseSettings } from "./lease-flags.ts";
import { CONTROLLER_FLAGS, controllerSettings, DEFAULT_STATE_FILE, METRICS_USAGE, parseFlags, type ControllerSettings } from "./start-plan.ts";

interface ControllerPlan extends ControllerSettings {
  listen: HostPort;
  /** Envoy admin base URLs whose stats the engine reads. */
  envoyAdminUrls: string[];
  /** `--state kube`: the state lives in the Kubernetes API (kubeconfig absent: the pod's service account). */
  kube?: { kubeconfig?: string; namespace?: string; election: LeaseSettings };
}

export const CONTROLLER_USAGE = `usage: npm run controller -- [--listen HOST:PORT] [--state FILE|kube [--kubeconfig PATH] [--namespace NS] [--leader-elect=true|false] [--lease-name NAME] [--lease-duration 3s] [--renew-deadline 2s] [--retry-period 500ms]] [--fresh] [--envoy-admin URL[,URL...]] [--prometheus URL] [--metrics admin|prometheus] [--tick-ms N] [--public-url URL]
  --listen       REST API                              (env MODELROLL_CONTROLLER, default 127.0.0.1:8080)
  --state        state file (SQLite), resumed on start (env MODELROLL_STATE, default ${DEFAULT_STATE_FILE})
                 kube: ModelRollouts in the Kubernetes API server are the state (docs: Kubernetes mode)
  --kubeconfig   with --state kube: the kubeconfig to use (env MODELROLL_KUBECONFIG; absent: the pod's service account)
  --namespace    with --state kube: the namespace of the ModelRollouts (env MODELROLL_NAMESPACE; default: the kubeconfig context's or the pod's)
${LEASE_USAGE}
  --fresh        start with an empty state file (what it held is copied to FILE.before-fresh-TIME)
  --envoy-admin  Envoy admin URLs to read stats from   (env MODELROLL_ENVOY_ADMIN, default http://127.0.0.1:9901)
  --tick-ms      engine tick period                    (env MODELROLL_TICK_MS, default 5000)
${METRICS_USAGE}
  --public-url   the controller as people reach it, for links in notifications (env MODELROLL_PUBLIC_URL)
  --max-event-streams  open dashboard/CLI event streams at most, an eighth kept for the API token (env MODELROLL_MAX_EVENT_STREAMS, default 256)
  env MODELROLL_NOTIFY_TARGETS: controller-wide notification targets (every managed rollout's events), as
    slack=URL,teams=URL,webhook=URL or a JSON list of targets; from the environment only (the URLs are secrets).
  env MODELROLL_API_TOKEN: bearer token for writes (required to listen on a non-loopback address);
  env MODELROLL_FILTER_TOKEN: read-only token the filters send for their config.
SIGINT, SIGTERM or SIGHUP stop it and print what the state file keeps.`;

const FLAGS = new Set(["--listen", "--envoy-admin", "--kubeconfig", "--namespace", ...LEASE_FLAGS, ...CONTROLLER_FLAGS]);

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
    if (!kubeMode && (given.has("--kubeconfig") || given.has("--namespace"))) return { error: "--kubeconfig and --namespace need --state kube" };
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
      },
    };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
