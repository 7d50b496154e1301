/**
 * The two custom resources of Kubernetes mode, generated (scripts/generate-crds.ts writes
 * deploy/istio/modelrollouts.crd.yaml; a unit test fails when the file differs):
 *
 * - ModelRollout: `spec` is the rollout spec the REST API accepts (the schema /openapi.json documents,
 *   rollouts/spec-doc.ts, made structural by kube/structural.ts), without `name` (metadata.name is the name);
 *   `status` is what the controller decided, for `kubectl get`/`wait`, and the state it resumes from.
 * - ModelRolloutDecisions: a rollout's decision history in chunks of at most DECISIONS_PER_CHUNK decisions,
 *   so no object grows with the length of a rollout (etcd's limit is 1.5 MiB per object).
 */
import { RolloutSpecDoc } from "../rollouts/spec-doc.ts";
import { toStructural } from "../kube/structural.ts";

export const GROUP = "modelroll.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const ROLLOUT_KIND = "ModelRollout";
export const ROLLOUT_PLURAL = "modelrollouts";
export const DECISIONS_KIND = "ModelRolloutDecisions";
export const DECISIONS_PLURAL = "modelrolloutdecisions";

type Json = Record<string, unknown>;

const str = (description: string): Json => ({ type: "string", description });
const int = (description: string): Json => ({ type: "integer", description });
const num = (description: string): Json => ({ type: "number", description });

/** The rollout spec of the REST API, structural, without `name`. */
export function specSchema(): Json {
  const doc = toStructural(JSON.parse(JSON.stringify(RolloutSpecDoc)));
  const { name: _name, ...properties } = doc.properties as Record<string, Json>;
  return {
    ...doc,
    description: `${String(doc.description)} The rollout's name is metadata.name (a DNS label of at most 63 characters).`,
    properties,
    required: ((doc.required as string[]) ?? []).filter((n) => n !== "name"),
  };
}

const Condition: Json = {
  type: "object",
  required: ["type", "status"],
  properties: {
    type: { type: "string", enum: ["Progressing", "Paused", "Succeeded", "RolledBack", "Invalid"] },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    reason: str("One CamelCase word, e.g. StageAdvanced, GateFailed, SpecRefused."),
    message: str("In words; for Invalid, every field error as `/pointer reason`."),
    lastTransitionTime: { type: "string", format: "date-time" },
    observedGeneration: int("The spec generation this condition is about."),
  },
};

/**
 * Fencing: the leadership term (the Lease's leaseTransitions when that leader took it, and its holder) in which
 * the status was written. The API server refuses a status whose term is lower than the stored one, so a deposed
 * leader still reconciling beside the new one (argo-rollouts#2117) has every write refused.
 */
const LeaderTermSchema: Json = {
  type: "object",
  description: "The leadership term this status was written in (fencing: a status of a lower term than the stored one is refused).",
  required: ["term", "holder"],
  properties: {
    term: int("The Lease's leaseTransitions when the writing leader took it."),
    holder: str("That leader's identity."),
  },
  "x-kubernetes-validations": [{ rule: "self.term >= oldSelf.term", message: "written by a deposed leader: its term is older than the stored one" }],
};

export function statusSchema(): Json {
  return {
    type: "object",
    description: "Written by the controller only (the status subresource).",
    properties: {
      phase: str(
        "Pending, Shadowing, Canary, Baking, Paused, AwaitingReview, Succeeded, Finalizing, RolledBack, Failed (managed rollouts); Manual for a rollout without release fields; Invalid when the spec was never accepted.",
      ),
      stage: str("The current stage's name (e.g. 5%), empty before the first."),
      stageIndex: int("0-based index of the current stage; -1 before the first."),
      canaryPercent: num("The canary weight set (share of real traffic on the new model)."),
      shadowPercent: num("The share mirrored to the shadow."),
      revision: int("The REST API's ETag: moves with every change through the API and every stage or phase change."),
      observedGeneration: int("The metadata.generation the controller last acted on (accepted or refused)."),
      pending: str("The next step, in words, when it is up to someone (finalize, a review, resume); empty while the engine moves it."),
      modelVersions: {
        type: "object",
        description: "The two models' versions, when the spec declares models.",
        properties: { stable: str("Stable's version."), canary: str("The new model's version.") },
      },
      lastEvaluation: {
        type: "object",
        description: "The latest tick's gates, in short.",
        properties: {
          at: { type: "string", format: "date-time" },
          stage: str("The stage evaluated."),
          summary: str("Per gate: name=verdict, e.g. error_rate=Passed latency_p95_ms=Inconclusive."),
          blocking: { type: "array", items: { type: "string" }, description: "Why the stage is not advancing." },
        },
      },
      fieldErrors: {
        type: "array",
        description: "Why the current spec was refused (Invalid): the REST API's field errors.",
        items: { type: "object", properties: { path: str("JSON pointer into spec."), reason: str("Why.") } },
      },
      decisions: {
        type: "object",
        description: "Where the decision history is: ModelRolloutDecisions objects labelled modelroll.io/rollout=<name>.",
        properties: { count: int("Decisions recorded."), chunks: int("Objects holding them.") },
      },
      commands: {
        type: "object",
        description: "The command annotations acted on: annotation (promote, pause, ...) -> the token last acted on.",
        additionalProperties: { type: "string" },
      },
      conditions: { type: "array", items: Condition, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] },
      state: str(
        "The controller's own record of the rollout (accepted spec, engine state, weights) as JSON text, from which any replica resumes. Not an interface.",
      ),
      evaluation: str("The latest evaluation in full, as JSON text (the controller's; GET /v1/rollouts/{name} shows it)."),
      leader: LeaderTermSchema,
    },
    // Fencing (kube/lease.ts): once a status carries a term, every later one must carry one too.
    "x-kubernetes-validations": [
      { rule: "!has(oldSelf.leader) || has(self.leader)", message: "a status must carry the leader term (status.leader) once it has one" },
    ],
  };
}

const PRINTER_COLUMNS: Json[] = [
  { name: "Phase", type: "string", jsonPath: ".status.phase" },
  { name: "Stage", type: "string", jsonPath: ".status.stage" },
  { name: "Canary", type: "number", jsonPath: ".status.canaryPercent", description: "Percent of traffic on the new model" },
  { name: "Stable-Model", type: "string", jsonPath: ".status.modelVersions.stable", priority: 0 },
  { name: "Canary-Model", type: "string", jsonPath: ".status.modelVersions.canary", priority: 0 },
  { name: "Pending", type: "string", jsonPath: ".status.pending", priority: 1 },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

export function modelRolloutCrd(): Json {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${ROLLOUT_PLURAL}.${GROUP}`, labels: { "app.kubernetes.io/part-of": "modelroll" } },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: {
        kind: ROLLOUT_KIND,
        listKind: `${ROLLOUT_KIND}List`,
        plural: ROLLOUT_PLURAL,
        singular: "modelrollout",
        shortNames: ["mro"],
        categories: ["modelroll"],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: "A release of an ML model behind Envoy: weighted canary, gates, rollback (modelroll).",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec: specSchema(),
                status: statusSchema(),
              },
            },
          },
        },
      ],
    },
  };
}

export function decisionsCrd(): Json {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${DECISIONS_PLURAL}.${GROUP}`, labels: { "app.kubernetes.io/part-of": "modelroll" } },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: {
        kind: DECISIONS_KIND,
        listKind: `${DECISIONS_KIND}List`,
        plural: DECISIONS_PLURAL,
        singular: "modelrolloutdecisions",
        categories: ["modelroll"],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          additionalPrinterColumns: [
            { name: "Rollout", type: "string", jsonPath: ".rollout" },
            { name: "First", type: "integer", jsonPath: ".first" },
            { name: "Count", type: "integer", jsonPath: ".count" },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: "Written by the controller: decisions first..first+count-1 of one rollout (oldest first).",
              required: ["rollout", "first", "count", "decisions"],
              // Fencing, as for the status: a chunk that had a term keeps one, never a lower one.
              "x-kubernetes-validations": [
                { rule: "!has(oldSelf.leader) || has(self.leader)", message: "decisions must carry the leader term (leader) once they have one" },
              ],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                rollout: str("The ModelRollout's name."),
                rolloutUid: str("The ModelRollout's uid: a rollout deleted and created again under the same name starts a new history."),
                archived: int("The archive id, once the rollout was archived; absent while it is live."),
                leader: LeaderTermSchema,
                first: int("Index of the first decision here in the rollout's history (0-based)."),
                count: int("Decisions here."),
                decisions: {
                  type: "array",
                  items: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                  description: "The engine's decisions, as GET /v1/rollouts/{name}/history lists them.",
                },
              },
            },
          },
        },
      ],
    },
  };
}
