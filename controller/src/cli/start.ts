// `npm start`: demo or given model servers, the controller, and Envoy with the filter, until a signal.
// The only place that prints or exits; what to do is decided by planStart (pure).
import { renderBootstrap } from "../envoy/bootstrap.ts";
import { modelClusters, renderModelsBootstrap } from "../envoy/models-bootstrap.ts";
import { readModelsFile, type ModelEntry } from "./models-file.ts";
import { startEnvoy } from "../envoy/process.ts";
import { startModelServer, type ModelServer } from "../demo/model-server.ts";
import { startController, type RunningController } from "../server.ts";
import { BUSY_PORT_ADVICE, busyPorts, type Listener } from "./ports.ts";
import { describeSaved, installShutdown } from "./shutdown.ts";
import { planStart, START_USAGE } from "./start-plan.ts";

const result = planStart(process.argv.slice(2), process.env);
if ("help" in result) {
  console.log(START_USAGE);
  process.exit(0);
}
if ("error" in result) {
  console.error(`modelroll start: ${result.error}\n${START_USAGE}`);
  process.exit(2);
}
const plan = result.plan;
const settings = plan.controllerSettings;
let manyModels: ModelEntry[] | null = null;
if (plan.modelsFile !== undefined) {
  try {
    manyModels = readModelsFile(plan.modelsFile);
  } catch (err) {
    console.error(`modelroll start: ${(err as Error).message}`);
    process.exit(2);
  }
}
let controller: RunningController | null = null;
const shutdown = installShutdown({
  name: "modelroll start",
  farewell: () => (controller ? describeSaved(controller.app.modelroll.store, settings.stateFile) : null),
});

// Every address this command listens on, checked before anything starts.
const listeners: Listener[] = [
  { ...plan.listen, what: "data plane (--listen)" },
  { ...plan.controller, what: "controller API (--controller)" },
  { ...plan.admin, what: "Envoy admin (--admin)" },
  ...(!manyModels && "demo" in plan.stable ? [{ ...plan.stable.demo, what: "demo stable model (MODELROLL_DEMO_STABLE)" }] : []),
  ...(!manyModels && "demo" in plan.canary ? [{ ...plan.canary.demo, what: "demo canary model (MODELROLL_DEMO_CANARY)" }] : []),
];
const busy = await busyPorts(listeners);
if (busy.length > 0) {
  console.error(`modelroll start: cannot start:\n${busy.map((b) => `  ${b}`).join("\n")}\n${BUSY_PORT_ADVICE}`);
  process.exit(1);
}

try {
  // The controller first: it takes the state file's lock, the one thing a second run must not share.
  const running = await startController({
    stateFile: settings.stateFile,
    freshState: settings.fresh,
    tickIntervalMs: settings.tickIntervalMs,
    ...(settings.apiToken ? { apiToken: settings.apiToken } : {}),
    ...(settings.filterToken ? { filterToken: settings.filterToken } : {}),
    ...(settings.prometheusUrl ? { prometheusUrl: settings.prometheusUrl } : {}),
    ...(settings.publicUrl ? { publicUrl: settings.publicUrl } : {}),
    ...(settings.notifications ? { notifications: settings.notifications } : {}),
    ...(settings.metrics ? { metrics: settings.metrics } : {}),
    ...(settings.prometheusMaxLagMs ? { prometheusMaxLagMs: settings.prometheusMaxLagMs } : {}),
    ...(settings.maxEventStreams ? { maxEventStreams: settings.maxEventStreams } : {}),
    host: plan.controller.host,
    port: plan.controller.port,
    envoyAdminUrls: [`http://127.0.0.1:${plan.admin.port}`],
    logger: false,
  });
  controller = running;
  shutdown.onStop(() => running.close());

  const models: Record<"stable" | "canary", { host: string; port: number; label: string }> = {} as never;
  for (const [variant, version] of manyModels
    ? []
    : ([
        ["stable", "v1"],
        ["canary", "v2"],
      ] as const)) {
    const target = plan[variant];
    if ("demo" in target) {
      const server: ModelServer = await startModelServer({ version, host: target.demo.host, port: target.demo.port });
      shutdown.onStop(() => server.close());
      models[variant] = { ...target.demo, label: `${server.url} (demo model ${version})` };
    } else {
      models[variant] = { ...target.hostPort, label: target.url };
    }
  }
  const adminUrl = `http://127.0.0.1:${plan.admin.port}`;
  const common = {
    listen: plan.listen,
    admin: plan.admin,
    controller: plan.controller,
    ...(settings.filterToken ? { filterToken: settings.filterToken } : {}),
  };
  const envoy = await startEnvoy({
    bootstrapYaml: manyModels
      ? renderModelsBootstrap({ ...common, models: manyModels })
      : renderBootstrap({ ...common, stable: models.stable, canary: models.canary, ...(plan.shadow ? { shadow: plan.shadow.hostPort } : {}) }),
    adminPort: plan.admin.port,
    concurrency: plan.concurrency,
  });
  shutdown.onStop(() => envoy.stop());
  envoy.child.on("exit", (code, signal) => {
    if (shutdown.stopping) return;
    // Stopped on purpose (someone sent Envoy SIGTERM or SIGINT, or /quitquitquit; Envoy then exits with 0): a
    // clean stop of the rest. Anything else is a crash.
    const onPurpose = code === 0 || signal === "SIGTERM" || signal === "SIGINT";
    if (!onPurpose) console.error(`modelroll start: Envoy exited (${signal ?? `code ${code}`}); last log lines:\n${envoy.log().slice(-3000)}`);
    void shutdown.stop(onPurpose ? 0 : 1, `Envoy (pid ${envoy.child.pid}) exited: ${signal ?? `code ${code}`}`);
  });
  const state = running.app.modelroll.state;
  const store = running.app.modelroll.store;
  const stateLine = state.freshStart
    ? `${settings.stateFile} (fresh; the previous ${state.freshStart.previousRollouts} rollouts are kept in ${state.freshStart.keptIn})`
    : `${settings.stateFile}${store.resumed ? ` (resumed: ${store.size} rollouts)` : settings.fresh ? " (fresh)" : " (new)"}`;
  const data = `http://${plan.listen.host}:${plan.listen.port}`;
  const modelLines = manyModels
    ? manyModels
        .map((m) => {
          const c = modelClusters(m.name);
          return `  model ${m.name}:  ${m.pathPrefix} -> stable ${m.urls.stable}, canary ${m.urls.canary}, shadow ${m.urls.shadow ?? "the canary"}
    its rollouts name  clusters: { stable: ${c.stable}, canary: ${c.canary}, shadow: ${c.shadow} }`;
        })
        .join("\n")
    : `  stable model:        ${models.stable.label}
  canary model:        ${models.canary.label}
  shadow cluster:      ${plan.shadow ? plan.shadow.url : "the canary model"}`;
  // The first model of the file for the examples (the models file has at least one).
  const exampleModel = manyModels?.[0] ?? null;
  const example = exampleModel
    ? `{"name":"${exampleModel.name}","match":{"pathPrefix":"${exampleModel.pathPrefix}"},"clusters":${JSON.stringify(modelClusters(exampleModel.name))},"stickyKey":{"header":"x-user-id"},"canaryPercent":5}`
    : `{"name":"fraud-model","match":{"pathPrefix":"/v1/predict"},"stickyKey":{"header":"x-user-id"},"canaryPercent":5}`;
  const examplePath = exampleModel ? exampleModel.pathPrefix : "/v1/predict";
  console.log(`modelroll is running (pid ${process.pid}; Envoy pid ${envoy.child.pid})
  dashboard:           ${running.url}/${settings.apiToken ? " (asks for the API token, or the read-only one)" : ""}
  data plane (Envoy):  ${data}
  controller (API):    ${running.url}
  Envoy admin:         ${adminUrl}
${modelLines}
  gates read from:     ${settings.metrics === "prometheus" ? `Prometheus ${settings.prometheusUrl}` : "Envoy admin"}
  state file:          ${stateLine}
  API auth:            ${settings.apiToken ? "bearer token (MODELROLL_API_TOKEN)" : "off: open on loopback (set MODELROLL_API_TOKEN)"}
  engine tick:         ${settings.tickIntervalMs} ms
${envoy.diesWithParent ? "" : "  warning: util-linux setpriv was not found: if this process is killed with SIGKILL, Envoy keeps running\n"}
Try:
  curl -s -XPOST ${running.url}/v1/rollouts -H 'content-type: application/json' \\
    -d '${example}'
  curl -s -XPOST ${data}${examplePath} -H 'x-user-id: alice' -d '{}' -i
  curl -s ${running.url}/v1/rollouts/${exampleModel ? exampleModel.name : "fraud-model"}/stats
Ctrl-C (or SIGTERM to any of its processes) stops everything.`);
} catch (err) {
  console.error(`modelroll start: ${(err as Error).message}`);
  await shutdown.stop(1, "start-up failed");
}
