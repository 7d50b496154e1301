/**
 * Which model is which: for stable and canary, the version the spec declares (`models.stable`/`models.canary`)
 * and the upstream hosts the variant's Envoy cluster reaches (metrics/envoy-upstreams.ts), with one line of
 * text every client shows as is (the dashboard's header and list, `modelroll list`/`get`, notifications, the
 * report), so they all say it in the same words.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import type { UpstreamLookup } from "../metrics/envoy-upstreams.ts";
import type { Rollout } from "../rollouts/model.ts";

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const VariantIdentity = Type.Object({
  model: Nullable(Type.String({ description: "The version the spec declares (models.stable / models.canary); null when not declared." })),
  cluster: Type.String({ description: "The Envoy cluster this variant's traffic goes to." }),
  upstreams: Nullable(
    Type.Array(Type.String(), {
      description: "The hosts that cluster reaches, as the Envoys' admin endpoints say (host:port); null when no Envoy was asked or none answered.",
    }),
  ),
});

export const VariantsView = Type.Object(
  {
    stable: VariantIdentity,
    canary: VariantIdentity,
    text: Type.String({ description: 'In words, e.g. "stable v1 at 127.0.0.1:9001 · canary v2 at 127.0.0.1:9002".' }),
  },
  { description: "Which model is which: the declared versions, else the upstream each variant reaches." },
);
export type VariantsView = Static<typeof VariantsView>;

const NO_UPSTREAMS: UpstreamLookup = () => null;

function hostsText(hosts: string[]): string {
  if (hosts.length === 0) return "no hosts";
  return hosts.length <= 2 ? hosts.join(", ") : `${hosts.slice(0, 2).join(", ")} +${hosts.length - 2} more`;
}

/** "v1 at 127.0.0.1:9001", "127.0.0.1:9001", "v1", or "cluster canary (upstream unknown)". */
export function variantText(v: Static<typeof VariantIdentity>): string {
  if (v.model !== null) return v.upstreams !== null ? `${v.model} at ${hostsText(v.upstreams)}` : v.model;
  if (v.upstreams !== null) return hostsText(v.upstreams);
  return `cluster ${v.cluster} (upstream unknown)`;
}

export function variantsOf(rollout: Rollout, upstreams: UpstreamLookup = NO_UPSTREAMS): VariantsView {
  const { models, clusters } = rollout.spec;
  const one = (variant: "stable" | "canary") => {
    const cluster = clusters?.[variant] ?? variant;
    return { model: models?.[variant] ?? null, cluster, upstreams: upstreams(cluster) };
  };
  const stable = one("stable");
  const canary = one("canary");
  return { stable, canary, text: `stable ${variantText(stable)} · canary ${variantText(canary)}` };
}
