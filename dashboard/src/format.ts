// Small formats every panel uses. Pure.

export function percent(ratio: number | null | undefined, digits?: number): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "–";
  const p = ratio * 100;
  const d = digits ?? (p === 0 ? 0 : Math.abs(p) >= 10 ? 1 : Math.abs(p) >= 1 ? 2 : 3);
  return `${p.toFixed(d)}%`;
}

/** A share already in percent (weights). */
export function pct(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return `${Number(value.toFixed(2))}%`;
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value < 10) return `${value.toFixed(2)} ms`;
  if (value < 100) return `${value.toFixed(1)} ms`;
  return `${Math.round(value)} ms`;
}

export function count(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return Math.round(value).toLocaleString("en-US");
}

export function num(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value === 0) return "0";
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const decimals = Math.max(0, digits - 1 - magnitude);
  return Number(value.toFixed(Math.min(decimals, 6))).toString();
}

/** A value in a gate's unit ("ratio" -> percent, "ms" -> milliseconds, else a plain number). */
export function inUnit(value: number | null | undefined, unit: string): string {
  if (unit === "ratio") return percent(value);
  if (unit === "ms") return ms(value);
  return num(value);
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function age(iso: string | null | undefined, now: number): string {
  if (!iso) return "–";
  const at = Date.parse(iso);
  return Number.isFinite(at) ? duration((now - at) / 1000) : "–";
}

export function time(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return "–";
  const d = new Date(iso);
  if (!Number.isFinite(d.getTime())) return "–";
  return d
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

export function clockTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return "–";
  const d = new Date(iso);
  return Number.isFinite(d.getTime()) ? d.toISOString().slice(11, 19) : "–";
}

const PHASE_ICONS: Record<string, string> = {
  Pending: "○",
  Shadowing: "◐",
  Canary: "◑",
  Baking: "◕",
  Paused: "‖",
  AwaitingReview: "✎",
  Succeeded: "✔",
  Finalizing: "✔",
  Finalized: "✔",
  RolledBack: "↩",
  Failed: "✘",
};

export function phaseIcon(phase: string | null | undefined): string {
  return phase ? (PHASE_ICONS[phase] ?? "•") : "≡";
}

/** A CSS class for a phase's color. */
export function phaseTone(phase: string | null | undefined): string {
  switch (phase) {
    case "Succeeded":
    case "Finalizing":
    case "Finalized":
      return "good";
    case "RolledBack":
    case "Failed":
      return "bad";
    case "Paused":
    case "AwaitingReview":
      return "warn";
    case null:
    case undefined:
      return "plain";
    default:
      return "active";
  }
}

export function verdictIcon(verdict: string): string {
  return verdict === "Passed" ? "✔" : verdict === "Failed" ? "✘" : verdict === "Error" ? "⚠" : verdict === "Inconclusive" ? "?" : "·";
}
