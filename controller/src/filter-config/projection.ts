// The rollout table the filters long-poll (filter/config.ts parses it): one entry per live rollout.
// Every config distributor sends this projection; a new field goes here and in FilterConfigBody (routes.ts).
import { toBasisPoints, type Rollout } from "../rollouts/model.ts";
import { toFilterModels, type FilterModels } from "../rollouts/models.ts";
import { toFilterOutput, type FilterOutput } from "../rollouts/output.ts";
import { toFilterSegment, type FilterSegment } from "../rollouts/segments.ts";
import { toFilterShadow, type FilterShadow } from "../rollouts/shadow.ts";

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

function filterRollout(r: Rollout): FilterRollout {
  const models = toFilterModels(r.spec.models);
  return {
    name: r.spec.name,
    pathPrefix: r.spec.match.pathPrefix,
    stickyHeader: r.spec.stickyKey.header,
    canaryBasisPoints: toBasisPoints(r.canaryPercent),
    segments: r.spec.segments.map(toFilterSegment),
    ...(r.spec.shadow ? { shadow: toFilterShadow(r.spec.shadow, r.shadowPercent) } : {}),
    output: toFilterOutput(r.spec.output),
    ...(models ? { models } : {}),
  };
}
