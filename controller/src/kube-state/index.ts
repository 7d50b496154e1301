/**
 * Kubernetes mode as buildApp wires it: open (list what the API server holds), the persistence the store
 * writes through, then attach (the REST hooks, and on ready the watch and a first reconcile of everything).
 */
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { Gauge, type Registry } from "prom-client";
import type { KubeClient } from "../kube/client.ts";
import type { RolloutPersistence } from "../rollouts/persistence.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { installKubeWriteHooks } from "./hooks.ts";
import { KubePersistence } from "./persistence.ts";
import { Reconciler, type ReconcileOptions } from "./reconcile.ts";
import { KubeSync } from "./sync.ts";

export interface KubeStateOptions {
  client: KubeClient;
  namespace: string;
  log?: FastifyBaseLogger;
  /** Evaluation-only status refreshes at most this often per rollout (default 30 000 ms). */
  statusEveryMs?: number;
  /** Whether this replica acts on kubectl's changes (the leader); default always. */
  acting?: () => boolean;
}

export interface KubeState {
  sync: KubeSync;
  reconciler: Reconciler | null;
  persistence(inner: RolloutPersistence): RolloutPersistence;
  attach(app: FastifyInstance, store: RolloutStore, options?: Pick<ReconcileOptions, "statsBaseline"> & { registry?: Registry }): void;
  stop(): Promise<void>;
  close(): void;
}

export async function openKubeState(options: KubeStateOptions & { log: FastifyBaseLogger; clock?: () => Date }): Promise<KubeState> {
  const sync = new KubeSync({
    client: options.client,
    namespace: options.namespace,
    log: options.log,
    clock: options.clock,
    statusEveryMs: options.statusEveryMs,
  });
  let initial: Awaited<ReturnType<KubeSync["load"]>>;
  try {
    initial = await sync.load();
  } catch (error) {
    options.client.close();
    throw new Error(
      `Kubernetes mode: cannot list ModelRollouts in namespace ${options.namespace} (is the CRD deploy/istio/modelrollouts.crd.yaml applied?): ${(error as Error).message}`,
      { cause: error },
    );
  }
  let stopped = false;
  const state: KubeState = {
    sync,
    reconciler: null,
    persistence: (inner) => new KubePersistence(inner, initial, sync),
    attach(app, store, reconcile = {}) {
      sync.attach(store);
      const reconciler = new Reconciler(sync, { statsBaseline: reconcile.statsBaseline, acting: options.acting });
      state.reconciler = reconciler;
      sync.onObject = (object) => void reconciler.reconcile(object.metadata.name);
      installKubeWriteHooks(app, sync);
      if (reconcile.registry) {
        // What reached the API server, by kind: objects created, specs, statuses, decision chunks; refused; status refreshes deferred.
        new Gauge({
          name: "modelroll_kube_writes",
          help: "Writes to the Kubernetes API since start, by kind (object, spec, status, chunk), refused writes, and evaluation-only status refreshes deferred.",
          labelNames: ["kind"],
          registers: [reconcile.registry],
          collect() {
            const c = sync.counts;
            for (const [kind, value] of Object.entries({
              object: c.objects,
              spec: c.specs,
              status: c.statuses,
              chunk: c.chunks,
              refused: c.refused,
              deferred: c.deferred,
            }))
              this.set({ kind }, value);
          },
        });
      }
      app.addHook("onReady", async () => {
        sync.start();
        await reconciler.all();
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await sync.stop();
      options.client.close();
    },
    close: () => options.client.close(),
  };
  return state;
}
