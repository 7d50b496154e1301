// `npm start`: the launcher. It owns the data plane (the demo model servers in this process, Envoy as its child)
// and runs the controller (cli/start.ts) as a second child beside Envoy, so the proxy's life does not hang on the
// controller's: a crashed controller is started again (it resumes from its state file and is handed the running
// Envoy), SIGUSR2 restarts it from the build on disk (an upgrade), and the filter keeps its last config meanwhile.
// SIGINT, SIGTERM or SIGHUP (or npm's end) stop everything: the controller, then Envoy, then the model servers;
// killed with SIGKILL, both children get SIGTERM from the kernel (parent-death signal). The only place that prints
// or exits for the launcher; what to do is decided by planStart (pure), as for the controller it runs.
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { ControllerSupervisor } from "./controller-supervisor.ts";
import { readModelsFile } from "./models-file.ts";
import { OwnedDataPlane } from "./owned-data-plane.ts";
import { BUSY_PORT_ADVICE, busyPorts, startListeners } from "./ports.ts";
import { restartPolicyFrom } from "./restart-policy.ts";
import { installShutdown } from "./shutdown.ts";
import { planStart, START_USAGE } from "./start-plan.ts";

/** The environment variable naming another controller entry than start.js beside this file (read at every start). */
const ENTRY_ENV = "MODELROLL_CONTROLLER_ENTRY";
const NAME = "modelroll start";
/** What the launcher adds to the usage: the signal it takes beside the stopping ones, and its bound. */
const LAUNCHER_USAGE = `SIGUSR2 restarts the controller alone from the build on disk (npm run build first to upgrade); Envoy keeps serving.
  env MODELROLL_CONTROLLER_RESTARTS: crashes in a row after which a crashed controller is not started again (default 10).`;

const argv = process.argv.slice(2);
const result = planStart(argv, process.env);
if ("help" in result) {
  console.log(`${START_USAGE}\n${LAUNCHER_USAGE}`);
  process.exit(0);
}
if ("error" in result) {
  console.error(`${NAME}: ${result.error}\n${START_USAGE}\n${LAUNCHER_USAGE}`);
  process.exit(2);
}
let manyModels = false;
let policy: ReturnType<typeof restartPolicyFrom>;
try {
  if (result.plan.modelsFile !== undefined) manyModels = readModelsFile(result.plan.modelsFile).length > 0;
  policy = restartPolicyFrom(process.env);
} catch (err) {
  console.error(`${NAME}: ${(err as Error).message}`);
  process.exit(2);
}

// Every address npm start listens on, checked before anything starts: later, the controller's restarts find
// Envoy's and the model servers' taken by design.
const busy = await busyPorts(startListeners(result.plan, manyModels));
if (busy.length > 0) {
  console.error(`${NAME}: cannot start:\n${busy.map((b) => `  ${b}`).join("\n")}\n${BUSY_PORT_ADVICE}`);
  process.exit(1);
}

// No farewell here: the controller process prints what its state file keeps as it stops.
const shutdown = installShutdown({ name: NAME, farewell: () => null });
const dataPlane = new OwnedDataPlane((code, signal, log) => {
  if (shutdown.stopping) return;
  // Stopped on purpose (SIGTERM or SIGINT to Envoy, or /quitquitquit: exit 0): a clean stop of the rest.
  const onPurpose = code === 0 || signal === "SIGTERM" || signal === "SIGINT";
  if (!onPurpose) console.error(`${NAME}: Envoy exited (${signal ?? `code ${code}`}); last log lines:\n${log.slice(-3000)}`);
  void shutdown.stop(onPurpose ? 0 : 1, `Envoy exited: ${signal ?? `code ${code}`}`);
});
const ownFile = fileURLToPath(import.meta.url);
const defaultEntry = ownFile.replace(/launcher(\.[jt]s)$/, `start${extname(ownFile)}`);
const supervisor = new ControllerSupervisor({
  entry: () => process.env[ENTRY_ENV] || defaultEntry,
  execArgv: process.execArgv,
  // `npm start`'s arguments, unchanged; but --fresh empties the state file at the first start only: a restarted
  // controller resumes what this run did.
  args: (start) => (start === 1 ? argv : argv.filter((arg) => arg !== "--fresh")),
  policy,
  events: {
    request: (message, reply) => dataPlane.handle(message, reply),
    firstStartFailed: (code, how) => void shutdown.stop(code, `the controller did not start (${how})`),
    stoppedOnPurpose: (how) => void shutdown.stop(0, how),
    log: (line) => console.error(`${NAME}: ${line}`),
  },
});
// One step: the controller first (it prints what its state file keeps), then the data plane.
shutdown.onStop(async () => {
  await supervisor.stop();
  await dataPlane.stop();
});
process.on("SIGUSR2", () => {
  if (!shutdown.stopping) void supervisor.restart("SIGUSR2");
});
if (!supervisor.diesWithParent)
  console.error(`${NAME}: warning: util-linux setpriv was not found: if this process is killed with SIGKILL, Envoy and the controller keep running`);
supervisor.start();
