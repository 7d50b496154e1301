/**
 * A rollout as a ModelRollout object and back: the status the controller writes (for `kubectl get` and
 * `kubectl wait`, and `status.state`, the record any replica resumes from), the spec a rollout created through
 * the REST API gets, and the conditions.
 */
import { isTerminal, Phase, stageRef, type Decision } from "../engine/index.ts";
import type { ErrorDetail } from "../errors.ts";
import { specView } from "../http/spec-view.ts";
import type { KubeObject, ObjectMeta } from "../kube/client.ts";
import { pendingOf } from "../rollouts/lifecycle-view.ts";
import type { Rollout } from "../rollouts/model.ts";
import { fromStored, toStored, type StoredRollout } from "../rollouts/persistence.ts";
import { API_VERSION, ROLLOUT_KIND } from "./crd.ts";

/** Annotations and the finalizer modelroll sets or reads on a ModelRollout. */
export const ANNOTATIONS = {
  /** "rest": created through POST /v1/rollouts (its spec is the controller's; PUT through the REST API too). */
  origin: "modelroll.io/origin",
} as const;
/** Held on every ModelRollout the controller knows: a delete waits until the canary is withdrawn and archived. */
export const FINALIZER = "modelroll.io/withdraw";
/** GitOps commands: `kubectl annotate --overwrite mro/NAME modelroll.io/promote=<token>` runs promote once per new token. */
export const COMMAND_ANNOTATIONS = ["promote", "pause", "resume", "abort", "undo", "fail", "finalize"] as const;
export type AnnotationCommand = (typeof COMMAND_ANNOTATIONS)[number];

export interface Condition {
  type: "Progressing" | "Paused" | "Succeeded" | "RolledBack" | "Invalid";
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface RolloutStatus {
  phase: string;
  stage: string;
  stageIndex: number;
  canaryPercent: number;
  shadowPercent: number;
  revision: number;
  observedGeneration: number;
  pending: string;
  modelVersions?: { stable: string; canary: string };
  lastEvaluation?: { at: string; stage: string; summary: string; blocking: string[] };
  fieldErrors?: ErrorDetail[];
  decisions: { count: number; chunks: number };
  conditions: Condition[];
  /** The command annotations' tokens already acted on (annotation name -> token). */
  commands?: Record<string, string>;
  /** toStored(rollout): null while the spec was never accepted. */
  state: StoredRollout | null;
}

export interface ModelRolloutObject extends KubeObject {
  spec: Record<string, unknown>;
  status?: Partial<RolloutStatus>;
}

/** The spec a rollout made through the REST API is shown with: GET's view (webhook URLs redacted), without name. */
export function specOfRollout(rollout: Rollout): Record<string, unknown> {
  const { name: _name, ...spec } = specView(rollout) as unknown as Record<string, unknown>;
  return JSON.parse(JSON.stringify(spec)) as Record<string, unknown>;
}

/** The spec as the REST API takes it: metadata.name as its name. */
export function restSpecOf(object: ModelRolloutObject): Record<string, unknown> {
  return { name: object.metadata.name, ...structuredClone(object.spec ?? {}) };
}

export function newObject(name: string, namespace: string, spec: Record<string, unknown>, origin: "rest" | null): ModelRolloutObject {
  const metadata: ObjectMeta = { name, namespace, finalizers: [FINALIZER] };
  if (origin) metadata.annotations = { [ANNOTATIONS.origin]: origin };
  return { apiVersion: API_VERSION, kind: ROLLOUT_KIND, metadata, spec };
}

const percentOf = (value: number) => Math.round(value * 100) / 100;

/** What `kubectl get` and `kubectl wait` read, and the record to resume from. */
export function statusOf(
  rollout: Rollout,
  context: { generation: number; previous?: Partial<RolloutStatus>; decisionChunks: number; commands?: Record<string, string>; now: Date },
): RolloutStatus {
  const engine = rollout.engine;
  const state = engine?.state;
  const stage = state ? stageRef(state) : null;
  const phase = state ? state.phase : "Manual";
  const evaluation = engine?.lastEvaluation ?? null;
  const status: RolloutStatus = {
    phase,
    stage: stage?.name ?? "",
    stageIndex: stage?.index ?? -1,
    canaryPercent: percentOf(rollout.canaryPercent),
    shadowPercent: percentOf(rollout.shadowPercent),
    revision: rollout.revision,
    observedGeneration: context.generation,
    pending: rollout.upstreams?.hold?.reason ?? pendingOf(rollout) ?? "",
    decisions: { count: engine?.decisions.length ?? 0, chunks: context.decisionChunks },
    conditions: [],
    state: toStored(rollout),
  };
  if (rollout.spec.models) status.modelVersions = { stable: rollout.spec.models.stable, canary: rollout.spec.models.canary };
  if (evaluation) {
    const gates = new Map<string, string>();
    for (const m of evaluation.measurements) if (m.segment === null) gates.set(m.gate, m.status);
    status.lastEvaluation = {
      at: new Date(evaluation.at).toISOString(),
      stage: evaluation.stage?.name ?? "",
      summary: [...gates].map(([gate, verdict]) => `${gate}=${verdict}`).join(" "),
      blocking: evaluation.blocking.slice(0, 10),
    };
  }
  if (context.commands && Object.keys(context.commands).length > 0) status.commands = context.commands;
  status.conditions = conditionsOf(rollout, phase, context.generation, context.previous?.conditions ?? [], context.now);
  return status;
}

/** The status of a spec refused before any rollout existed (or a changed spec refused): Invalid with its field errors. */
export function refusedStatus(
  previous: Partial<RolloutStatus> | undefined,
  generation: number,
  message: string,
  errors: readonly ErrorDetail[],
  now: Date,
): Partial<RolloutStatus> {
  const invalid: Condition = {
    type: "Invalid",
    status: "True",
    reason: "SpecRefused",
    message,
    lastTransitionTime: now.toISOString(),
    observedGeneration: generation,
  };
  const others = (previous?.conditions ?? []).filter((c) => c.type !== "Invalid");
  return {
    ...previous,
    phase: previous?.state ? previous.phase : "Invalid",
    observedGeneration: generation,
    fieldErrors: errors.slice(0, 50),
    conditions: [...others, invalid],
  };
}

function conditionsOf(rollout: Rollout, phase: string, generation: number, previous: readonly Condition[], now: Date): Condition[] {
  const terminal = rollout.engine ? isTerminal(rollout.engine.state.phase) : false;
  const want: Array<Omit<Condition, "lastTransitionTime">> = [
    {
      type: "Progressing",
      status: rollout.engine && !terminal && phase !== Phase.Paused ? "True" : "False",
      reason: phase,
      message: `phase ${phase}${rollout.engine ? `, stage ${stageRef(rollout.engine.state)?.name ?? "none yet"}` : ""}, canary ${percentOf(rollout.canaryPercent)}%`,
    },
    { type: "Paused", status: phase === Phase.Paused ? "True" : "False", reason: phase === Phase.Paused ? "Paused" : "NotPaused", message: "" },
    {
      type: "Succeeded",
      status: phase === Phase.Succeeded || phase === Phase.Finalizing || phase === Phase.Finalized ? "True" : "False",
      reason: phase,
      message: "",
    },
    {
      type: "RolledBack",
      status: phase === Phase.RolledBack || phase === Phase.Failed || (rollout.engine === null && rollout.lastRollbackAt !== null) ? "True" : "False",
      reason: rollout.lastRollbackNote ? `By${rollout.lastRollbackNote.by === "engine" ? "Engine" : "Operator"}` : phase,
      message: rollout.lastRollbackNote?.reason ?? "",
    },
    { type: "Invalid", status: "False", reason: "SpecAccepted", message: "" },
  ];
  return want.map((c) => {
    const before = previous.find((p) => p.type === c.type);
    const lastTransitionTime = before && before.status === c.status ? before.lastTransitionTime : now.toISOString();
    return { ...c, lastTransitionTime, observedGeneration: generation };
  });
}

/** The rollout an object's status records, with its decisions (null: the controller never accepted its spec). */
export function rolloutOfObject(object: ModelRolloutObject, decisions: readonly Decision[]): Rollout | null {
  const state = object.status?.state;
  if (!state) return null;
  return fromStored(state, [...decisions]);
}
