// vitest global set-up, per project (vitest.config.ts): installs the tools only tests need (Prometheus, Chromium,
// the registry, the Go tools, the mesh schemas, the filter's test build) for the test files about to run, before
// any of them starts, so a fresh clone's `npm install` + `npm test` does the whole set-up and `npm install` itself
// installs nothing system-wide. Which file needs what: test/suites.ts, NEEDS; how each is installed and cached:
// scripts/test-tools.mjs. Installed tools cost a version check per run.
import { relative, sep } from "node:path";
import type { TestProject } from "vitest/node";
import { ensureTools, ToolError } from "../scripts/test-tools.mjs";
import { toolsFor } from "./suites.ts";

export default async function setup(project: TestProject): Promise<void> {
  // The file filters given on the command line (`vitest run test/e2e/promql.test.ts`); vitest keeps them on its
  // instance without a public name, so without them every file of the project counts.
  const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern ?? [];
  const { testFiles } = await project.globTestFiles(filters);
  const files = testFiles.map((f) => relative(project.config.root, f).split(sep).join("/"));
  const tools = toolsFor(files);
  if (tools.length === 0) return;
  try {
    ensureTools(tools);
  } catch (error) {
    // One line with the reason and what to do, instead of a stack trace from inside vitest.
    if (error instanceof ToolError) throw new Error(`the tests need a tool that could not be installed: ${error.message}`);
    throw error;
  }
}
