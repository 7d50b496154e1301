// Which model is which, and over which window the observed share was measured, read from the view (or the
// stream's summary): the controller's `variants` (declared versions, else the upstreams each variant reaches)
// and the latest evaluation's window. Pure, tolerant of controllers that lack the fields.
import { arr, field, num, str } from "./fields.ts";
import { duration } from "./format.ts";

const ENDED = new Set(["Succeeded", "Finalizing", "Finalized", "RolledBack", "Failed"]);

/** One variant, short: its declared version, else its hosts, else "?". */
function short(v: unknown): string {
  const model = str(field(v, "model"));
  if (model) return model;
  const hosts = arr(field(v, "upstreams")).filter((h): h is string => typeof h === "string");
  if (hosts.length === 0) return "?";
  return hosts.length === 1 ? (hosts[0] ?? "?") : `${hosts[0]} +${hosts.length - 1}`;
}

/** "stable v1 at 127.0.0.1:9001 · canary v2 at ..." and "v1 → v2"; null when the controller says nothing. */
export function modelsOf(...sources: unknown[]): { models: string | null; modelsShort: string | null } {
  for (const source of sources) {
    const variants = field(source, "variants");
    const text = str(field(variants, "text"));
    if (text) return { models: text, modelsShort: `${short(field(variants, "stable"))} → ${short(field(variants, "canary"))}` };
  }
  for (const source of sources) {
    const stable = str(field(source, "spec", "models", "stable"));
    const canary = str(field(source, "spec", "models", "canary"));
    if (stable && canary) return { models: `stable ${stable} · canary ${canary}`, modelsShort: `${stable} → ${canary}` };
  }
  return { models: null, modelsShort: null };
}

export interface ObservedWindow {
  stage: string | null;
  seconds: number | null;
  /** The rollout has ended: the share is its last stage's, not measured since. */
  ended: boolean;
}

/** The window the evaluation's observed share covers: windowStartedAt to the evaluation's time. */
export function observedWindowOf(evaluation: unknown, phase: string | null): ObservedWindow | null {
  if (num(field(evaluation, "observedCanaryPercent")) === null) return null;
  const from = Date.parse(str(field(evaluation, "windowStartedAt")) ?? "");
  const atText = field(evaluation, "at");
  const to = typeof atText === "number" ? atText : Date.parse(str(atText) ?? "");
  return {
    stage: str(field(evaluation, "stage", "name")),
    seconds: Number.isFinite(from) && Number.isFinite(to) ? Math.max(0, (to - from) / 1000) : null,
    ended: ENDED.has(phase ?? ""),
  };
}

/** "over stage 10%'s window (2m 10s), before it ended; not measured since": so a past share does not read as now. */
export function observedWindowText(w: ObservedWindow): string {
  const window = `over ${w.stage ? `stage ${w.stage}'s` : "the stage's"} window${w.seconds !== null ? ` (${duration(w.seconds)})` : ""}`;
  return w.ended ? `${window}, before it ended; not measured since` : window;
}
