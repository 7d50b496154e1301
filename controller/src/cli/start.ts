// `npm start`: demo or given model servers, the controller, and Envoy with the filter, until a signal.
// The only place that prints or exits; what to do is decided by planStart (pure). Under `npm start` this is the
// controller process of the launcher (cli/launcher.ts), which owns the model servers and Envoy and keeps them
// serving across this process's restarts; run on its own, this process owns them (cli/data-plane.ts).
import { renderBootstrap } from "../envoy/bootstrap.ts";
import { modelClusters, renderModelsBootstrap } from "../envoy/models-bootstrap.ts";
import { readModelsFile, type ModelEntry } from "./models-file.ts";
import { startController, type RunningController } from "../server.ts";
import { launcherDataPlane, launcherOf, localDataPlane } from "./data-plane.ts";
import { BUSY_PORT_ADVICE, busyPorts, startListeners } from "./ports.ts";
import { describeSaved, installShutdown } from "./shutdown.ts";
import { planStart, START_USAGE } from "./start-plan.ts";
import { declaredUpstreams, givenUpstreams, PROBE_ADVICE, resumedLines, unreachableUpstreams } from "./start-upstreams.ts";
import { DEMO_CHAT_BODY, startDemoTraffic } from "./demo-traffic.ts";

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
const launcher = launcherOf();
const shutdown = installShutdown({
  name: launcher ? "modelroll start (controller)" : "modelroll start",
  farewell: () => (controller ? describeSaved(controller.app.modelroll.store, settings.stateFile) : null),
});
const dataPlane = launcher ? launcherDataPlane() : localDataPlane(shutdown, "modelroll start");

// Every address this command listens on, checked before anything starts (by the launcher, when there is one:
// its Envoy and model servers hold theirs across controller restarts).
const busy = launcher ? [] : await busyPorts(startListeners(plan, manyModels !== null));
if (busy.length > 0) {
  console.error(`modelroll start: cannot start:\n${busy.map((b) => `  ${b}`).join("\n")}\n${BUSY_PORT_ADVICE}`);
  process.exit(1);
}
// Found here rather than by the users routed to it: a model server that does not answer (a wrong port). Only at
// the first start: a controller the launcher restarts must come back even while a model server is briefly away.
const firstStart = !launcher || launcher.start === 1;
const silent = plan.probe && firstStart ? await unreachableUpstreams(givenUpstreams(plan, manyModels, plan.modelsFile)) : [];
if (silent.length > 0) {
  console.error(`modelroll start: cannot start: a model server does not answer:\n${silent.map((b) => `  ${b}`).join("\n")}\n${PROBE_ADVICE}`);
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
    // What each cluster reaches: a resumed rollout whose upstream changed is held before Envoy starts.
    upstreams: declaredUpstreams(plan, manyModels),
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
      const server = await dataPlane.modelServer({ version, host: target.demo.host, port: target.demo.port, kind: plan.demoKind });
      models[variant] = { ...target.demo, label: `${server.url} (demo ${plan.demoKind === "llm" ? "LLM" : "model"} ${version})` };
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
  const envoy = await dataPlane.envoy({
    bootstrapYaml: manyModels
      ? renderModelsBootstrap({ ...common, models: manyModels })
      : renderBootstrap({ ...common, stable: models.stable, canary: models.canary, ...(plan.shadow ? { shadow: plan.shadow.hostPort } : {}) }),
    adminPort: plan.admin.port,
    concurrency: plan.concurrency,
  });
  const state = running.app.modelroll.state;
  const store = running.app.modelroll.store;
  const stateLine = state.freshStart
    ? `${settings.stateFile} (fresh; the previous ${state.freshStart.previousRollouts} rollouts are kept in ${state.freshStart.keptIn})`
    : `${settings.stateFile}${store.resumed ? ` (resumed: ${store.size} rollout${store.size === 1 ? "" : "s"})` : settings.fresh ? " (fresh)" : " (new)"}`;
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
  const llm = !exampleModel && plan.demoKind === "llm";
  const exampleName = exampleModel ? exampleModel.name : llm ? "chat-llm" : "fraud-model";
  const example = exampleModel
    ? `{"name":"${exampleModel.name}","match":{"pathPrefix":"${exampleModel.pathPrefix}"},"clusters":${JSON.stringify(modelClusters(exampleModel.name))},"stickyKey":{"header":"x-user-id"},"canaryPercent":5}`
    : `{"name":"${exampleName}","match":{"pathPrefix":"${llm ? "/v1/chat/completions" : "/v1/predict"}"},"stickyKey":{"header":"x-user-id"},"canaryPercent":5}`;
  const examplePath = exampleModel ? exampleModel.pathPrefix : llm ? "/v1/chat/completions" : "/v1/predict";
  const exampleBody = llm ? DEMO_CHAT_BODY : "{}";
  // The launcher first (a start counts as done from here), then the people reading the output.
  dataPlane.running();
  if (launcher && launcher.start > 1) {
    // A restart under the launcher: Envoy and the model servers kept serving; one line instead of the banner.
    console.log(
      `modelroll start: controller restarted (pid ${process.pid}, start ${launcher.start}): ${running.url}, state file ${stateLine}; Envoy pid ${envoy.pid} kept serving${envoy.bootstrapDiffers ? ` (warning: its bootstrap differs from what this build would start; it applies at the next full start)` : ""}`,
    );
  } else
    console.log(`modelroll is running (pid ${launcher?.pid ?? process.pid}; Envoy pid ${envoy.pid}${launcher ? `; controller pid ${process.pid}` : ""})
  dashboard:           ${running.url}/${settings.apiToken ? " (asks for the API token, or the read-only one)" : ""}
  data plane (Envoy):  ${data}
  controller (API):    ${running.url}
  Envoy admin:         ${adminUrl}
${modelLines}
  gates read from:     ${settings.metrics === "prometheus" ? `Prometheus ${settings.prometheusUrl}` : "Envoy admin"}
  state file:          ${stateLine}
${store.resumed ? resumedLines(store.list()) : ""}  API auth:            ${settings.apiToken ? "bearer token (MODELROLL_API_TOKEN)" : "off: open on loopback (set MODELROLL_API_TOKEN)"}
  engine tick:         ${settings.tickIntervalMs} ms
${envoy.diesWithParent ? "" : "  warning: util-linux setpriv was not found: if this process is killed with SIGKILL, Envoy keeps running\n"}
Try:
  curl -s -XPOST ${running.url}/v1/rollouts -H 'content-type: application/json' \\
    -d '${example}'
  curl -s${llm ? "N" : ""} -XPOST ${data}${examplePath} -H 'x-user-id: alice' -H 'content-type: application/json' -d '${exampleBody}' -i
  curl -s ${running.url}/v1/rollouts/${exampleName}/stats
Ctrl-C (or SIGTERM to any of its processes) stops everything.${launcher ? `\n\`kill -USR2 ${launcher.pid}\` restarts the controller alone (from the current build: run npm run build first to upgrade); Envoy keeps serving.` : ""}`);
  if (plan.demoTraffic !== undefined) startDemoTraffic(plan.demoTraffic, data, examplePath, shutdown, llm ? DEMO_CHAT_BODY : undefined);
} catch (err) {
  console.error(`modelroll start: ${(err as Error).message}`);
  await shutdown.stop(1, "start-up failed");
}
