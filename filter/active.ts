// The rollouts in force on this worker, as the data path uses them: each config with its metric ids (defined
// once per VM) and its identity fail-safe. The root context replaces the whole set on each config update.
import { RolloutConfig, RolloutTable } from "./config-model";
import { matchRollout } from "./routing";
import { IdentityFailsafe } from "./identity-failsafe";
import { FilterMetrics, RolloutMetrics } from "./stats";

export class ActiveRollout {
  identity: IdentityFailsafe;
  constructor(
    public config: RolloutConfig,
    public metrics: RolloutMetrics,
  ) {
    this.identity = new IdentityFailsafe(config, metrics.identity);
  }
}

/** The rollouts in force, with their configs in a parallel array for matching without allocation per request. */
export class ActiveSet {
  rollouts: Array<ActiveRollout> = [];
  configs: Array<RolloutConfig> = [];

  find(path: string): ActiveRollout | null {
    const match = matchRollout(this.configs, path);
    if (match === null) return null;
    for (let i = 0; i < this.rollouts.length; i++) if (this.rollouts[i].config === match) return this.rollouts[i];
    return null;
  }

  /** The set for a new table; identity fail-safes tripped in `previous` carry over where the rollout is unchanged. */
  static of(table: RolloutTable, previous: ActiveSet): ActiveSet {
    const next = new ActiveSet();
    for (let i = 0; i < table.rollouts.length; i++) {
      const r = table.rollouts[i];
      const active = new ActiveRollout(r, rolloutMetricsOfVm(r));
      for (let j = 0; j < previous.rollouts.length; j++) active.identity.carryFrom(previous.rollouts[j].identity);
      next.rollouts.push(active);
      next.configs.push(r);
    }
    return next;
  }
}

// Metric ids belong to the VM, not to one root context: Envoy keeps every definition for the VM's lifetime, and
// each pluginConfig change (Istio's ECDS push) configures a new root on the same VM. Defining the metrics again
// per root added Envoy-side entries on every update (measured with bench/ecds-memory.ts).
const vmRolloutMetrics = new Map<string, RolloutMetrics>();
let vmFilterMetrics: FilterMetrics | null = null;

export function filterMetricsOfVm(): FilterMetrics {
  let m = vmFilterMetrics;
  if (m === null) {
    m = new FilterMetrics();
    vmFilterMetrics = m;
  }
  return m;
}

/** Metrics are defined when a rollout (or its set of segments, outputs...) first appears, never on the request path. */
function rolloutMetricsOfVm(r: RolloutConfig): RolloutMetrics {
  const key = metricsKey(r);
  if (vmRolloutMetrics.has(key)) return vmRolloutMetrics.get(key);
  const m = new RolloutMetrics(r.name, r.segments, r.shadow !== null, r.output, r.models !== null);
  vmRolloutMetrics.set(key, m);
  return m;
}

/** Everything the set of defined metrics depends on. */
function metricsKey(r: RolloutConfig): string {
  let key =
    r.name +
    (r.shadow !== null ? "+shadow" : "") +
    (r.models !== null ? "+models" : "") +
    (r.output.analyze ? "+output:" + r.output.labels.join(",") + (r.output.schema !== null ? "+schema" : "") : "");
  for (let d = 0; d < r.segments.length; d++) key += "|" + r.segments[d].name + ":" + r.segments[d].values.join(",");
  return key;
}
