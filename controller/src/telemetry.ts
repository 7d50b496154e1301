import { Counter, Gauge, Registry } from "prom-client";
import type { RolloutStore } from "./rollouts/store.ts";

/**
 * The controller's own metrics, on a registry per app: several apps in one process (tests, or an
 * embedding program) would otherwise collide on prom-client's global registry.
 */
export class ControllerTelemetry {
  readonly registry = new Registry();
  readonly configPushes: Counter;
  readonly rollbacks: Counter;

  constructor(store: RolloutStore) {
    this.configPushes = new Counter({
      name: "modelroll_config_pushes_total",
      help: "Filter config answers sent with a body (200), immediate or released from a held poll.",
      registers: [this.registry],
    });
    this.rollbacks = new Counter({
      name: "modelroll_rollbacks_total",
      help: "Rollbacks requested, including those of a canary that already had no traffic.",
      registers: [this.registry],
    });
    // Gauges read the store at scrape time, so no code path can forget to update them.
    new Gauge({
      name: "modelroll_config_polls_held",
      help: "Filter config long-polls currently waiting for a change.",
      registers: [this.registry],
      collect() {
        this.set(store.changes.held);
      },
    });
    new Gauge({
      name: "modelroll_config_version",
      help: "Current filter config version.",
      registers: [this.registry],
      collect() {
        this.set(store.version);
      },
    });
    new Gauge({
      name: "modelroll_rollouts",
      help: "Rollouts the controller knows.",
      registers: [this.registry],
      collect() {
        this.set(store.size);
      },
    });
    store.subscribe((event) => {
      if (event.type === "rolled-back") this.rollbacks.inc();
    });
  }
}
