// Every test file runs in exactly one of `npm run test:unit` and `npm run test:e2e` (test/suites.ts), and the
// unit list really needs none of the outside programs: a file that starts one is listed under E2E.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { TOOLS } from "../../scripts/test-tools.mjs";
import { E2E, listed, NEEDS, UNIT } from "../suites.ts";

const testFiles = readdirSync(join(repoRoot, "test"), { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".test.ts"))
  .map((f) =>
    relative(repoRoot, join(repoRoot, "test", f))
      .split(sep)
      .join("/"),
  )
  .sort();

// Calls that start Envoy (also `envoy --mode validate`), Prometheus, Chromium, an OCI registry, a Kubernetes API
// server or istiod, or a whole stack; or build an image's file layout with the toolchain (runDockerfile).
const STARTS_OUTSIDE_PROGRAM =
  /\b(startStack|startEnvoy|validateEnvoyConfig|envoyBinary|startPrometheus|launchBrowser|startRegistry|startDocStack|startMeshStack|startKubeStack|startKubeCluster|startIstiod|runDockerfile|npmStart)\b|cli\/(start|launcher)\.ts|"cli", "(start|launcher)\.ts"|spawn\("npm", \["start"/;

describe("test suites", () => {
  it("lists every test file in exactly one of unit and e2e", () => {
    expect(testFiles.length).toBeGreaterThan(50);
    const neither = testFiles.filter((f) => !listed(UNIT, f) && !listed(E2E, f));
    const both = testFiles.filter((f) => listed(UNIT, f) && listed(E2E, f));
    expect(neither, "test files in neither list of test/suites.ts").toEqual([]);
    expect(both, "test files in both lists of test/suites.ts").toEqual([]);
  });

  it("keeps files that start Envoy, Prometheus, Chromium or a registry out of the unit list", () => {
    const unitButStarts = testFiles.filter(
      (f) => listed(UNIT, f) && f !== "test/unit/suites.test.ts" && STARTS_OUTSIDE_PROGRAM.test(readFileSync(join(repoRoot, f), "utf8")),
    );
    expect(unitButStarts).toEqual([]);
    // And the e2e list is not a place to park slow unit tests: each of its files starts one of them.
    const e2eButStartsNothing = testFiles.filter((f) => listed(E2E, f) && !STARTS_OUTSIDE_PROGRAM.test(readFileSync(join(repoRoot, f), "utf8")));
    expect(e2eButStartsNothing).toEqual([]);
  });

  it("lists every file that uses a tool only tests need under that tool, so the set-up installs it first", () => {
    // What a test file calls when it uses each tool (directly, or through a stack that starts it).
    const uses: Record<string, RegExp> = {
      "filter-testing": /\b(loadFilterTesting|schema-harness|filter-testing\.ts)\b/,
      "mesh-schemas": /\b(loadManifests|ManifestValidator|startMeshStack|startIstiod|applyIstioCrds)\b/,
      prometheus: /\bstartPrometheus\b/,
      chromium: /\blaunchBrowser\b/,
      registry: /\b(startRegistry|startMeshStack)\b/,
      oras: /\b(buildImage|pushImage|orasBinary|startMeshStack)\b/,
      "istio-wasm": /\b(istioWasmBinary|agentConvert|startMeshStack)\b/,
      kube: /\b(startKubeCluster|kubeBinary)\b/,
      istiod: /\b(startIstiod|istiodBinary)\b/,
    };
    expect(Object.keys(uses).sort()).toEqual(Object.keys(NEEDS).sort());
    expect(Object.keys(TOOLS).sort(), "every tool in NEEDS is one scripts/test-tools.mjs can install").toEqual(Object.keys(NEEDS).sort());
    const unlisted = Object.entries(uses).flatMap(([tool, pattern]) =>
      testFiles
        .filter((f) => f !== "test/unit/suites.test.ts" && pattern.test(readFileSync(join(repoRoot, f), "utf8")) && !listed(NEEDS[tool], f))
        .map((f) => `${f} uses ${tool}`),
    );
    expect(unlisted, "add these to NEEDS in test/suites.ts").toEqual([]);
    expect(testFiles.filter((f) => listed(NEEDS.prometheus, f)).length, "the check sees the Prometheus tests").toBe(5);
  });
});
