// Types for scripts/mesh-versions.mjs (plain JS so that the install step runs before any TypeScript tooling).
export interface GoModule {
  module: string;
  version: string;
}
export declare const ISTIO_API: GoModule;
export declare const KUBERNETES: GoModule;
export declare const PROMETHEUS_OPERATOR: GoModule;
export declare const ORAS: { pkg: string; version: string };
export declare const SCHEMA_FILES: Record<string, [GoModule, string]>;
