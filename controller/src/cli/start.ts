// `npm start`: demo or given model servers, the controller, and Envoy with the filter, until Ctrl-C.
// The only place that prints or exits; what to do is decided by planStart (pure).
import { renderBootstrap } from "../envoy/bootstrap.ts";
import { startEnvoy } from "../envoy/process.ts";
import { startModelServer, type ModelServer } from "../demo/model-server.ts";
import { startController } from "../server.ts";
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
const stoppers: Array<() => Promise<void>> = [];
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  }
  process.exit(code);
}
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

try {
  const models: Record<"stable" | "canary", { host: string; port: number; label: string }> = {} as never;
  for (const [variant, version] of [["stable", "v1"], ["canary", "v2"]] as const) {
    const target = plan[variant];
    if ("demo" in target) {
      const server: ModelServer = await startModelServer({ version, host: target.demo.host, port: target.demo.port });
      stoppers.push(() => server.close());
      models[variant] = { ...target.demo, label: `${server.url} (demo model ${version})` };
    } else {
      models[variant] = { ...target.hostPort, label: target.url };
    }
  }
  const adminUrl = `http://127.0.0.1:${plan.admin.port}`;
  const settings = plan.controllerSettings;
  const controller = await startController({ ...settings, host: plan.controller.host, port: plan.controller.port, envoyAdminUrls: [adminUrl], logger: false });
  stoppers.push(() => controller.close());
  const envoy = await startEnvoy({
    bootstrapYaml: renderBootstrap({
      listen: plan.listen, admin: plan.admin, stable: models.stable, canary: models.canary, controller: plan.controller,
      ...(settings.filterToken ? { filterToken: settings.filterToken } : {}),
      ...(plan.shadow ? { shadow: plan.shadow.hostPort } : {}),
    }),
    adminPort: plan.admin.port,
    concurrency: plan.concurrency,
  });
  stoppers.push(() => envoy.stop());
  envoy.child.on("exit", (code) => {
    if (!stopping) {
      console.error(`modelroll start: Envoy exited (${code}); last log lines:\n${envoy.log().slice(-3000)}`);
      void stopAll(1);
    }
  });
  const data = `http://${plan.listen.host}:${plan.listen.port}`;
  console.log(`modelroll is running
  data plane (Envoy):  ${data}
  controller (API):    ${controller.url}
  Envoy admin:         ${adminUrl}
  stable model:        ${models.stable.label}
  canary model:        ${models.canary.label}
  shadow cluster:      ${plan.shadow ? plan.shadow.url : "the canary model"}
  state file:          ${settings.stateFile}${controller.app.modelroll.store.resumed ? ` (resumed: ${controller.app.modelroll.store.size} rollouts)` : ""}
  API auth:            ${settings.apiToken ? "bearer token (MODELROLL_API_TOKEN)" : "off: open on loopback (set MODELROLL_API_TOKEN)"}

Try:
  curl -s -XPOST ${controller.url}/v1/rollouts -H 'content-type: application/json' \\
    -d '{"name":"fraud-model","match":{"pathPrefix":"/v1/predict"},"stickyKey":{"header":"x-user-id"},"canaryPercent":5}'
  curl -s -XPOST ${data}/v1/predict -H 'x-user-id: alice' -d '{}' -i
  curl -s ${controller.url}/v1/rollouts/fraud-model/stats
Ctrl-C stops everything.`);
} catch (err) {
  console.error(`modelroll start: ${(err as Error).message}`);
  await stopAll(1);
}
