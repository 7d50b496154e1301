// Which test files need the real outside programs and which need none. `npm run test:unit` runs UNIT (no Envoy,
// no Prometheus, no Chromium, no registry: Node, the compiled filter's wasm and loopback servers the test starts
// itself), `npm run test:e2e` runs E2E, `npm test` runs both. An entry ending in "/" is a whole folder.
// test/unit/suites.test.ts fails when a test file is in neither list or in both.

export const E2E = [
  "test/e2e/",
  "test/kube/",
  "test/leader/",
  "test/mesh/ecds.test.ts",
  "test/mesh/gitops.test.ts",
  "test/mesh/image.test.ts",
  "test/mesh/controller-image.test.ts",
  "test/cli/commands.test.ts",
  "test/cli/watch-status.test.ts",
  "test/cli/release.test.ts",
  "test/docs/readme.test.ts",
] as const;

export const UNIT = [
  "test/unit/",
  "test/engine/",
  "test/controller/",
  "test/notify/",
  "test/release/",
  "test/mesh/manifests.test.ts",
  "test/cli/errors.test.ts",
  "test/cli/lint.test.ts",
  "test/cli/hostile-files.test.ts",
  "test/cli/pure.test.ts",
  "test/cli/visibility.test.ts",
  "test/docs/markdown.test.ts",
  "test/docs/openapi.test.ts",
  "test/docs/links.test.ts",
] as const;

/** The entries as vitest include globs. */
export const globs = (entries: readonly string[]): string[] => entries.map((e) => (e.endsWith("/") ? `${e}**/*.test.ts` : e));

/** Whether a repository-relative path (forward slashes) is one of the entries. */
export const listed = (entries: readonly string[], file: string): boolean => entries.some((e) => (e.endsWith("/") ? file.startsWith(e) : file === e));

/**
 * The tools only tests need (scripts/test-tools.mjs, TOOLS) and the files that use each: test/tools.setup.ts
 * installs, before a run, the tools of the files about to run, so `npm install` never installs them.
 * test/unit/suites.test.ts fails when a file uses a tool it is not listed under here.
 */
export const NEEDS: Record<string, readonly string[]> = {
  "filter-testing": ["test/unit/", "test/e2e/schema.test.ts", "test/e2e/llm-route.test.ts", "test/kube/istiod-delivery.test.ts"],
  "mesh-schemas": ["test/mesh/", "test/kube/"],
  prometheus: [
    "test/e2e/promql.test.ts",
    "test/e2e/prometheus-driver.test.ts",
    "test/e2e/prometheus-counts.test.ts",
    "test/e2e/stage-window-prometheus.test.ts",
    "test/e2e/resource-usage.test.ts",
  ],
  chromium: ["test/e2e/dashboard.test.ts", "test/e2e/dashboard-visibility.test.ts"],
  registry: ["test/mesh/ecds.test.ts", "test/mesh/gitops.test.ts", "test/mesh/image.test.ts"],
  oras: ["test/mesh/ecds.test.ts", "test/mesh/gitops.test.ts", "test/mesh/image.test.ts"],
  "istio-wasm": ["test/mesh/ecds.test.ts", "test/mesh/gitops.test.ts", "test/mesh/image.test.ts"],
  kube: ["test/kube/", "test/leader/"],
  istiod: ["test/kube/istiod.test.ts", "test/kube/istiod-delivery.test.ts"],
};

/** The tools the given test files (repository-relative, forward slashes) need, by NEEDS. */
export const toolsFor = (files: readonly string[]): string[] => Object.keys(NEEDS).filter((tool) => files.some((f) => listed(NEEDS[tool], f)));
