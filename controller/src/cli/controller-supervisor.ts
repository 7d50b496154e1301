/**
 * The launcher's controller process: started with an IPC channel (the data plane's requests come over it) and a
 * parent-death signal (the kernel sends it SIGTERM when the launcher dies, even by SIGKILL); started again after a
 * crash, by the restart policy; restarted on request (an upgrade: the entry is read from disk again); stopped last
 * thing but one, before the data plane. Which exit is which:
 * - asked for (restart or stop): expected, nothing more;
 * - before the first controller ever said it was running: start-up failed, the launcher stops with its code;
 * - code 0 otherwise: it was stopped on purpose (a signal to it): the launcher stops everything, as before;
 * - anything else (a signal such as SIGKILL, a non-zero code): a crash, restarted by the policy.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { setprivForParentDeath } from "../child-process.ts";
import { type FromLauncher, LAUNCHER_PID_ENV, LAUNCHER_START_ENV, type ToLauncher } from "./data-plane.ts";
import { afterCrash, type RestartPolicy } from "./restart-policy.ts";

interface SupervisorEvents {
  /** A data-plane request from the controller process; `reply` answers that process. */
  request(message: Exclude<ToLauncher, { kind: "running" }>, reply: (answer: FromLauncher) => void): void;
  /** The first controller process ended before it was running: stop everything with `code`. */
  firstStartFailed(code: number, how: string): void;
  /** A controller process exited with 0 unasked (someone stopped it): stop everything. */
  stoppedOnPurpose(how: string): void;
  /** A line for the operator (stderr). */
  log(line: string): void;
}

interface SupervisorOptions {
  /** The controller's entry (start.js), read again at every start. */
  entry: () => string;
  /** Node's own flags for the controller process (--enable-source-maps, a loader). */
  execArgv: string[];
  /** The arguments of the controller process's `start`th start (1 = the first). */
  args: (start: number) => string[];
  policy: RestartPolicy;
  events: SupervisorEvents;
  /** After SIGTERM, SIGKILL once this has passed. */
  killAfterMs?: number;
}

interface Current {
  child: ChildProcess;
  start: number;
  /** When it said it was running; null before. */
  runningSince: number | null;
  /** Its exit was asked for (a restart): not a crash. */
  expected: boolean;
  exited: Promise<void>;
}

export class ControllerSupervisor {
  readonly #options: SupervisorOptions;
  #current: Current | null = null;
  #starts = 0;
  #crashesInARow = 0;
  #everRunning = false;
  #stopping = false;
  #timer: NodeJS.Timeout | null = null;
  /** True once the policy gave up restarting (until a restart by hand). */
  gaveUp = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
  }

  /** The controller process's pid, or null while none runs (between a crash and its restart). */
  get pid(): number | null {
    return this.#current?.child.pid ?? null;
  }

  /** True while a controller process runs and has said it is running. */
  get running(): boolean {
    return (this.#current?.runningSince ?? null) !== null;
  }

  get starts(): number {
    return this.#starts;
  }

  /** True when the parent-death signal ties controller processes to this one (util-linux setpriv found). */
  get diesWithParent(): boolean {
    return setprivForParentDeath() !== null;
  }

  start(): void {
    if (this.#stopping || this.#current) return;
    const start = ++this.#starts;
    const wrapper = setprivForParentDeath();
    const command = [process.execPath, ...this.#options.execArgv, this.#options.entry(), ...this.#options.args(start)];
    const env = { ...process.env, [LAUNCHER_PID_ENV]: String(process.pid), [LAUNCHER_START_ENV]: String(start) };
    const stdio: ["ignore", "inherit", "inherit", "ipc"] = ["ignore", "inherit", "inherit", "ipc"];
    const child = wrapper
      ? spawn(wrapper, ["--pdeathsig", "TERM", "--", ...command], { stdio, env })
      : spawn(command[0] as string, command.slice(1), { stdio, env });
    let resolveExit: () => void = () => undefined;
    const exited = new Promise<void>((resolve) => {
      resolveExit = resolve;
    });
    const current: Current = { child, start, runningSince: null, expected: false, exited };
    this.#current = current;
    child.on("message", (message: ToLauncher) => {
      if (message?.kind === "running") {
        current.runningSince = Date.now();
        this.#everRunning = true;
        return;
      }
      if (message?.kind === "model-server" || message?.kind === "envoy")
        this.#options.events.request(message, (answer) => {
          if (child.connected) child.send(answer);
        });
    });
    let ended = false;
    const onEnd = (code: number | null, signal: NodeJS.Signals | null, failure?: string) => {
      if (ended) return;
      ended = true;
      resolveExit();
      this.#ended(current, code, failure ?? (signal ? `signal ${signal}` : `code ${code}`));
    };
    child.on("exit", (code, signal) => onEnd(code, signal));
    // A spawn failure (ENOENT, EACCES) comes as an event and without an exit.
    child.on("error", (error) => {
      if (child.pid === undefined) onEnd(null, null, `spawn failed: ${error.message}`);
    });
  }

  /** Stops the running controller process and starts a new one from the entry as it is now on disk. */
  async restart(why: string): Promise<void> {
    if (this.#stopping) return;
    this.#clearTimer();
    this.#crashesInARow = 0;
    this.gaveUp = false;
    const current = this.#current;
    if (!current) {
      this.#options.events.log(`starting the controller (${why})`);
      this.start();
      return;
    }
    this.#options.events.log(`restarting the controller, pid ${current.child.pid} (${why}); the data plane keeps serving`);
    current.expected = true;
    await this.#terminate(current);
  }

  /** Stops the controller process (SIGTERM, then SIGKILL) and never starts another. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#clearTimer();
    const current = this.#current;
    if (current) await this.#terminate(current);
  }

  async #terminate(current: Current): Promise<void> {
    current.child.kill("SIGTERM");
    const killer = setTimeout(() => current.child.kill("SIGKILL"), this.#options.killAfterMs ?? 10_000);
    await current.exited;
    clearTimeout(killer);
  }

  #ended(current: Current, code: number | null, how: string): void {
    if (this.#current === current) this.#current = null;
    if (this.#stopping) return;
    const { events, policy } = this.#options;
    if (current.expected) {
      this.start();
      return;
    }
    if (!this.#everRunning) {
      events.firstStartFailed(code !== null && code !== 0 ? code : 1, how);
      return;
    }
    if (code === 0) {
      events.stoppedOnPurpose(`the controller (pid ${current.child.pid}) exited: ${how}`);
      return;
    }
    const ranForMs = current.runningSince === null ? null : Date.now() - current.runningSince;
    const next = afterCrash(policy, this.#crashesInARow, ranForMs);
    this.#crashesInARow = next.crashesInARow;
    const what = `the controller (pid ${current.child.pid}) ${current.runningSince === null ? "failed to start" : "crashed"} (${how})`;
    if ("giveUp" in next) {
      this.gaveUp = true;
      events.log(
        `${what}: ${next.crashesInARow === 1 ? "once" : `${next.crashesInARow} times in a row`}, so it is not started again. Envoy keeps serving on the last config it got. ` +
          `Fix the cause, then 'kill -USR2 ${process.pid}' starts it again; Ctrl-C or 'kill ${process.pid}' stops everything.`,
      );
      return;
    }
    events.log(`${what}; the data plane keeps serving on its last config; restarting it in ${next.restartInMs} ms (crash ${next.crashesInARow} in a row)`);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.start();
    }, next.restartInMs);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
