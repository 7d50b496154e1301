import { defineConfig } from "vitest/config";

// End-to-end files start real Envoy processes; on a 2-core machine running them side by side
// would make the timing they print meaningless, so files run one after another.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
