// Model identity on the data path: a rollout with `models` declares the version its stable and its canary
// answer with, and where an answer states it (a response header, or a dotted path in the JSON body). Every
// answer is counted by how its version compares:
//   modelroll.rollout.<r>.variant.<v>.model.<stable|canary|other|missing>.answers
// A canary answering another version than declared (stable's, or any other) is a wrong model behind the
// canary cluster: the worker that saw it sends the rollout's canary share to stable from then on, counted as
//   modelroll.rollout.<r>.variant.stable.model_failsafe
// until the rollout's config changes (weights or models). The parsing and comparing here are pure.
import { defineMetric, MetricType } from "./sdk/host";
import { JsonKind, JsonValue } from "./json";
import { isLowerToken, isPrintableToken, objectAt, Problems } from "./config-fields";

export const MODEL_STABLE: i32 = 0;
export const MODEL_CANARY: i32 = 1;
export const MODEL_OTHER: i32 = 2;
export const MODEL_MISSING: i32 = 3;
export const MODEL_NAMES: Array<string> = ["stable", "canary", "other", "missing"];

export class ModelsConfig {
  stable: string = "";
  canary: string = "";
  /** Dotted path into the JSON answer, or null when the version comes in a header. */
  field: Array<string> | null = null;
  /** Response header stating the version; "" when it comes in the body. */
  header: string = "";
}

/** `{stable, canary, versionField | versionHeader}`; problems are reported with their field path. */
export function parseModels(v: JsonValue, p: string, problems: Problems): ModelsConfig | null {
  const reader = objectAt(v, p, problems);
  if (reader === null) return null;
  const before = problems.count;
  const m = new ModelsConfig();
  const stable = reader.string("stable", true);
  if (stable !== null) {
    // Versions are compared as written.
    if (isPrintableToken(stable, 128)) m.stable = stable;
    else reader.problem("stable", "must be 1-128 printable characters without spaces");
  }
  const canary = reader.string("canary", true);
  if (canary !== null) {
    if (isPrintableToken(canary, 128)) m.canary = canary;
    else reader.problem("canary", "must be 1-128 printable characters without spaces");
  }
  const field = reader.string("versionField", false);
  const header = reader.string("versionHeader", false);
  if ((field === null) == (header === null)) problems.add(p + ": needs exactly one of versionField, versionHeader");
  if (field !== null) {
    const parts = field.split(".");
    let ok = field.length > 0 && field.length <= 128;
    for (let i = 0; i < parts.length; i++) if (parts[i].length == 0) ok = false;
    if (ok) m.field = parts;
    else reader.problem("versionField", "must be a dotted path like model_version or meta.version");
  }
  if (header !== null) {
    if (isLowerToken(header)) m.header = header;
    else reader.problem("versionHeader", "must be a lowercase header name");
  }
  reader.finish();
  return problems.count == before ? m : null;
}

/** The version an answer states at the field: a string as is, an integer in decimal; null otherwise. */
export function versionInDoc(doc: JsonValue | null, models: ModelsConfig): string | null {
  const path = models.field;
  if (doc === null || path === null) return null;
  let cur: JsonValue | null = doc;
  for (let i = 0; i < path.length && cur !== null; i++) cur = cur.get(path[i]);
  if (cur === null) return null;
  if (cur.kind == JsonKind.String) return cur.str;
  if (cur.kind == JsonKind.Number && isFinite(cur.num) && Math.floor(cur.num) == cur.num && Math.abs(cur.num) < 9007199254740992) {
    return (<i64>cur.num).toString();
  }
  return null;
}

/** MODEL_* for a stated version (null: the answer states none). Header values are trimmed. */
export function classifyVersion(models: ModelsConfig, version: string | null): i32 {
  if (version === null) return MODEL_MISSING;
  const v = version.trim();
  if (v.length == 0) return MODEL_MISSING;
  if (v == models.canary) return MODEL_CANARY;
  if (v == models.stable) return MODEL_STABLE;
  return MODEL_OTHER;
}

/** A canary answer of this class means another model is behind the canary cluster. */
export function isCanaryMismatch(cls: i32): bool {
  return cls == MODEL_STABLE || cls == MODEL_OTHER;
}

/** The fail-safe outlives a config update only when the rollout's routing and models are unchanged. */
export function sameIdentityConfig(a: ModelsConfig | null, b: ModelsConfig | null, aBasisPoints: u32, bBasisPoints: u32): bool {
  if (a === null || b === null || aBasisPoints != bBasisPoints) return false;
  const af = a.field;
  const bf = b.field;
  const aPath = af === null ? "" : af.join(".");
  const bPath = bf === null ? "" : bf.join(".");
  return a.stable == b.stable && a.canary == b.canary && a.header == b.header && aPath == bPath;
}

/** Metric ids of a rollout with models: answers[variant][class], and the fail-safe counter. */
export class IdentityMetrics {
  answers: Array<Array<u32>> = [];
  failsafe: u32;
  constructor(rollout: string) {
    const variants = ["stable", "canary"];
    for (let v = 0; v < 2; v++) {
      const ids = new Array<u32>(4);
      for (let k = 0; k < 4; k++)
        ids[k] = defineMetric(MetricType.Counter, "modelroll.rollout." + rollout + ".variant." + variants[v] + ".model." + MODEL_NAMES[k] + ".answers");
      this.answers.push(ids);
    }
    this.failsafe = defineMetric(MetricType.Counter, "modelroll.rollout." + rollout + ".variant.stable.model_failsafe");
  }
}
