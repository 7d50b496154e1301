/**
 * Which model servers a rollout was tested against, and what happens when they change under it. A rollout's
 * gates judged the canary (and compared it with stable) at the endpoints its Envoy clusters reached then; a
 * restart with `--canary` pointing elsewhere, or an Envoy whose canary cluster now reaches another server, would
 * send the rollout's share (100% after Succeeded) to a model no stage has seen. The controller records the
 * endpoints (and the declared model labels) per rollout, compares them with what the clusters reach now, and
 * holds a rollout whose upstreams changed: canary traffic withdrawn, no stage moves, until an operator accepts
 * the change (a running release starts again from its first stage) or rolls it back. Pure: the store applies
 * the verdicts (store.setUpstreams), release/upstream-guard.ts takes the readings. The types are here (the
 * rollout model keeps them); the comparison and its words are upstream-check.ts.
 */

export type UpstreamVariant = "stable" | "canary";

/** One variant's upstream: the Envoy cluster, what it reaches, and the model label the spec declares for it. */
export interface UpstreamRecord {
  cluster: string;
  /** host:port of the cluster's endpoints (several joined by ", ", sorted); a DNS cluster by its host name. */
  endpoint: string;
  /** models.stable / models.canary of the spec; null when the spec declares no models. */
  model: string | null;
}

export interface TestedUpstreams {
  stable: UpstreamRecord;
  canary: UpstreamRecord;
  /** When they were first seen under this rollout (ISO). */
  since: string;
  /** How the controller knew them: "npm start" (its flags) or "Envoy admin /clusters". */
  source: string;
}

export interface UpstreamChange {
  variant: UpstreamVariant;
  was: UpstreamRecord | null;
  now: UpstreamRecord;
}

/** A rollout held because an upstream changed: what changed, the weights it had, and the words for people. */
export interface UpstreamHold {
  since: string;
  changes: UpstreamChange[];
  withdrawn: { canaryPercent: number; shadowPercent: number };
  reason: string;
}

/** Kept on the rollout (JSON, in the state file). */
export interface RolloutUpstreams {
  /** What its stages tested; null until the controller first knew (a state file from before this was kept). */
  tested: TestedUpstreams | null;
  hold: UpstreamHold | null;
  /** A change seen that did not need a hold (stable repointed after Succeeded, a change before the first stage). */
  note: string | null;
}

/** What the Envoy clusters reach now: cluster name -> endpoint text (UpstreamRecord.endpoint). */
export interface UpstreamMap {
  source: string;
  endpoints: ReadonlyMap<string, string>;
}
