import { defineConfig } from "vitest/config";
import { E2E, globs, UNIT } from "./test/suites.ts";

// Each project first installs the tools only tests need, for the files about to run (test/tools.setup.ts).
const TOOLS_SETUP = "test/tools.setup.ts";

// End-to-end files start real Envoy processes; on a 2-core machine running them side by side would starve
// them, so files run one after another, and the e2e project starts after the unit project has finished.
export default defineConfig({
  test: {
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "unit", include: globs(UNIT), sequence: { groupOrder: 0 }, globalSetup: [TOOLS_SETUP] } },
      { extends: true, test: { name: "e2e", include: globs(E2E), sequence: { groupOrder: 1 }, globalSetup: [TOOLS_SETUP] } },
    ],
  },
});
