/**
 * PUT /v1/rollouts/{name}: a whole spec applied to a running rollout. What may change mid-rollout changes
 * (the release part through engine/respec.ts: gates, deadlines, owner, rollback condition, later stages,
 * finalize; shadow timeouts and limits); what may not is refused with the field and the reason. Applying the
 * spec the rollout already has changes nothing (same revision).
 */
import { ConflictError, InvalidRequestError, type ErrorDetail } from "../errors.ts";
import { respec, stageRef, type Decision } from "../engine/index.ts";
import { acceptSpec } from "./accept.ts";
import type { RolloutSpec } from "./schemas.ts";
import type { Rollout } from "./model.ts";
import type { RolloutStore } from "./store.ts";

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function applySpec(store: RolloutStore, name: string, body: RolloutSpec, actor: string, now: number): Rollout {
  const current = store.get(name);
  if (body.name !== name) {
    throw new InvalidRequestError(`rollout ${name}: the body names rollout ${body.name}`, [
      { path: "/name", reason: `must be ${name}: PUT /v1/rollouts/${name} applies to that rollout (a new name is a new rollout: POST /v1/rollouts)` },
    ]);
  }
  const { normalized, engine } = acceptSpec(body, store.policy);
  const was = current.spec;
  const refused: ErrorDetail[] = [];
  const fixed = (path: string, changed: boolean, reason: string) => {
    if (changed) refused.push({ path, reason: `cannot change mid-rollout: ${reason}` });
  };
  fixed(
    "/match/pathPrefix",
    was.match.pathPrefix !== normalized.match.pathPrefix,
    "the path's traffic and counts belong to this rollout; a new path is a new rollout",
  );
  fixed(
    "/match/model",
    (was.match.model ?? null) !== (normalized.match.model ?? null),
    "the model's traffic and counts belong to this rollout; a new model is a new rollout",
  );
  fixed("/modelRewrite", !same(was.modelRewrite ?? null, normalized.modelRewrite ?? null), "the canary is this model name (a new one is a new rollout)");
  fixed(
    "/stickyKey/header",
    was.stickyKey.header !== normalized.stickyKey.header,
    "users would move between stable and the canary (stickiness hashes this header)",
  );
  fixed("/segments", !same(was.segments, normalized.segments), "the per-segment gates and their share of the error budget were laid out for these segments");
  fixed("/models", !same(was.models, normalized.models), "the rollout is about these two models (a new model is a new rollout)");
  fixed("/clusters", !same(was.clusters ?? null, normalized.clusters ?? null), "the stable and canary its counts and gates are about would change");
  fixed("/output", !same(was.output, normalized.output), "answers would be analyzed, and the schema gate judged, by two definitions within one window");
  fixed("/shadow", (was.shadow === null) !== (normalized.shadow === null), "the stages were laid out with or without a shadow");
  if (was.shadow && normalized.shadow) {
    fixed("/shadow/cluster", was.shadow.cluster !== normalized.shadow.cluster, "the shadow's counts would mix two models");
    fixed("/shadow/percent", was.shadow.percent !== normalized.shadow.percent, "the shadow stage's share is set by its stage (and the engine)");
  }
  fixed(
    "/canaryPercent",
    was.canaryPercent !== normalized.canaryPercent,
    `it is the starting weight; set the current weight with PUT /v1/rollouts/${name}/weight`,
  );
  if ((current.engine === null) !== (engine === null)) {
    refused.push({
      path: "",
      reason:
        current.engine === null
          ? "a manual rollout cannot take release fields (owner, stages, promotion_gates, ...) mid-way: create a managed rollout"
          : "a managed rollout keeps its release fields (owner, rollbackCondition, stages, ...)",
    });
  }
  let decisions: Decision[] = [];
  let nextEngine = current.engine;
  if (current.engine && engine?.ok) {
    const result = respec(current.engine.state, engine.spec);
    if (!result.ok) refused.push(...result.errors);
    else if (result.changes.length > 0 || !same(result.state, current.engine.state)) {
      const state = result.state;
      const reason = `spec changed by ${actor}: ${result.changes.join("; ") || "no effect on the release"}`;
      decisions = [
        {
          at: now,
          rollout: name,
          kind: "specChanged",
          from: state.phase,
          to: state.phase,
          stage: stageRef(state),
          actor,
          reason,
          measurements: [],
          trafficMix: [],
          window: null,
        },
      ];
      nextEngine = { ...current.engine, state };
    }
  }
  if (refused.length > 0) {
    throw new ConflictError(`rollout ${name}: cannot apply: ${refused.map((d) => `${d.path || "(spec)"} ${d.reason}`).join("; ")}`, refused);
  }
  // The same plan written another way (a stage as a number or as the object GET shows) is no change.
  if (same({ ...normalized, release: null }, { ...was, release: null }) && nextEngine === current.engine) return current;
  return store.replace({ ...current, spec: normalized, engine: nextEngine }, decisions);
}
