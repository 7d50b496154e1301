// Shadow traffic of a rollout spec. The filter mirrors a sticky sample of requests to the shadow cluster
// and compares the shadow's answer with the primary's on the output fields (output.ts).
import { Type, type Static } from "@sinclair/typebox";
import { REASONS_KEYWORD } from "../errors.ts";
import { clusterName } from "./clusters.ts";

const percent = (description: string) =>
  Type.Number({
    minimum: 0,
    maximum: 100,
    multipleOf: 0.01,
    description,
    [REASONS_KEYWORD]: { multipleOf: "must have at most two decimals (0.01% is one basis point, the smallest step)" },
  });

export const ShadowSpec = Type.Object(
  {
    percent: percent("Share of requests mirrored to the shadow, sticky by the rollout's key."),
    cluster: Type.Optional(clusterName("Envoy cluster of the shadow model; default clusters.shadow, else shadow.")),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60000, default: 1000, description: "Per mirrored call." })),
    maxBodyBytes: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 16 * 1024 * 1024,
        default: 65536,
        description: "Larger request bodies are not mirrored; larger answers are not compared.",
      }),
    ),
    maxInFlight: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, default: 64, description: "Mirrored calls in flight per Envoy worker." })),
    noisePercent: Type.Optional(
      percent(
        "Share of the mirrored requests answered by stable that also go to stable a second time (Diffy's noise): how often stable disagrees with itself, what the gate shadow_disagreement_excess judges the shadow's disagreement against. Default 0 (off).",
      ),
    ),
    noiseCluster: Type.Optional(clusterName("Cluster the second stable call goes to; default clusters.stable, else stable.")),
  },
  { additionalProperties: false },
);
export type ShadowSpec = Static<typeof ShadowSpec>;

/** noisePercent and noiseCluster only when noise is on, so a spec without it reads as one saved before it existed. */
export type NormalizedShadow = Required<Omit<ShadowSpec, "noisePercent" | "noiseCluster">> & { noisePercent?: number; noiseCluster?: string };

/** `cluster`: the rollout's shadow cluster when the spec names clusters (clusters.ts); `stableCluster` likewise. */
export function normalizeShadow(shadow: ShadowSpec | undefined, cluster = "shadow", stableCluster = "stable"): NormalizedShadow | null {
  if (shadow === undefined) return null;
  const noise = shadow.noisePercent ?? 0;
  return {
    ...(noise > 0 ? { noisePercent: noise, noiseCluster: shadow.noiseCluster ?? stableCluster } : {}),
    percent: shadow.percent,
    cluster: shadow.cluster ?? cluster,
    timeoutMs: shadow.timeoutMs ?? 1000,
    maxBodyBytes: shadow.maxBodyBytes ?? 65536,
    maxInFlight: shadow.maxInFlight ?? 64,
  };
}

/** What the filter receives (filter/config.ts, ShadowConfig). */
export interface FilterShadow {
  basisPoints: number;
  cluster: string;
  timeoutMs: number;
  maxBodyBytes: number;
  maxInFlight: number;
  noiseBasisPoints?: number;
  noiseCluster?: string;
}

export function toFilterShadow(shadow: NormalizedShadow, currentPercent: number): FilterShadow {
  return {
    ...(shadow.noisePercent ? { noiseBasisPoints: Math.round(shadow.noisePercent * 100), noiseCluster: shadow.noiseCluster ?? "stable" } : {}),
    basisPoints: Math.min(10_000, Math.max(0, Math.round(currentPercent * 100))),
    cluster: shadow.cluster,
    timeoutMs: shadow.timeoutMs,
    maxBodyBytes: shadow.maxBodyBytes,
    maxInFlight: shadow.maxInFlight,
  };
}

export const ShadowChange = Type.Object({ percent: percent("Share of requests mirrored to the shadow; 0 stops mirroring.") }, { additionalProperties: false });
export type ShadowChange = Static<typeof ShadowChange>;
