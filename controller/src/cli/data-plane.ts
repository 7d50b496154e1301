/**
 * Where `npm start`'s controller gets its data plane (the demo model servers and Envoy). Run by the launcher
 * (`npm start`, cli/launcher.ts), it asks the launcher over the IPC channel: the launcher owns them, so they keep
 * serving while this controller process crashes, restarts or is replaced by a new build, and a restarted
 * controller is handed the Envoy that is already running instead of starting one. Run on its own
 * (`node controller/dist/cli/start.js`), this process starts and owns them, as before the launcher.
 */
import { type DemoKind, startDemoModel } from "../demo/start-demo.ts";
import { startEnvoy } from "../envoy/process.ts";

/** What start.ts asks for: a demo model server on host:port answering as `version`. */
export interface ModelServerRequest {
  version: string;
  host: string;
  port: number;
  /** Which demo model (npm start --demo); absent: the classifier. */
  kind?: DemoKind;
}

/** What start.ts asks for: Envoy with this bootstrap, its admin on 127.0.0.1:adminPort. */
export interface EnvoyRequest {
  bootstrapYaml: string;
  adminPort: number;
  concurrency: number;
}

export interface EnvoyHandle {
  pid: number;
  /** True when Envoy gets SIGTERM from the kernel if its owner dies, even by SIGKILL (setpriv --pdeathsig). */
  diesWithParent: boolean;
  /** True when this Envoy was already serving before this controller process started (a restart under the launcher). */
  reused: boolean;
  /** Only when reused: the bootstrap asked for now differs from the one the running Envoy was started with. */
  bootstrapDiffers: boolean;
}

/** The launcher that owns the data plane, as the controller process it started sees it. */
export interface Launcher {
  pid: number;
  /** 1 for the first controller process the launcher started, 2 for the next (after a crash or a restart), ... */
  start: number;
}

export interface DataPlane {
  modelServer(request: ModelServerRequest): Promise<{ url: string }>;
  envoy(request: EnvoyRequest): Promise<EnvoyHandle>;
  /** Tells the owner the controller is up, before it says so (the launcher counts a start as done from here). */
  running(): void;
}

/** The messages of the IPC channel between the launcher and its controller process (version 1). */
export type ToLauncher =
  | { kind: "model-server"; id: number; request: ModelServerRequest }
  | { kind: "envoy"; id: number; request: EnvoyRequest }
  | { kind: "running" };
export type FromLauncher = { kind: "reply"; id: number; ok: true; url?: string; envoy?: EnvoyHandle } | { kind: "reply"; id: number; ok: false; error: string };

/** The environment variables the launcher sets for its controller process. */
export const LAUNCHER_PID_ENV = "MODELROLL_LAUNCHER_PID";
export const LAUNCHER_START_ENV = "MODELROLL_LAUNCHER_START";

/** The launcher this process was started by (its pid in the environment and an IPC channel), or null. */
export function launcherOf(proc: NodeJS.Process = process): Launcher | null {
  const pid = Number(proc.env[LAUNCHER_PID_ENV]);
  if (!Number.isInteger(pid) || pid <= 0 || typeof proc.send !== "function") return null;
  const start = Number(proc.env[LAUNCHER_START_ENV] ?? "1");
  return { pid, start: Number.isInteger(start) && start > 0 ? start : 1 };
}

/** Asks the launcher over the IPC channel; each request is answered once, matched by id. */
export function launcherDataPlane(proc: NodeJS.Process = process): DataPlane {
  let nextId = 0;
  const waiting = new Map<number, { resolve: (m: FromLauncher) => void; reject: (e: Error) => void }>();
  proc.on("message", (message: FromLauncher) => {
    if (message?.kind !== "reply") return;
    waiting.get(message.id)?.resolve(message);
    waiting.delete(message.id);
  });
  proc.on("disconnect", () => {
    for (const w of waiting.values()) w.reject(new Error("the launcher closed the channel (it is stopping)"));
    waiting.clear();
  });
  const ask = (message: ToLauncher & { id: number }): Promise<FromLauncher> =>
    new Promise((resolve, reject) => {
      waiting.set(message.id, { resolve, reject });
      proc.send?.(message);
    });
  const answer = async (message: ToLauncher & { id: number }) => {
    const reply = await ask(message);
    if (!reply.ok) throw new Error(reply.error);
    return reply;
  };
  return {
    async modelServer(request) {
      const reply = await answer({ kind: "model-server", id: ++nextId, request });
      return { url: reply.url ?? `http://${request.host}:${request.port}` };
    },
    async envoy(request) {
      const reply = await answer({ kind: "envoy", id: ++nextId, request });
      if (!reply.envoy) throw new Error("the launcher answered without Envoy's pid");
      return reply.envoy;
    },
    running: () => void proc.send?.({ kind: "running" } satisfies ToLauncher),
  };
}

/** How an owned Envoy's end is handled: a stop of everything, with the reason. */
interface LocalOwner {
  onStop(step: () => Promise<void>): void;
  stop(code: number, why: string): Promise<never>;
  readonly stopping: boolean;
}

/**
 * This process starts and owns them: stopped with it; Envoy ends with it even on SIGKILL (parent-death
 * signal), and an Envoy that exits on its own stops this process (0 when stopped on purpose, else 1).
 */
export function localDataPlane(owner: LocalOwner, name: string): DataPlane {
  return {
    async modelServer(request) {
      const server = await startDemoModel(request);
      owner.onStop(() => server.close());
      return { url: server.url };
    },
    async envoy(request) {
      const envoy = await startEnvoy(request);
      owner.onStop(() => envoy.stop());
      envoy.child.on("exit", (code, signal) => {
        if (owner.stopping) return;
        // Stopped on purpose (someone sent Envoy SIGTERM or SIGINT, or /quitquitquit; Envoy then exits with 0): a
        // clean stop of the rest. Anything else is a crash.
        const onPurpose = code === 0 || signal === "SIGTERM" || signal === "SIGINT";
        if (!onPurpose) console.error(`${name}: Envoy exited (${signal ?? `code ${code}`}); last log lines:\n${envoy.log().slice(-3000)}`);
        void owner.stop(onPurpose ? 0 : 1, `Envoy (pid ${envoy.child.pid}) exited: ${signal ?? `code ${code}`}`);
      });
      return { pid: envoy.child.pid ?? 0, diesWithParent: envoy.diesWithParent, reused: false, bootstrapDiffers: false };
    },
    running: () => undefined,
  };
}
