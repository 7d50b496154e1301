/**
 * How the two commands end: on SIGINT, SIGTERM or SIGHUP (Ctrl-C, `kill`, `docker stop`, a closed terminal),
 * and when the npm process that ran them is gone, everything started is stopped in reverse order and the
 * command says what its state file keeps. A second signal while stopping (more than 2 s after the first) ends
 * the process at once (its Envoy still gets the parent-death signal).
 */
import type { RolloutStore } from "../rollouts/store.ts";
import { LAUNCHER_PID_ENV } from "./data-plane.ts";

interface Shutdown {
  /** Registers a stop step; steps run last-registered first. */
  onStop(step: () => Promise<void>): void;
  /** Stops everything once, prints `farewell()`'s lines, and exits with `code`. */
  stop(code: number, why: string): Promise<never>;
  readonly stopping: boolean;
}

interface ShutdownOptions {
  /** Message prefix: "modelroll start". */
  name: string;
  /** Lines printed after everything stopped (what was saved); null prints nothing more. */
  farewell: () => string | null;
  /** How often to check that the parent npm process is still there. */
  parentCheckMs?: number;
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
/** A repeated signal within this time is the same request delivered twice, not an impatient second one. */
const REPEAT_GRACE_MS = 2000;

export function installShutdown(options: ShutdownOptions): Shutdown {
  const steps: Array<() => Promise<void>> = [];
  let stopping = false;
  let stoppingSince = 0;
  const shutdown: Shutdown = {
    onStop: (step) => void steps.push(step),
    get stopping() {
      return stopping;
    },
    async stop(code, why) {
      if (stopping) return new Promise<never>(() => undefined);
      stopping = true;
      stoppingSince = Date.now();
      if (steps.length > 0) console.error(`${options.name}: stopping (${why})`);
      for (const step of steps.reverse()) await step().catch((error) => console.error(`${options.name}: while stopping: ${(error as Error).message}`));
      const farewell = options.farewell();
      if (farewell) console.log(farewell);
      process.exit(code);
    },
  };
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      if (stopping) {
        // Ctrl-C in a terminal reaches this process twice, from the terminal (the whole foreground group) and
        // forwarded by npm, and Envoy's own exit on it may have started the stop already. Only a signal well
        // after the stop began means "stop waiting".
        if (Date.now() - stoppingSince < REPEAT_GRACE_MS) return;
        console.error(`${options.name}: ${signal} again: exiting now`);
        process.exit(1);
      }
      void shutdown.stop(0, signal);
    });
  }
  watchNpmParent(shutdown, options.parentCheckMs ?? 500);
  return shutdown;
}

/**
 * Run by npm (`npm start`, `npm run controller`), this process is npm's child (the scripts `exec` node, so no
 * shell sits between them). npm forwards SIGINT and SIGTERM; if npm itself is killed (SIGKILL) or a shell
 * that npm's config put in between dies, this process is re-parented: that ends it too, as its user expects
 * of a command they started with npm. The controller process of `npm start`'s launcher watches the launcher the
 * same way (besides its parent-death signal). Started any other way (nohup, a service manager) nothing is watched.
 */
function watchNpmParent(shutdown: Shutdown, everyMs: number): void {
  if (process.env.npm_lifecycle_event === undefined && process.env[LAUNCHER_PID_ENV] === undefined) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      void shutdown.stop(0, `its parent process ${parent} (${process.env[LAUNCHER_PID_ENV] === String(parent) ? "the launcher" : "npm"}) is gone`);
    }
  }, everyMs);
  timer.unref();
}

/**
 * What the state file keeps, for the last lines a command prints: "state saved in FILE: 2 rollouts
 * (fraud-model: canary 5%, ...)". Read from the store's memory, which equals what was written.
 */
export function describeSaved(store: RolloutStore, stateFile: string): string {
  if (stateFile === ":memory:") return "nothing saved (state in memory only)";
  const rollouts = store.list();
  const list = rollouts.map((r) => {
    const phase = r.engine ? `, ${r.engine.state.phase}` : "";
    return `  ${r.spec.name}: canary ${r.canaryPercent}%${r.shadowPercent > 0 ? `, shadow ${r.shadowPercent}%` : ""}${phase}`;
  });
  const count = rollouts.length === 1 ? "1 rollout" : `${rollouts.length} rollouts`;
  return [
    `state saved in ${stateFile}: ${count}, config version ${store.version}${rollouts.length > 0 ? ":" : ""}`,
    ...list,
    "the next start resumes it (--fresh starts empty)",
  ].join("\n");
}
