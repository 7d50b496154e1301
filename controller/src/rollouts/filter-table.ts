// The rollout table the filters long-poll (filter/config.ts parses it): one entry per live rollout.
import { toFilterModels, type FilterModels } from "./models.ts";
import { toFilterOutput, type FilterOutput } from "./output.ts";
import { toFilterSegment, type FilterSegment } from "./segments.ts";
import { toFilterShadow, type FilterShadow } from "./shadow.ts";
import type { Rollout } from "./store.ts";

export interface FilterRollout {
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

/** The filter's unit: 1 basis point = 0.01%. Specs are validated to two decimals, so this is exact. */
export function toBasisPoints(percent: number): number {
  return Math.min(10_000, Math.max(0, Math.round(percent * 100)));
}

export function filterRollout(r: Rollout): FilterRollout {
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
