// Text building blocks for the renderers: colors (or none), aligned tables, JSON/YAML documents, and the
// small formats (percent, age, duration) every view uses. Pure.
import { stringify as toYaml } from "yaml";
import type { Output } from "./plan.ts";

export interface Paint {
  enabled: boolean;
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  blue(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const sgr = (enabled: boolean, open: number, close: number) => (text: string) => (enabled && text !== "" ? `\x1b[${open}m${text}\x1b[${close}m` : text);

export function paint(enabled: boolean): Paint {
  return {
    enabled,
    green: sgr(enabled, 32, 39),
    red: sgr(enabled, 31, 39),
    yellow: sgr(enabled, 33, 39),
    blue: sgr(enabled, 34, 39),
    dim: sgr(enabled, 2, 22),
    bold: sgr(enabled, 1, 22),
  };
}

// eslint-disable-next-line no-control-regex
// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is the character this matches (SGR colour codes).
const ANSI = /\x1b\[[0-9;]*m/g;
const visibleLength = (text: string) => [...text.replace(ANSI, "")].length;

/** Columns padded to the widest cell (color codes not counted); the last column is not padded. */
export function table(header: string[], rows: string[][], p: Paint): string {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ""))));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + " ".repeat(Math.max(0, (widths[i] ?? 0) - visibleLength(cell)))))
      .join("   ")
      .trimEnd();
  return `${[p.bold(line(header)), ...rows.map(line)].join("\n")}\n`;
}

/** A data document in the asked format; null when the caller renders a table itself. */
export function document(value: unknown, output: Output): string | null {
  return output === "json" || output === "yaml" ? serialize(value, output) : null;
}

export function serialize(value: unknown, format: "json" | "yaml"): string {
  return format === "json" ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value, { lineWidth: 0 });
}

export function percent(value: unknown): string {
  if (typeof value !== "number" || !Number.isFinite(value)) return "-";
  return `${Math.round(value * 100) / 100}%`;
}

/** A ratio (0.0123) as a percent with up to two decimals ("1.23%"). */
export function ratio(value: unknown): string {
  return typeof value === "number" && Number.isFinite(value) ? percent(value * 100) : "-";
}

/** 45s, 3m12s, 2h5m, 3d4h: the two largest units. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "-";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ""}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ""}`;
  const d = Math.floor(h / 24);
  return `${d}d${h % 24 ? `${h % 24}h` : ""}`;
}

/** How long ago an ISO time (or epoch ms) was, from `now`. */
export function age(at: unknown, now: number): string {
  const ms = typeof at === "number" ? at : typeof at === "string" ? Date.parse(at) : NaN;
  return Number.isFinite(ms) ? duration(Math.max(0, now - ms)) : "-";
}

/** 1234567 -> "1,234,567" (locale-independent, so tests and CI logs read the same). */
export function count(value: unknown): string {
  if (typeof value !== "number" || !Number.isFinite(value)) return "-";
  return String(Math.round(value)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function clip(text: string, max: number): string {
  return [...text].length <= max ? text : `${[...text].slice(0, max - 1).join("")}…`;
}

/** A field of an object of unknown shape, or undefined. */
export function field(value: unknown, ...path: string[]): unknown {
  let at: unknown = value;
  for (const key of path) {
    if (typeof at !== "object" || at === null || Array.isArray(at)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

export const str = (value: unknown): string | null => (typeof value === "string" && value !== "" ? value : null);
export const num = (value: unknown): number | null => (typeof value === "number" && Number.isFinite(value) ? value : null);
export const arr = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
