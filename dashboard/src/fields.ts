// Reading JSON of unknown shape: a field by path, and a value only when it has the expected type.
export const field = (value: unknown, ...path: string[]): unknown => {
  let at: unknown = value;
  for (const key of path) {
    if (typeof at !== "object" || at === null || Array.isArray(at)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
};
export const str = (value: unknown): string | null => (typeof value === "string" && value !== "" ? value : null);
export const num = (value: unknown): number | null => (typeof value === "number" && Number.isFinite(value) ? value : null);
export const arr = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
