// The Envoy clusters a rollout steers between, for many models behind one proxy. The filter only picks the
// variant (x-rollout-variant); the route table sends each model's path prefix and variant to that model's
// clusters (`npm start -- --models`, or each model's VirtualService in Istio). A rollout names its clusters so
// that what the filter calls by name goes to its own model: the shadow cluster mirrored requests go to, and the
// stable cluster the canary output guard fetches stable answers from. Without `clusters` those are the
// single-model bootstrap's "stable", "canary" and "shadow".
import { Type, type Static } from "@sinclair/typebox";
import { REASONS_KEYWORD, type ErrorDetail } from "../errors.ts";

/** Envoy cluster names as Envoy and Istio write them (`outbound|80|canary|fraud-model.ml.svc.cluster.local`). */
const CLUSTER_NAME_PATTERN = "^[A-Za-z0-9_.|:-]{1,255}$";

// No schema `default`: ajv would fill it in, and an unnamed cluster must stay unnamed until normalized (a
// section's own cluster is only at odds with `clusters` when both are written).
export const clusterName = (description: string) =>
  Type.String({
    pattern: CLUSTER_NAME_PATTERN,
    description,
    [REASONS_KEYWORD]: { pattern: "must be an Envoy cluster name: 1 to 255 of letters, digits, '_', '.', '|', ':' and '-'" },
  });

const DEFAULT_CLUSTERS = { stable: "stable", canary: "canary", shadow: "shadow" } as const;

export const ClustersSpec = Type.Object(
  {
    stable: Type.Optional(
      clusterName("Cluster the route table sends this rollout's stable traffic to; the canary output guard fetches stable answers from it. Default stable."),
    ),
    canary: Type.Optional(
      clusterName(
        "Cluster the route table sends this rollout's canary traffic to (x-rollout-variant: canary on its path prefix). No other live rollout may name it. Default canary.",
      ),
    ),
    shadow: Type.Optional(clusterName("Cluster mirrored requests go to (the default of shadow.cluster). Default shadow.")),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description:
      "The Envoy clusters this rollout steers, when one proxy fronts several models (README 'Many models behind one proxy'). Unnamed ones keep the single-model names stable, canary, shadow.",
    [REASONS_KEYWORD]: { minProperties: "must name at least one of stable, canary, shadow (or leave clusters out)" },
  },
);
export type ClustersSpec = Static<typeof ClustersSpec>;
export type NormalizedClusters = Required<ClustersSpec>;

/** The named clusters with the unnamed ones at their defaults; undefined when the spec names none. */
export function normalizeClusters(clusters: ClustersSpec | undefined): NormalizedClusters | undefined {
  if (clusters === undefined) return undefined;
  return {
    stable: clusters.stable ?? DEFAULT_CLUSTERS.stable,
    canary: clusters.canary ?? DEFAULT_CLUSTERS.canary,
    shadow: clusters.shadow ?? DEFAULT_CLUSTERS.shadow,
  };
}

/** What the schema cannot say: the two primary clusters differ, and the sections naming a cluster agree with clusters. */
export function checkClusters(spec: { clusters?: ClustersSpec; shadow?: { cluster?: string }; output?: { guardCluster?: string } }): ErrorDetail[] {
  const c = normalizeClusters(spec.clusters);
  if (c === undefined) return [];
  const errors: ErrorDetail[] = [];
  if (c.stable === c.canary)
    errors.push({ path: "/clusters/canary", reason: `must differ from the stable cluster (${c.stable}): the canary would get the stable model's traffic` });
  const shadow = spec.shadow?.cluster;
  if (shadow !== undefined && spec.clusters?.shadow !== undefined && shadow !== c.shadow) {
    errors.push({ path: "/shadow/cluster", reason: `names ${shadow} but clusters.shadow is ${c.shadow}: name the shadow cluster in one place` });
  }
  const guard = spec.output?.guardCluster;
  if (guard !== undefined && spec.clusters?.stable !== undefined && guard !== c.stable) {
    errors.push({
      path: "/output/guardCluster",
      reason: `names ${guard} but clusters.stable is ${c.stable}: the guard fetches stable answers from the stable cluster`,
    });
  }
  return errors;
}

/**
 * Another live rollout that names the same canary cluster (its canaries would be one model's traffic) and that
 * cluster, or null.
 */
export function canaryClusterHolder<R extends { spec: { name: string; clusters?: NormalizedClusters } }>(
  spec: { name: string; clusters?: NormalizedClusters },
  live: readonly R[],
): { holder: R; cluster: string } | null {
  const mine = spec.clusters?.canary;
  if (mine === undefined) return null;
  const holder = live.find((r) => r.spec.name !== spec.name && r.spec.clusters?.canary === mine);
  return holder ? { holder, cluster: mine } : null;
}
