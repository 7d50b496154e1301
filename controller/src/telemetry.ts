import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RolloutStore } from "./rollouts/store.ts";

/**
 * The controller's own metrics, on a registry per app: several apps in one process (tests, or an
 * embedding program) would otherwise collide on prom-client's global registry.
 */
export class ControllerTelemetry {
  readonly registry = new Registry();
  readonly configPushes: Counter;
  readonly rollbacks: Counter;
  /** One per gate measurement the engine makes, by gate and result (Passed, Failed, Inconclusive, Error). */
  readonly gateEvaluations: Counter<"gate" | "result">;
  /** Wall time of one rollout's engine step, metric reads included. */
  readonly evaluationSeconds: Histogram;
  /** Wall time of one whole tick (every managed rollout stepped), on the leader. */
  readonly tickSeconds: Histogram;

  /** `heldPolls`: how many filter config long-polls are waiting now (filter-config/long-poll.ts). */
  constructor(store: RolloutStore, heldPolls: () => number) {
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
        this.set(heldPolls());
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
    new Gauge({
      name: "modelroll_rollouts_by_phase",
      help: "Rollouts by engine phase; manual rollouts (no stages or gates) count as Manual.",
      labelNames: ["phase"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const rollout of store.list()) this.inc({ phase: rollout.engine?.state.phase ?? "Manual" });
      },
    });
    this.gateEvaluations = new Counter({
      name: "modelroll_gate_evaluations_total",
      help: "Gate measurements made by the rollout engine, overall and per segment value, by result.",
      labelNames: ["gate", "result"],
      registers: [this.registry],
    });
    this.evaluationSeconds = new Histogram({
      name: "modelroll_engine_evaluation_seconds",
      help: "Time of one rollout's engine step, reading its metrics included.",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10],
      registers: [this.registry],
    });
    this.tickSeconds = new Histogram({
      name: "modelroll_engine_tick_seconds",
      help: "Time of one engine tick (every managed rollout stepped, reads included); ticks run on the leader only.",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [this.registry],
    });
    store.subscribe((event) => {
      if (event.type === "rolled-back") this.rollbacks.inc();
    });
  }

  /** This replica's role (kube/leadership.ts), read at scrape time: 1 while it leads, and the term it acts in or last saw. */
  watchLeadership(leadership: { isLeader(): boolean; readonly observedTerm: { term: number } | null }): void {
    new Gauge({
      name: "modelroll_leader",
      help: "1 while this replica is the leader (steps rollouts, sends notifications, pushes filter config), 0 on a follower.",
      registers: [this.registry],
      collect() {
        this.set(leadership.isLeader() ? 1 : 0);
      },
    });
    new Gauge({
      name: "modelroll_leader_term",
      help: "The newest leadership term this replica has seen in the Lease (-1 without election).",
      registers: [this.registry],
      collect() {
        this.set(leadership.observedTerm?.term ?? -1);
      },
    });
  }
}
