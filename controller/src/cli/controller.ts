// `npm run controller`: the controller alone (REST API, engine, state file), for Envoys started elsewhere.
// The only place that prints or exits; what to do is decided by planController (pure).
import { startController } from "../server.ts";
import { CONTROLLER_USAGE, planController } from "./controller-plan.ts";

const result = planController(process.argv.slice(2), process.env);
if ("help" in result) {
  console.log(CONTROLLER_USAGE);
  process.exit(0);
}
if ("error" in result) {
  console.error(`modelroll controller: ${result.error}\n${CONTROLLER_USAGE}`);
  process.exit(2);
}
const { listen, ...options } = result.plan;
try {
  const controller = await startController({ ...options, host: listen.host, port: listen.port, logger: { level: process.env.MODELROLL_LOG_LEVEL ?? "warn" } });
  const stop = () => void controller.close().then(() => process.exit(0), () => process.exit(1));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  const store = controller.app.modelroll.store;
  console.log(
    `modelroll controller listening on ${controller.url}; state ${options.stateFile} (${store.resumed ? `resumed: ${store.size} rollouts, config version ${store.version}` : "new"}); ` +
      `auth ${options.apiToken ? (options.filterToken ? "API and filter tokens" : "API token") : "off (loopback only)"}`,
  );
} catch (err) {
  console.error(`modelroll controller: ${(err as Error).message}`);
  process.exit(1);
}
