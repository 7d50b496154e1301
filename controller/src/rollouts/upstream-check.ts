// The comparison of a rollout's tested upstreams with what its clusters reach now, the hold it leads to, an
// operator's accept, and the words for people (rollouts/upstreams.ts has the types and the why). Pure.
import { initialState, isClosed, isTerminal, Phase, type Decision, type EngineState } from "../engine/index.ts";
import type { Rollout } from "./model.ts";
import type { RolloutUpstreams, TestedUpstreams, UpstreamChange, UpstreamMap, UpstreamRecord } from "./upstreams.ts";

/** The verdict of one comparison; "write" and "hold" are applied with store.setUpstreams. */
export type UpstreamVerdict =
  | { kind: "unchanged" }
  | { kind: "unknown"; why: string }
  | { kind: "write"; upstreams: RolloutUpstreams }
  | { kind: "hold"; upstreams: RolloutUpstreams; decision: Decision | null };

/** The clusters a rollout's two variants are routed to (rollouts/clusters.ts defaults). */
export function rolloutClusters(rollout: Pick<Rollout, "spec">): { stable: string; canary: string } {
  return { stable: rollout.spec.clusters?.stable ?? "stable", canary: rollout.spec.clusters?.canary ?? "canary" };
}

/** The rollout's upstreams as the map shows them now; null when the map lacks one of its clusters. */
export function observedUpstreams(rollout: Pick<Rollout, "spec">, map: UpstreamMap, at: Date): TestedUpstreams | null {
  const clusters = rolloutClusters(rollout);
  const stable = map.endpoints.get(clusters.stable);
  const canary = map.endpoints.get(clusters.canary);
  if (stable === undefined || canary === undefined) return null;
  const models = rollout.spec.models;
  return {
    stable: { cluster: clusters.stable, endpoint: stable, model: models?.stable ?? null },
    canary: { cluster: clusters.canary, endpoint: canary, model: models?.canary ?? null },
    since: at.toISOString(),
    source: map.source,
  };
}

export function describeUpstream(r: UpstreamRecord | null): string {
  if (r === null) return "not recorded";
  return `${r.endpoint}${r.model ? ` (model ${r.model})` : ""}`;
}

function changesBetween(tested: TestedUpstreams | null, now: TestedUpstreams): UpstreamChange[] {
  return (["stable", "canary"] as const).flatMap((variant) => {
    const was = tested?.[variant] ?? null;
    const same = was !== null && was.cluster === now[variant].cluster && was.endpoint === now[variant].endpoint && was.model === now[variant].model;
    return same ? [] : [{ variant, was, now: now[variant] }];
  });
}

function changeText(changes: UpstreamChange[]): string {
  return changes.map((c) => `${c.variant} (cluster ${c.now.cluster}) was ${describeUpstream(c.was)}, now ${describeUpstream(c.now)}`).join("; ");
}

/** A managed rollout's stages have begun (or a manual one routes anything to the canary or shadow). */
function hasStarted(rollout: Rollout): boolean {
  if (rollout.engine) return rollout.engine.state.phase !== Phase.Pending;
  return rollout.canaryPercent > 0 || rollout.shadowPercent > 0;
}

const route = (name: string, action: string) => `POST /v1/rollouts/${name}/${action}`;

function holdReason(rollout: Rollout, changes: UpstreamChange[], unrecorded: boolean): string {
  const name = rollout.spec.name;
  const what = unrecorded
    ? `the upstreams this rollout was tested against were not recorded (a state file from an earlier modelroll), so the canary it reaches now (${describeUpstream(changes.find((c) => c.variant === "canary")?.now ?? null)}) cannot be shown to be the one its stages tested`
    : `its upstreams changed since it last ran: ${changeText(changes)}`;
  const weights = `canary traffic withdrawn (was ${rollout.canaryPercent}%${rollout.shadowPercent > 0 ? `, shadow ${rollout.shadowPercent}%` : ""}): all of it goes to stable`;
  const phase = rollout.engine?.state.phase ?? null;
  const ways =
    phase !== null && isTerminal(phase)
      ? `No stage tested this canary: roll it back (${route(name, "rollback")}), delete it and create a new rollout to release what the canary cluster reaches now; or, if stable now serves the released model, ${route(name, "finalize")}`
      : `If the new upstream is the one to release, ${route(name, "accept-upstreams")}: ${rollout.engine ? "the release starts again from its first stage against it" : "the weights come back as they were"}; otherwise roll it back (${route(name, "rollback")})`;
  return `held: ${what}. ${weights}. ${ways}`;
}

/**
 * Compares what a rollout was tested against with what its clusters reach now. A rollout that has begun is
 * held on any change (canary withdrawn), except a Succeeded one whose stable alone changed: that is how
 * finalize starts (stable repointed at the released model), no traffic reaches stable until then, and finalize
 * verifies it. Before the first stage a change is recorded: the stages will test what the clusters reach.
 */
export function judgeUpstreams(rollout: Rollout, map: UpstreamMap | null, at: Date): UpstreamVerdict {
  const phase = rollout.engine?.state.phase ?? null;
  if (phase !== null && isClosed(phase)) return { kind: "unchanged" };
  const saved = rollout.upstreams ?? { tested: null, hold: null, note: null };
  if (saved.hold !== null) return { kind: "unchanged" };
  if (map === null) return { kind: "unknown", why: "the controller does not know what the clusters reach now" };
  const now = observedUpstreams(rollout, map, at);
  if (now === null) {
    const c = rolloutClusters(rollout);
    return { kind: "unknown", why: `${map.source} shows no cluster ${map.endpoints.has(c.stable) ? c.canary : c.stable}` };
  }
  const changes = changesBetween(saved.tested, now);
  if (changes.length === 0) return saved.note === null ? { kind: "unchanged" } : { kind: "write", upstreams: { ...saved, note: null } };
  const routesToCanary = rollout.canaryPercent > 0 || rollout.shadowPercent > 0;
  if (saved.tested === null) {
    // Only a release that has ended on the canary cannot wait: its stages are over and it answers real traffic.
    if (!(phase !== null && isTerminal(phase) && routesToCanary)) return { kind: "write", upstreams: { tested: now, hold: null, note: null } };
    return hold(rollout, saved, changes, true, at);
  }
  if (!hasStarted(rollout)) {
    const note = `upstreams changed before the first stage (${changeText(changes)}): the stages test what the clusters reach now`;
    return { kind: "write", upstreams: { tested: now, hold: null, note } };
  }
  const stableOnly = changes.every((c) => c.variant === "stable");
  if (stableOnly && phase !== null && isTerminal(phase)) {
    const share =
      rollout.canaryPercent >= 100
        ? "no traffic reaches stable until finalize, which checks it"
        : `stable answers ${100 - rollout.canaryPercent}% of the traffic (a rollout that is not on the canary has no other place to send it)`;
    const note = `stable changed since the release: ${changeText(changes)}; ${share}`;
    return note === saved.note ? { kind: "unchanged" } : { kind: "write", upstreams: { ...saved, note } };
  }
  return hold(rollout, saved, changes, false, at);
}

function hold(rollout: Rollout, saved: RolloutUpstreams, changes: UpstreamChange[], unrecorded: boolean, at: Date): UpstreamVerdict {
  const reason = holdReason(rollout, changes, unrecorded);
  const upstreams: RolloutUpstreams = {
    tested: saved.tested,
    note: null,
    hold: { since: at.toISOString(), changes, withdrawn: { canaryPercent: rollout.canaryPercent, shadowPercent: rollout.shadowPercent }, reason },
  };
  const state = rollout.engine?.state;
  const decision: Decision | null = state
    ? {
        at: at.getTime(),
        rollout: rollout.spec.name,
        kind: "upstreamsChanged",
        from: state.phase,
        to: state.phase,
        stage: null,
        actor: "controller",
        reason,
        measurements: [],
        trafficMix: [],
        window: null,
      }
    : null;
  return { kind: "hold", upstreams, decision };
}

/** What an accepted change does: the new record, the weights, and for a running release its restart. */
export interface AcceptedUpstreams {
  upstreams: RolloutUpstreams;
  weights: { canaryPercent: number; shadowPercent: number };
  engineState?: EngineState;
  decision?: Decision;
}

/**
 * An operator accepts what the clusters reach now as the rollout's upstreams. A manual rollout gets its weights
 * back; a running release starts again from its first stage (its evidence was about the old upstreams). A
 * release that has ended cannot: no stage would test the new canary. Returns the refusal text otherwise.
 */
export function acceptUpstreams(rollout: Rollout, map: UpstreamMap | null, by: string, said: string | null, at: Date): AcceptedUpstreams | string {
  const name = rollout.spec.name;
  const saved = rollout.upstreams;
  if (!saved?.hold) return `rollout ${name}: not held for changed upstreams; nothing to accept`;
  const state = rollout.engine?.state ?? null;
  if (state !== null && isTerminal(state.phase)) {
    return `rollout ${name}: it has ${state.phase}: no stage would test the new canary. Roll it back (all traffic to stable), delete it and create a new rollout for the new canary; or finalize it if stable now serves the released model`;
  }
  const now = map === null ? null : observedUpstreams(rollout, map, at);
  if (now === null) return `rollout ${name}: the controller cannot read what its clusters reach now (${map?.source ?? "no source"}); try again when it can`;
  const upstreams: RolloutUpstreams = { tested: now, hold: null, note: null };
  const why = said ? `: ${said}` : "";
  if (state === null) return { upstreams, weights: saved.hold.withdrawn };
  const restarted = initialState({ rollout: name, spec: state.spec, segments: state.segments, now: at.getTime() });
  const reason = `upstreams accepted by ${by} (${changeText(saved.hold.changes)}): the release starts again from its first stage${why}`;
  const decision: Decision = {
    at: at.getTime(),
    rollout: name,
    kind: "upstreamsAccepted",
    from: state.phase,
    to: restarted.phase,
    stage: null,
    actor: by,
    reason,
    measurements: [],
    trafficMix: [],
    window: null,
  };
  return { upstreams, weights: { canaryPercent: 0, shadowPercent: 0 }, engineState: restarted, decision };
}

/** Engine commands that would move traffic towards a held rollout's canary are refused until it is accepted. */
export function refusedWhileHeld(rollout: Rollout, command: string): string | null {
  const held = rollout.upstreams?.hold;
  if (!held) return null;
  if (["rollback", "undo", "fail", "finalize", "recordExternal"].includes(command)) return null;
  return `rollout ${rollout.spec.name}: ${command} refused while ${held.reason}`;
}

/** One line per rollout for the start banner: tested against what, and any hold or note. */
export function upstreamLine(rollout: Rollout): string {
  const u = rollout.upstreams;
  const phase = rollout.engine?.state.phase ?? "manual";
  const head = `rollout ${rollout.spec.name} (${phase}, canary ${rollout.canaryPercent}%)`;
  if (u?.hold) return `${head}: ${u.hold.reason}`;
  if (rollout.engine && isClosed(rollout.engine.state.phase)) return `${head}: ended, all traffic on stable`;
  const tested = u?.tested
    ? `tested against stable ${describeUpstream(u.tested.stable)}, canary ${describeUpstream(u.tested.canary)}`
    : "upstreams not recorded yet";
  return `${head}: ${tested}${u?.note ? `; ${u.note}` : ""}`;
}
