/**
 * A stage's window starts when the data plane runs the stage's weights. Entering a stage (transitions.ts)
 * marks the state as waiting; each tick the driver hands in what every proxy it knows runs (the filter's
 * version gauges, metrics/config-versions.ts) and the config version that carried the weights. Until every
 * proxy runs that version or newer (or, after `waitSeconds`, at least `share` of them), the stage's baseline
 * moves with each reading: counts served under the previous split never enter the window. The first reading
 * in which the proxies report the new version is the window's baseline. Without a version source (no
 * `propagation` input) the window starts at the decision's reading, as before.
 *
 * Only the window waits: a rollback is a routing change pushed at once, and a gate Failed on the evidence
 * carried from earlier stages still rolls back while the stage waits.
 */
import type { ProxyVersion } from "../metrics/config-versions.ts";
import type { CountsSnapshot } from "./counts.ts";
import type { PropagationPolicy, PropagationView } from "./propagation-view.ts";
import type { EngineState, Hold } from "./state.ts";

/** Every proxy, else 95% of them after 30 s. */
export const DEFAULT_PROPAGATION: PropagationPolicy = { share: 0.95, waitSeconds: 30 };

/** What the driver read this tick. */
export interface PropagationInput {
  /** The config version that carried the rollout's current weights. */
  required: number;
  /** Every proxy the controller knows, decoded; null with `error` when the source could not be read. */
  proxies: ProxyVersion[] | null;
  error: string | null;
  policy: PropagationPolicy;
}

export function judgePropagation(input: PropagationInput, since: number, now: number): PropagationView {
  const proxies = input.proxies ?? [];
  const laggards = proxies.filter((p) => p.oldest === null || p.oldest < input.required).map((p) => ({ proxy: p.proxy, oldest: p.oldest, note: p.note }));
  const total = proxies.length;
  const ready = total - laggards.length;
  const waited = now - since >= input.policy.waitSeconds * 1000;
  let rule: PropagationView["rule"] = null;
  if (total > 0 && ready === total) rule = "all";
  else if (waited && total === 0) rule = "unknown";
  else if (waited && input.policy.share < 1 && ready >= input.policy.share * total) rule = "share";
  return { required: input.required, since, confirmedAt: rule === null ? null : now, rule, ready, total, laggards, policy: input.policy, error: input.error };
}

/**
 * Moves a waiting stage on: its baseline follows the readings until the proxies run the stage's version,
 * then stays at the first reading that shows it. Returns the hold while waiting.
 */
export function propagationStep(
  state: EngineState,
  input: PropagationInput | undefined,
  snapshot: CountsSnapshot | null,
  now: number,
): { state: EngineState; view: PropagationView | null; hold: Hold | null } {
  const p = state.propagation;
  if (!p || p.confirmed) return { state, view: p?.confirmed ?? null, hold: null };
  if (!input) return { state: { ...state, propagation: null }, view: null, hold: null };
  const view = judgePropagation(input, p.since, now);
  if (view.rule !== null) {
    return { state: { ...state, propagation: { since: p.since, confirmed: view }, baseline: snapshot, baselineAt: snapshot ? now : null }, view, hold: null };
  }
  const moved: EngineState = snapshot ? { ...state, baseline: snapshot, baselineAt: now } : state;
  return { state: moved, view, hold: propagationHold(view, now) };
}

function propagationHold(view: PropagationView, now: number): Hold {
  const waited = Math.floor((now - view.since) / 1000);
  const shareRule = view.policy.share < 1 ? `, or ${Math.round(view.policy.share * 1000) / 10}% of them after ${view.policy.waitSeconds} s` : "";
  const what =
    view.total === 0
      ? `no proxy reports its config version yet${view.error ? ` (${view.error})` : ""}`
      : `${view.ready} of ${view.total} proxies run config version ${view.required} or newer`;
  const shareMet = view.total > 0 && view.policy.share < 1 && view.ready >= view.policy.share * view.total;
  const remaining = Math.max(0, Math.ceil(view.policy.waitSeconds - (now - view.since) / 1000));
  return {
    key: "propagation",
    text: `data plane: ${what} after ${waited} s (the window starts when every proxy does${shareRule})${laggardText(view)}`,
    gate: null,
    segment: null,
    samples: view.total > 0 ? view.ready : null,
    needed: view.total > 0 ? view.total : null,
    seconds: view.total === 0 || shareMet ? remaining : null,
  };
}

/** The laggards in words: at most six named, each with what it runs. */
export function laggardText(view: PropagationView): string {
  if (view.laggards.length === 0) return "";
  const named = view.laggards.slice(0, 6).map((l) => `${l.proxy} (${l.note ?? `runs ${l.oldest}`})`);
  const more = view.laggards.length > 6 ? `, +${view.laggards.length - 6} more` : "";
  return `; waiting on ${named.join(", ")}${more}`;
}
