/**
 * The launcher's side of cli/data-plane.ts: the demo model servers (in the launcher's own process) and Envoy (its
 * child, with the parent-death signal tied to the launcher), started on the first controller's request and handed
 * to every later controller process as they are. Their lives hang on the launcher's, not on a controller's.
 */
import { type RunningDemoModel, startDemoModel } from "../demo/start-demo.ts";
import { type EnvoyProcess, startEnvoy } from "../envoy/process.ts";
import type { EnvoyHandle, EnvoyRequest, FromLauncher, ModelServerRequest, ToLauncher } from "./data-plane.ts";

interface OwnedEnvoy {
  process: EnvoyProcess;
  bootstrapYaml: string;
}

export class OwnedDataPlane {
  readonly #models = new Map<string, Promise<RunningDemoModel>>();
  #envoy: Promise<OwnedEnvoy> | null = null;
  readonly #onEnvoyExit: (code: number | null, signal: NodeJS.Signals | null, log: string) => void;

  /** `onEnvoyExit`: Envoy ended by itself (not by stop()). */
  constructor(onEnvoyExit: (code: number | null, signal: NodeJS.Signals | null, log: string) => void) {
    this.#onEnvoyExit = onEnvoyExit;
  }

  #stopped = false;

  /** Envoy's pid once it runs. */
  envoyPid: number | null = null;

  /** Answers one request of a controller process. */
  handle(message: Exclude<ToLauncher, { kind: "running" }>, reply: (answer: FromLauncher) => void): void {
    const answer =
      message.kind === "model-server"
        ? this.#modelServer(message.request).then((url) => ({ url }))
        : this.#envoyFor(message.request).then((envoy) => ({ envoy }));
    answer.then(
      (fields) => reply({ kind: "reply", id: message.id, ok: true, ...fields }),
      (error: Error) => reply({ kind: "reply", id: message.id, ok: false, error: error.message }),
    );
  }

  async #modelServer(request: ModelServerRequest): Promise<string> {
    const key = `${request.host}:${request.port}`;
    let server = this.#models.get(key);
    if (!server) {
      server = startDemoModel(request);
      this.#models.set(key, server);
      // A failed start is not kept: the next controller may try again.
      server.catch(() => this.#models.delete(key));
    }
    return (await server).url;
  }

  async #envoyFor(request: EnvoyRequest): Promise<EnvoyHandle> {
    if (this.#stopped) throw new Error("the launcher is stopping");
    const reused = this.#envoy !== null;
    if (!this.#envoy) {
      const starting = this.#startEnvoy(request);
      this.#envoy = starting;
      starting.catch(() => {
        if (this.#envoy === starting) this.#envoy = null;
      });
    }
    const envoy = await this.#envoy;
    return {
      pid: envoy.process.child.pid ?? 0,
      diesWithParent: envoy.process.diesWithParent,
      reused,
      bootstrapDiffers: reused && envoy.bootstrapYaml !== request.bootstrapYaml,
    };
  }

  async #startEnvoy(request: EnvoyRequest): Promise<OwnedEnvoy> {
    const process = await startEnvoy(request);
    this.envoyPid = process.child.pid ?? null;
    process.child.on("exit", (code, signal) => {
      if (!this.#stopped) this.#onEnvoyExit(code, signal, process.log());
    });
    return { process, bootstrapYaml: request.bootstrapYaml };
  }

  /** Envoy first (SIGTERM, SIGKILL after 5 s), then the model servers. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const envoy = await this.#envoy?.catch(() => null);
    await envoy?.process.stop();
    for (const server of this.#models.values()) await (await server.catch(() => null))?.close();
  }
}
