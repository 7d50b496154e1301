/**
 * Istio's way to the proxies as a config distributor: the rollouts go into the WasmPlugin's `pluginConfig` (the
 * filter's static `rollouts`, filter/config.ts), written through the Kubernetes API by server-side apply under
 * the controller's own field manager; istiod then pushes the new pluginConfig to every sidecar (ECDS).
 *
 * - Only `spec.pluginConfig.rollouts` and `.configVersion` (and an annotation with the version) are in the applied
 *   object, so the field manager owns nothing else: the module (`url`, `sha256`), the selector, the phase and
 *   the rest of pluginConfig stay with whoever created the WasmPlugin, and a weight change never makes a sidecar
 *   fetch the module again.
 * - Writes are coalesced: commits in one turn (many rollouts stepped in one tick) become one write; at most one
 *   write is in flight, and when it ends the newest config is written if it moved meanwhile (older ones are
 *   skipped, never written out of order).
 * - A failed write is retried with backoff (200 ms doubling to 10 s), logged and counted in /metrics; it never
 *   fails the commit that published the config (publish() only records it and returns).
 * - The WasmPlugin is never created: apply without `url` is refused by its schema, and the log says to create
 *   the WasmPlugin (with its module) first.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { ConfigDistributor } from "./distributor.ts";
import type { FilterConfig } from "./projection.ts";

/** The WasmPlugin resource as the Kubernetes API serves it. */
export const WASMPLUGIN_REF = { group: "extensions.istio.io", version: "v1alpha1", plural: "wasmplugins" } as const;
/** The controller's field manager in `metadata.managedFields`. */
export const FIELD_MANAGER = "modelroll-controller";
/** Annotation on the WasmPlugin: the controller's config version its pluginConfig holds. */
export const CONFIG_VERSION_ANNOTATION = "modelroll.io/config-version";

/** What the distributor needs of the Kubernetes client (kube/client.ts's KubeClient has it). */
export interface ApplyClient {
  patch(
    ref: { group: string; version: string; plural: string; namespace?: string },
    name: string,
    body: unknown,
    options: { type?: "apply"; fieldManager?: string; force?: boolean },
  ): Promise<{ metadata: { resourceVersion?: string } }>;
}

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface WasmPluginDistributorOptions {
  client: ApplyClient;
  namespace: string;
  name: string;
  fieldManager?: string;
  log?: Logger;
  /** First retry delay; doubles per failure up to `maxBackoffMs`. Default 200 ms. */
  backoffMs?: number;
  /** Default 10 000 ms. */
  maxBackoffMs?: number;
}

/**
 * The pluginConfig the controller owns: the filter's static rollout table (filter/config.ts parses it) and the
 * config version it is, which the filter reports like a polled one (the stage window waits for it).
 */
export function pluginConfigOf(config: FilterConfig): { configVersion: number; rollouts: FilterConfig["rollouts"] } {
  return { configVersion: config.version, rollouts: config.rollouts };
}

/** The object applied: nothing but what the field manager should own. */
export function appliedObject(namespace: string, name: string, config: FilterConfig): Record<string, unknown> {
  return {
    apiVersion: `${WASMPLUGIN_REF.group}/${WASMPLUGIN_REF.version}`,
    kind: "WasmPlugin",
    metadata: { name, namespace, annotations: { [CONFIG_VERSION_ANNOTATION]: String(config.version) } },
    spec: { pluginConfig: pluginConfigOf(config) },
  };
}

type WriteState = "idle" | "waiting" | "writing" | "backoff" | "closed";

export class WasmPluginDistributor implements ConfigDistributor {
  readonly kind = "istiod";
  readonly #client: ApplyClient;
  readonly #ref: { group: string; version: string; plural: string; namespace: string };
  readonly #name: string;
  readonly #fieldManager: string;
  readonly #log: Logger | undefined;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  #latest: FilterConfig | null = null;
  #written: FilterConfig | null = null;
  #state: WriteState = "idle";
  #timer: NodeJS.Timeout | null = null;
  #failures = 0;
  #lastError: string | null = null;
  #writes = 0;
  #waiters: Array<() => void> = [];
  #metrics: { writes: Counter<"result"> } | null = null;

  constructor(options: WasmPluginDistributorOptions) {
    this.#client = options.client;
    this.#ref = { ...WASMPLUGIN_REF, namespace: options.namespace };
    this.#name = options.name;
    this.#fieldManager = options.fieldManager ?? FIELD_MANAGER;
    this.#log = options.log;
    this.#backoffMs = options.backoffMs ?? 200;
    this.#maxBackoffMs = options.maxBackoffMs ?? 10_000;
  }

  /** "ns/name", as logs and errors name it. */
  get target(): string {
    return `${this.#ref.namespace}/${this.#name}`;
  }

  publish(config: FilterConfig): void {
    if (this.#state === "closed") return;
    this.#latest = config;
    // Writing or waiting for a retry: that write takes the newest config when it starts.
    if (this.#state !== "idle") return;
    this.#state = "waiting";
    // The rest of this turn's commits (a tick stepping many rollouts) join the same write.
    this.#timer = setTimeout(() => this.#write(), 0);
  }

  /** The config version last written, or null before the first write succeeded. */
  get writtenVersion(): number | null {
    return this.#written?.version ?? null;
  }

  /** Successful writes so far (a test counts coalescing with it). */
  get writes(): number {
    return this.#writes;
  }

  /** Consecutive failed writes, and the last one's reason (null once a write succeeds). */
  get failure(): { count: number; error: string | null } {
    return { count: this.#failures, error: this.#lastError };
  }

  /** Resolves once the newest published config is written (or the distributor is closed). */
  settled(): Promise<void> {
    if (this.#isSettled()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  registerMetrics(registry: Registry): void {
    const writes = new Counter({
      name: "modelroll_wasmplugin_writes_total",
      help: "Server-side applies of the rollouts into the WasmPlugin's pluginConfig, by result (ok, error).",
      labelNames: ["result"],
      registers: [registry],
    });
    this.#metrics = { writes };
    const self = this;
    new Gauge({
      name: "modelroll_wasmplugin_written_version",
      help: "The filter config version last written into the WasmPlugin (-1: none yet).",
      registers: [registry],
      collect() {
        this.set(self.writtenVersion ?? -1);
      },
    });
    new Gauge({
      name: "modelroll_wasmplugin_write_failures",
      help: "Consecutive failed WasmPlugin writes (0: the last one succeeded); retried with backoff.",
      registers: [registry],
      collect() {
        this.set(self.#failures);
      },
    });
    new Gauge({
      name: "modelroll_wasmplugin_write_pending",
      help: "1 while a published config is not yet written into the WasmPlugin.",
      registers: [registry],
      collect() {
        this.set(self.#isSettled() ? 0 : 1);
      },
    });
  }

  close(): void {
    this.#state = "closed";
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#wake();
  }

  #isSettled(): boolean {
    return this.#state === "closed" || this.#latest === null || this.#latest === this.#written;
  }

  #wake(): void {
    if (!this.#isSettled()) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }

  #write(): void {
    this.#timer = null;
    const config = this.#latest;
    if (this.#state === "closed" || config === null) return;
    if (config === this.#written) {
      this.#state = "idle";
      this.#wake();
      return;
    }
    this.#state = "writing";
    const body = appliedObject(this.#ref.namespace, this.#name, config);
    this.#client.patch(this.#ref, this.#name, body, { type: "apply", fieldManager: this.#fieldManager, force: true }).then(
      () => this.#succeeded(config),
      (error: unknown) => this.#failed(config, error),
    );
  }

  #succeeded(config: FilterConfig): void {
    this.#writes++;
    this.#metrics?.writes.inc({ result: "ok" });
    if (this.#failures > 0)
      this.#log?.info({ wasmplugin: this.target, version: config.version, after: this.#failures }, "wasmplugin: written again after failures");
    this.#failures = 0;
    this.#lastError = null;
    this.#written = config;
    if (this.#state === "closed") {
      this.#wake();
      return;
    }
    if (this.#latest !== config) {
      // Newer commits came while this one was in flight: the newest goes now, as one write.
      this.#write();
      return;
    }
    this.#state = "idle";
    this.#wake();
  }

  #failed(config: FilterConfig, error: unknown): void {
    this.#failures++;
    this.#metrics?.writes.inc({ result: "error" });
    this.#lastError = describeWriteError(this.target, error);
    const delay = Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** (this.#failures - 1));
    this.#log?.warn(
      { wasmplugin: this.target, version: config.version, failures: this.#failures, retryInMs: delay, reason: this.#lastError },
      "wasmplugin: write failed; the filters keep their last config; retrying",
    );
    if (this.#state === "closed") {
      this.#wake();
      return;
    }
    this.#state = "backoff";
    this.#timer = setTimeout(() => this.#write(), delay);
  }
}

/** A failed apply in words an operator acts on. */
export function describeWriteError(target: string, error: unknown): string {
  const e = error as { status?: number; reason?: string; message?: string; causes?: Array<{ field?: string }> };
  if (e.status === 422 && (e.causes ?? []).some((c) => c.field === "spec.url")) {
    return `wasmplugin ${target} does not exist: the controller writes only its pluginConfig; create it with its module (url, sha256) first`;
  }
  if (e.status === 403)
    return `wasmplugin ${target}: the controller may not patch it (${e.message ?? "forbidden"}); grant patch on wasmplugins.extensions.istio.io`;
  if (e.status === 404) return `wasmplugin ${target}: the API has no WasmPlugin resource here (is Istio's CRD installed?): ${e.message ?? "not found"}`;
  if (e.status === 0 || e.status === 503) return `wasmplugin ${target}: the Kubernetes API is unreachable (${e.message ?? "no answer"})`;
  return `wasmplugin ${target}: ${e.reason ? `${e.reason}: ` : ""}${e.message ?? String(error)}`;
}
