// The rollout table the filters long-poll (filter/config.ts parses it): one entry per live rollout.
// Every config distributor sends this projection; a new field goes here and in FilterConfigBody (routes.ts).
import { toBasisPoints, type Rollout } from "../rollouts/model.ts";
import { toFilterModels, type FilterModels } from "../rollouts/models.ts";
import { toFilterOutput, type FilterOutput } from "../rollouts/output.ts";
import { toFilterSegment, type FilterSegment } from "../rollouts/segments.ts";
import { toFilterShadow, type FilterShadow } from "../rollouts/shadow.ts";
import { toFilterModelRoute, type FilterModelRoute } from "../rollouts/model-route.ts";

interface FilterRollout {
  name: string;
  pathPrefix: string;
  stickyHeader: string;
  canaryBasisPoints: number;
  segments: FilterSegment[];
  shadow?: FilterShadow;
  output: FilterOutput;
  /** Present when answers state their version: the filter checks it per answer (filter/identity.ts). */
  models?: FilterModels;
  /** Present when the rollout is chosen by the request's model (filter/model-route.ts). */
  model?: FilterModelRoute;
}

export interface FilterConfig {
  epoch: string;
  version: number;
  rollouts: FilterRollout[];
}

/** What the projection reads: the store, or anything that lists rollouts under an epoch and version. */
export type ConfigSource = Pick<FilterConfig, "epoch" | "version"> & { list(): readonly Rollout[] };

export function filterConfigOf(source: ConfigSource): FilterConfig {
  return { epoch: source.epoch, version: source.version, rollouts: source.list().map(filterRollout) };
}

/**
 * filterConfigOf for a source that changes one rollout at a time: a rollout object the previous projection saw
 * (the store replaces the object on every change) keeps its projected entry, so a write costs the rollout it
 * changed plus one pass of pointer comparisons, not a projection of every rollout. Same result as filterConfigOf.
 */
export function incrementalProjection(): (source: ConfigSource) => FilterConfig {
  // Entries by rollout object; an object the store replaced is no longer referenced and goes with it.
  const projected = new WeakMap<Rollout, FilterRollout>();
  let lastList: readonly Rollout[] = [];
  let lastRollouts: FilterRollout[] = [];
  return (source) => {
    const list = source.list();
    const rollouts: FilterRollout[] = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const rollout = list[i] as Rollout;
      // Most rollouts sit where they were (the list is sorted by name): a pointer comparison finds them.
      let entry = lastList[i] === rollout ? lastRollouts[i] : projected.get(rollout);
      if (entry === undefined) {
        entry = filterRollout(rollout);
        projected.set(rollout, entry);
      }
      rollouts[i] = entry;
    }
    lastList = list;
    lastRollouts = rollouts;
    return { epoch: source.epoch, version: source.version, rollouts };
  };
}

function filterRollout(r: Rollout): FilterRollout {
  const models = toFilterModels(r.spec.models);
  const model = toFilterModelRoute(r.spec.match, r.spec.modelRewrite);
  return {
    name: r.spec.name,
    pathPrefix: r.spec.match.pathPrefix,
    stickyHeader: r.spec.stickyKey.header,
    canaryBasisPoints: toBasisPoints(r.canaryPercent),
    segments: r.spec.segments.map(toFilterSegment),
    ...(r.spec.shadow ? { shadow: toFilterShadow(r.spec.shadow, r.shadowPercent) } : {}),
    output: toFilterOutput(r.spec.output),
    ...(models ? { models } : {}),
    ...(model ? { model } : {}),
  };
}
