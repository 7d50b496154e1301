/**
 * What a valid release spec leaves unprotected, for people to read before they rely on it (the rollout view's
 * `warnings`, `modelroll lint`): an engine-managed rollout with no gate at all promotes on its stages' timers
 * alone and nothing rolls it back on its own; one whose gates never run in some stage promotes that stage on
 * time alone. Refused instead when the policy says so (Policy.requireGates). Pure.
 */
import type { ErrorDetail } from "../errors.ts";
import { NO_GATES, type EngineSpec } from "./spec.ts";

export function specWarnings(spec: EngineSpec): ErrorDetail[] {
  if (spec.gates.length === 0) return [{ path: "/promotion_gates", reason: NO_GATES }];
  const warnings: ErrorDetail[] = [];
  for (const kind of ["shadow", "canary", "bake"] as const) {
    const stages = spec.stages.filter((s) => s.kind === kind);
    if (stages.length === 0 || spec.gates.some((g) => g.during.includes(kind))) continue;
    const names = stages.map((s) => s.name).join(", ");
    warnings.push({
      path: "/promotion_gates",
      reason: `no gate runs in the ${kind} stage${stages.length === 1 ? "" : "s"} (${names}): ${stages.length === 1 ? "it promotes" : "they promote"} on ${
        stages.length === 1 ? "its" : "their"
      } minimum duration and requests alone`,
    });
  }
  return warnings;
}
