// What `npm start` will do, decided from argv and the environment without side effects.
import { parseHostPort, parseUrlHostPort, type HostPort } from "../envoy/bootstrap.ts";
import { parseTargetsEnv, type NotificationTarget } from "../engine/index.ts";
import { METRIC_SOURCE_KINDS, type MetricSourceKind } from "../metrics/sources.ts";
import { DEMO_KINDS, type DemoKind } from "../demo/start-demo.ts";

interface StartPlan {
  listen: HostPort;
  controller: HostPort;
  admin: HostPort;
  /** Given model server URLs, or null to start the demo models (stable v1, canary v2) on these ports. */
  stable: { url: string; hostPort: HostPort } | { demo: HostPort };
  canary: { url: string; hostPort: HostPort } | { demo: HostPort };
  /** The Envoy cluster "shadow": a given model server, or null to point it at the canary. */
  shadow: { url: string; hostPort: HostPort } | null;
  concurrency: number;
  /** --demo KIND: which demo models start (without --stable/--canary): the classifier, or the OpenAI-style LLM. */
  demoKind: DemoKind;
  /** --demo-traffic RATE: requests per second sent through the data plane until stopped (modelroll traffic's generator). */
  demoTraffic?: number;
  /** Probe the given model servers before starting, and refuse to start when one does not answer (--no-probe: false). */
  probe: boolean;
  /** --models FILE: many models behind the one Envoy (cli/models-file.ts reads it); absent: one stable/canary pair. */
  modelsFile?: string;
  /** The controller's own settings: state file, tokens, Prometheus. */
  controllerSettings: ControllerSettings;
}

/** Settings shared by `npm start` and `npm run controller`. */
export interface ControllerSettings {
  /** SQLite state file; a restart resumes from it. */
  stateFile: string;
  /** --fresh: start with an empty state file (what it held is copied aside). */
  fresh: boolean;
  /** Engine tick period for managed rollouts. */
  tickIntervalMs: number;
  /** From the environment only (argv is visible to every user of the machine). */
  apiToken?: string;
  filterToken?: string;
  prometheusUrl?: string;
  /** The controller's address as people reach it, for links in notifications (--public-url). */
  publicUrl?: string;
  /** Controller-wide notification targets, from the environment only (their URLs are secrets). */
  notifications?: { targets: NotificationTarget[] };
  /** Where the built-in gates read the filter's counts (absent: Envoy admin). */
  metrics?: MetricSourceKind;
  /** With metrics prometheus: the freshness bound of its samples. */
  prometheusMaxLagMs?: number;
  /** Open event streams at most (--max-event-streams); an eighth are kept for the API token. */
  maxEventStreams?: number;
}

export const DEFAULT_STATE_FILE = ".modelroll/state.db";

export function controllerSettings(given: Map<string, string>, env: Record<string, string | undefined>): ControllerSettings {
  const prometheusUrl = given.get("--prometheus") ?? env.MODELROLL_PROMETHEUS_URL;
  if (prometheusUrl !== undefined) parseUrlHostPort(prometheusUrl, "--prometheus");
  const publicUrl = given.get("--public-url") ?? env.MODELROLL_PUBLIC_URL;
  if (publicUrl !== undefined && !/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(publicUrl))
    throw new Error(`--public-url: expected an http:// or https:// base URL, got '${publicUrl}'`);
  let notifications: ControllerSettings["notifications"];
  if (env.MODELROLL_NOTIFY_TARGETS !== undefined && env.MODELROLL_NOTIFY_TARGETS.trim() !== "") {
    const parsed = parseTargetsEnv(env.MODELROLL_NOTIFY_TARGETS);
    if ("error" in parsed) throw new Error(parsed.error);
    notifications = { targets: parsed.targets };
  }
  const tickIntervalMs = Number(given.get("--tick-ms") ?? env.MODELROLL_TICK_MS ?? "5000");
  if (!Number.isInteger(tickIntervalMs) || tickIntervalMs < 50 || tickIntervalMs > 3_600_000) throw new Error("--tick-ms: expected an integer 50..3600000");
  const streams = given.get("--max-event-streams") ?? env.MODELROLL_MAX_EVENT_STREAMS;
  const maxEventStreams = streams === undefined ? undefined : /^\d{1,6}$/.test(streams) ? Number(streams) : Number.NaN;
  if (maxEventStreams !== undefined && !(maxEventStreams >= 1 && maxEventStreams <= 100_000))
    throw new Error("--max-event-streams: expected an integer 1..100000");
  const metrics = given.get("--metrics") ?? env.MODELROLL_METRICS;
  if (metrics !== undefined && !(METRIC_SOURCE_KINDS as readonly string[]).includes(metrics))
    throw new Error(`--metrics: expected ${METRIC_SOURCE_KINDS.join(" or ")}, got '${metrics}'`);
  if (metrics === "prometheus" && prometheusUrl === undefined)
    throw new Error("--metrics prometheus: give Prometheus' URL with --prometheus (or MODELROLL_PROMETHEUS_URL)");
  const lag = given.get("--prometheus-max-lag-ms") ?? env.MODELROLL_PROMETHEUS_MAX_LAG_MS;
  const prometheusMaxLagMs = lag === undefined ? undefined : Number(lag);
  if (prometheusMaxLagMs !== undefined) {
    if (metrics !== "prometheus") throw new Error("--prometheus-max-lag-ms: only applies with --metrics prometheus");
    if (!Number.isInteger(prometheusMaxLagMs) || prometheusMaxLagMs < 1000 || prometheusMaxLagMs > 3_600_000)
      throw new Error("--prometheus-max-lag-ms: expected an integer 1000..3600000");
  }
  return {
    stateFile: given.get("--state") ?? env.MODELROLL_STATE ?? DEFAULT_STATE_FILE,
    fresh: given.has("--fresh"),
    tickIntervalMs,
    ...(env.MODELROLL_API_TOKEN ? { apiToken: env.MODELROLL_API_TOKEN } : {}),
    ...(env.MODELROLL_FILTER_TOKEN ? { filterToken: env.MODELROLL_FILTER_TOKEN } : {}),
    ...(prometheusUrl !== undefined ? { prometheusUrl } : {}),
    ...(publicUrl !== undefined ? { publicUrl } : {}),
    ...(notifications ? { notifications } : {}),
    ...(metrics !== undefined ? { metrics: metrics as MetricSourceKind } : {}),
    ...(prometheusMaxLagMs !== undefined ? { prometheusMaxLagMs } : {}),
    ...(maxEventStreams !== undefined ? { maxEventStreams } : {}),
  };
}

/** Flags every command with a controller takes (controllerSettings reads them). */
export const CONTROLLER_FLAGS = [
  "--state",
  "--prometheus",
  "--tick-ms",
  "--metrics",
  "--prometheus-max-lag-ms",
  "--public-url",
  "--max-event-streams",
] as const;

/** The usage lines of CONTROLLER_FLAGS' metric part, shared by both commands. */
export const METRICS_USAGE = `  --metrics           where the built-in gates read the filter's counts: admin (every Envoy's admin endpoint, default)
                      or prometheus (--prometheus; for meshes)  (env MODELROLL_METRICS)
  --prometheus        Prometheus for PromQL gates, and the counts with --metrics prometheus (env MODELROLL_PROMETHEUS_URL)
  --prometheus-max-lag-ms  with --metrics prometheus: its newest sample may be at most this old at a tick, else the
                      gates read Error and hold (env MODELROLL_PROMETHEUS_MAX_LAG_MS, default 60000)`;

/** Flags without a value, shared by both commands. */
const SWITCHES: ReadonlySet<string> = new Set(["--fresh"]);

/**
 * `--flag value` or `--flag=value`, each flag at most once, and the `switches` (no value: present or not);
 * an error names the argument.
 */
export function parseFlags(
  argv: string[],
  flags: ReadonlySet<string>,
  switches: ReadonlySet<string> = SWITCHES,
): { given: Map<string, string> } | { help: true } | { error: string } {
  const given = new Map<string, string>();
  // One iterator: a flag's value is the argument after it, taken from the same sequence.
  const args = argv.values();
  for (const arg of args) {
    if (arg === "--help" || arg === "-h") return { help: true };
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    if (switches.has(flag)) {
      if (inline !== undefined) return { error: `${flag} takes no value` };
      given.set(flag, "");
      continue;
    }
    if (!flags.has(flag)) return { error: `unknown argument '${arg}'` };
    const value = inline ?? args.next().value;
    if (value === undefined || value.startsWith("--")) return { error: `${flag} needs a value` };
    given.set(flag, value);
  }
  return { given };
}

/** The demo traffic's bound: it runs until stopped, so its rate is capped. */
const MAX_DEMO_TRAFFIC = 500;

export const START_USAGE = `usage: npm start -- [--stable URL --canary URL | --models FILE] [--no-probe] [--demo classifier|llm] [--demo-traffic RATE] [--max-event-streams N] [--listen HOST:PORT] [--controller HOST:PORT] [--admin HOST:PORT] [--concurrency N] [--state FILE] [--fresh] [--tick-ms N] [--metrics admin|prometheus] [--public-url URL]
  --stable, --canary  model servers (http://HOST:PORT; a host name is resolved by Envoy, IPv4 first); without them two demo models start on 127.0.0.1:9001 and :9002
  --demo              which demo models start without --stable/--canary: classifier (default; POST /v1/predict) or
                      llm (OpenAI chat completions, streamed or not: POST /v1/chat/completions)  (env MODELROLL_DEMO)
  --shadow            model server behind the "shadow" cluster (env MODELROLL_SHADOW_URL, default: the canary)
  --no-probe          start even when a given model server does not answer HTTP (by default npm start refuses, naming it)
  --models            a YAML file of models (name, pathPrefix, stable, canary, shadow URLs) behind the one Envoy,
                      each with its own clusters <name>-stable, -canary, -shadow (README "Many models behind one proxy")
  --listen            data plane, Envoy's listener       (env MODELROLL_LISTEN, default 127.0.0.1:10000)
  --controller        controller REST API                (env MODELROLL_CONTROLLER, default 127.0.0.1:8080)
  --admin             Envoy admin, always on 127.0.0.1   (env MODELROLL_ADMIN, default 127.0.0.1:9901)
  --concurrency       Envoy worker threads               (env MODELROLL_CONCURRENCY, default 2)
  --state             controller state file (SQLite)     (env MODELROLL_STATE, default ${DEFAULT_STATE_FILE})
  --fresh             start with an empty state file (what it held is copied to FILE.before-fresh-TIME)
  --tick-ms           engine tick period                 (env MODELROLL_TICK_MS, default 5000)
${METRICS_USAGE}
  --public-url        the controller as people reach it, for links in notifications (env MODELROLL_PUBLIC_URL)
  --demo-traffic      RATE requests/s (at most ${MAX_DEMO_TRAFFIC}) from 1000 users (x-user-id) to the first path, until stopped
  --max-event-streams open dashboard/CLI event streams at most, an eighth kept for the API token (env MODELROLL_MAX_EVENT_STREAMS, default 256)
  env MODELROLL_NOTIFY_TARGETS: controller-wide notification targets, slack=URL,teams=URL,webhook=URL or a JSON list.
  env MODELROLL_API_TOKEN / MODELROLL_FILTER_TOKEN: bearer tokens for writes / for the filters (and reads).
  env MODELROLL_DEMO_STABLE / MODELROLL_DEMO_CANARY (HOST:PORT) move the demo models.
SIGINT, SIGTERM or SIGHUP stop everything and print what the state file keeps.`;

const FLAGS = new Set([
  "--demo",
  "--demo-traffic",
  "--stable",
  "--canary",
  "--shadow",
  "--models",
  "--listen",
  "--controller",
  "--admin",
  "--concurrency",
  ...CONTROLLER_FLAGS,
]);

export type PlanResult = { plan: StartPlan } | { help: true } | { error: string };

const START_SWITCHES: ReadonlySet<string> = new Set(["--fresh", "--no-probe"]);

export function planStart(argv: string[], env: Record<string, string | undefined>): PlanResult {
  const flags = parseFlags(argv, FLAGS, START_SWITCHES);
  if (!("given" in flags)) return flags;
  const given = flags.given;
  try {
    const stableUrl = given.get("--stable") ?? env.MODELROLL_STABLE_URL;
    const canaryUrl = given.get("--canary") ?? env.MODELROLL_CANARY_URL;
    const shadowUrl = given.get("--shadow") ?? env.MODELROLL_SHADOW_URL;
    if ((stableUrl === undefined) !== (canaryUrl === undefined)) return { error: "give both --stable and --canary, or neither (to start the demo models)" };
    const modelsFile = given.get("--models") ?? env.MODELROLL_MODELS;
    if (modelsFile !== undefined && (given.has("--stable") || given.has("--canary") || given.has("--shadow"))) {
      return { error: "--models: give the models in the file, or one pair with --stable/--canary, not both" };
    }
    const admin = parseHostPort(given.get("--admin") ?? env.MODELROLL_ADMIN ?? "127.0.0.1:9901", "--admin");
    if (admin.host !== "127.0.0.1" && admin.host !== "localhost") return { error: `--admin: Envoy's admin listens on 127.0.0.1 only, got ${admin.host}` };
    const concurrency = Number(given.get("--concurrency") ?? env.MODELROLL_CONCURRENCY ?? "2");
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) return { error: "--concurrency: expected an integer 1..64" };
    const demoKind = given.get("--demo") ?? env.MODELROLL_DEMO ?? "classifier";
    if (!(DEMO_KINDS as readonly string[]).includes(demoKind)) return { error: `--demo: expected ${DEMO_KINDS.join(" or ")}, got '${demoKind}'` };
    if (given.has("--demo") && (stableUrl !== undefined || modelsFile !== undefined))
      return { error: "--demo: the demo models start only without --stable/--canary and --models" };
    const demoTraffic = given.has("--demo-traffic") ? Number(given.get("--demo-traffic")) : undefined;
    if (demoTraffic !== undefined && !(demoTraffic > 0 && demoTraffic <= MAX_DEMO_TRAFFIC))
      return { error: `--demo-traffic: expected requests per second above 0 and at most ${MAX_DEMO_TRAFFIC}, got '${given.get("--demo-traffic")}'` };
    return {
      plan: {
        listen: parseHostPort(given.get("--listen") ?? env.MODELROLL_LISTEN ?? "127.0.0.1:10000", "--listen"),
        controller: parseHostPort(given.get("--controller") ?? env.MODELROLL_CONTROLLER ?? "127.0.0.1:8080", "--controller"),
        admin: { host: "127.0.0.1", port: admin.port },
        stable:
          stableUrl !== undefined
            ? { url: stableUrl, hostPort: parseUrlHostPort(stableUrl, "--stable") }
            : { demo: parseHostPort(env.MODELROLL_DEMO_STABLE ?? "127.0.0.1:9001", "MODELROLL_DEMO_STABLE") },
        canary:
          canaryUrl !== undefined
            ? { url: canaryUrl, hostPort: parseUrlHostPort(canaryUrl, "--canary") }
            : { demo: parseHostPort(env.MODELROLL_DEMO_CANARY ?? "127.0.0.1:9002", "MODELROLL_DEMO_CANARY") },
        shadow: shadowUrl !== undefined ? { url: shadowUrl, hostPort: parseUrlHostPort(shadowUrl, "--shadow") } : null,
        concurrency,
        demoKind: demoKind as DemoKind,
        probe: !given.has("--no-probe"),
        ...(modelsFile !== undefined ? { modelsFile } : {}),
        ...(demoTraffic !== undefined ? { demoTraffic } : {}),
        controllerSettings: controllerSettings(given, env),
      },
    };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
