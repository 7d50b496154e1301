// The rollouts in force on this worker, as the data path uses them: each config with its metric ids (defined
// once per VM) and its identity fail-safe. The root context replaces the whole set on each config update.
import { incrementMetric } from "./sdk/host";
import { RolloutConfig, RolloutTable } from "./config-model";
import { matchRollout } from "./routing";
import { IdentityFailsafe } from "./identity-failsafe";
import { FilterMetrics, RolloutMetrics } from "./stats";
import { MODEL_ROUTE_TOO_LARGE, ModelRouteMetrics } from "./model-route";

export class ActiveRollout {
  identity: IdentityFailsafe;
  constructor(
    public config: RolloutConfig,
    public metrics: RolloutMetrics,
  ) {
    this.identity = new IdentityFailsafe(config, metrics.identity);
  }

  /** Whether a request body of this size is within the rollout's model limit; counted as too large when not. */
  fitsModelBody(size: u32): bool {
    const model = this.config.model;
    if (model === null || size <= model.maxBodyBytes) return true;
    const m = this.metrics.modelRoute;
    if (m !== null) incrementMetric(m.failOpen[MODEL_ROUTE_TOO_LARGE]);
    return false;
  }
}

/**
 * The rollouts on one path prefix: at most one without a model (the path's own), and any number chosen by the
 * request body's model (model-route.ts). Built once per config, never per request.
 */
export class PathGroup {
  /** The rollout without a model match: it takes the path's requests no model rollout takes. */
  fallback: ActiveRollout | null = null;
  byModel: Array<ActiveRollout> = [];
  /** The largest body any of byModel holds to read the model. */
  maxBodyBytes: u32 = 0;

  /** The model rollout matching the requested model, or null. */
  forModel(name: string): ActiveRollout | null {
    for (let i = 0; i < this.byModel.length; i++) {
      const m = this.byModel[i].config.model;
      if (m !== null && m.name == name) return this.byModel[i];
    }
    return null;
  }

  /** Counts a request of this path the model rollouts could not judge (MODEL_ROUTE_*) on each of them. */
  failOpen(reason: i32): void {
    for (let i = 0; i < this.byModel.length; i++) {
      const m = this.byModel[i].metrics.modelRoute;
      if (m !== null) incrementMetric(m.failOpen[reason]);
    }
  }
}

/** The rollouts in force, with their configs in a parallel array for matching without allocation per request. */
export class ActiveSet {
  rollouts: Array<ActiveRollout> = [];
  configs: Array<RolloutConfig> = [];
  groups: Map<string, PathGroup> = new Map();

  find(path: string): ActiveRollout | null {
    const match = matchRollout(this.configs, path);
    if (match === null) return null;
    for (let i = 0; i < this.rollouts.length; i++) if (this.rollouts[i].config === match) return this.rollouts[i];
    return null;
  }

  /** The rollouts of the longest path prefix matching `path`, or null when none matches. */
  group(path: string): PathGroup | null {
    const match = matchRollout(this.configs, path);
    if (match === null) return null;
    return this.groups.get(match.pathPrefix);
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
      let group: PathGroup;
      if (next.groups.has(r.pathPrefix)) group = next.groups.get(r.pathPrefix);
      else {
        group = new PathGroup();
        next.groups.set(r.pathPrefix, group);
      }
      const model = r.model;
      if (model === null) group.fallback = active;
      else {
        group.byModel.push(active);
        if (model.maxBodyBytes > group.maxBodyBytes) group.maxBodyBytes = model.maxBodyBytes;
      }
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
  const m = new RolloutMetrics(r.name, r.segments, r.shadow, r.output, r.models !== null);
  if (r.model !== null) m.modelRoute = new ModelRouteMetrics(r.name);
  vmRolloutMetrics.set(key, m);
  return m;
}

/** Everything the set of defined metrics depends on. */
function metricsKey(r: RolloutConfig): string {
  const shadow = r.shadow;
  let key =
    r.name +
    (shadow !== null ? "+shadow" + (shadow.noiseBasisPoints > 0 ? "+noise" : "") : "") +
    (r.model !== null ? "+model" : "") +
    (r.output.tools.length > 0 ? "+tools" : "") +
    (r.models !== null ? "+models" : "") +
    (r.output.analyze ? "+output:" + r.output.labels.join(",") + (r.output.schema !== null ? "+schema" : "") : "");
  for (let d = 0; d < r.segments.length; d++) key += "|" + r.segments[d].name + ":" + r.segments[d].values.join(",");
  return key;
}
