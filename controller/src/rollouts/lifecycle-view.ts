// What a person needs to read about where a rollout stands in its lifecycle: the next step in words
// (`pending` in the rollout view), and why a path is taken when a new rollout asks for it.
import { finalizeOf, isClosed, modelsOf, Phase, stageRef } from "../engine/index.ts";
import type { Rollout } from "./model.ts";
import { redactUrl } from "../secrets.ts";

const route = (name: string, action: string) => `POST /v1/rollouts/${name}/${action}`;

/** The 409 for a create whose pathPrefix another live rollout holds: who holds it, and what frees it. */
export function pathHeldMessage(name: string, prefix: string, holder: Rollout): string {
  const other = holder.spec.name;
  const head = `rollout ${name}: pathPrefix ${prefix} is held by rollout ${other}`;
  const engine = holder.engine;
  const phase = engine?.state.phase ?? null;
  if (engine === null || phase === null || isClosed(phase)) {
    return `${head} (${phase ?? "manual"}, canary ${holder.canaryPercent}%): DELETE /v1/rollouts/${other} frees it (its report and history stay readable in the archive)`;
  }
  if (phase === Phase.Succeeded || phase === Phase.Finalizing) {
    const models = modelsOf(engine.state.spec);
    const canary = models ? `its canary ${models.canary}` : "its canary";
    return `${head}, which succeeded but is not finalized (${canary} answers ${holder.canaryPercent}% of the traffic; phase ${phase}): finalize it (${route(other, "finalize")}) once stable serves ${
      models?.canary ?? "the new model"
    }, or roll it back (${route(other, "rollback")}) and delete it; then create this one, which starts from 0%`;
  }
  const current = stageRef(engine.state);
  const stage = current ? `, stage ${current.name}` : "";
  return `${head}, still releasing (${phase}${stage}): one release per path at a time; wait for it to end, or roll it back and delete it`;
}

/** The next step of a managed rollout, in words; null while the engine is moving it or for a manual rollout. */
export function pendingOf(rollout: Rollout): string | null {
  const engine = rollout.engine;
  if (engine === null) return null;
  const state = engine.state;
  const name = rollout.spec.name;
  const models = modelsOf(state.spec);
  const lifecycle = state.lifecycle;
  switch (state.phase) {
    case Phase.Paused:
      return `paused by an operator: ${route(name, "resume")} to continue, or roll it back`;
    case Phase.AwaitingReview:
      return `a review: ${route(name, "review")} with {"approved": true|false}`;
    case Phase.Succeeded: {
      const newModel = models?.canary ?? "the new model";
      const parts: string[] = [];
      if (lifecycle?.canaryWithdrawn) parts.push(`canary traffic withdrawn: ${lifecycle.canaryWithdrawn}.`);
      if (lifecycle?.finalizeNote) parts.push(`${lifecycle.finalizeNote}.`);
      const hook = finalizeOf(state.spec).webhook;
      const status = rollout.finalizeHook;
      if (hook && !status?.deliveredAt) {
        const tried = status && status.attempts > 0 ? ` (attempt ${status.attempts} failed: ${status.lastError}; next try at ${status.nextAttemptAt})` : "";
        parts.push(
          `finalize: the webhook ${redactUrl(hook.url)} is asked to make stable serve ${newModel}${tried}; or do it yourself and ${route(name, "finalize")}.`,
        );
      } else {
        const check = models?.source
          ? `the controller then checks that stable answers ${newModel} (${models.source}) and routes all traffic to it`
          : "no version source is declared (models.versionField or versionHeader), so it is taken on your word and all traffic goes to stable";
        parts.push(`finalize: make stable serve ${newModel}, then ${route(name, "finalize")}: ${check}.`);
      }
      const share =
        rollout.canaryPercent > 0 ? `Until then the canary answers ${rollout.canaryPercent}% of the traffic.` : "Until then all traffic is on stable.";
      parts.push(`${share} To go back to the old stable${models ? ` (${models.stable})` : ""}: ${route(name, "rollback")}.`);
      return parts.join(" ");
    }
    case Phase.Finalizing: {
      const progress = lifecycle?.finalize;
      const spec = finalizeOf(state.spec);
      const until = progress ? new Date(progress.askedAt + spec.deadlineSeconds * 1000).toISOString() : "?";
      return `finalize: verifying that stable answers ${models?.canary ?? "the new version"}: ${progress?.streak ?? 0} of ${spec.verifyAnswers} answers in a row so far (${
        progress?.seen.stale ?? 0
      } with another version since ${progress?.by ?? "?"} asked); ${100 - rollout.canaryPercent}% of traffic on stable; gives up at ${until}`;
    }
    case Phase.RolledBack:
    case Phase.Failed:
      return `nothing: all traffic is on stable. DELETE /v1/rollouts/${name} frees the path for the next rollout (the report stays readable in the archive)`;
    default:
      return null;
  }
}
