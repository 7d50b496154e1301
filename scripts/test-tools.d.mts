// Types for scripts/test-tools.mjs.
export declare const TOOLS: Record<string, { what: string }>;
export declare class ToolError extends Error {}
export declare function ensureTools(names?: string[], log?: (line: string) => void): void;
