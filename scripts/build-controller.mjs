#!/usr/bin/env node
// Compiles the controller (controller/src, TypeScript) to JavaScript in controller/dist with tsc and
// tsconfig.build.json; `npm start`, `npm run controller` and the `modelroll` command run that with plain node.
// controller/dist mirrors controller/src file for file, so paths the code computes from its own location
// (paths.ts's repoRoot, the CLI's package.json) hold for both. The output is removed first: a source file that
// was deleted leaves no module behind. Run by `npm install` (scripts/install.mjs) and `npm test`;
// `npm run build` alone.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const CONTROLLER_DIST = join(root, "controller", "dist");

export function buildController({ quiet = false } = {}) {
  const started = Date.now();
  rmSync(CONTROLLER_DIST, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json")], {
    cwd: root,
    stdio: "inherit",
  });
  if (r.error) throw new Error(`running tsc: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`'tsc -p tsconfig.build.json' exited with ${r.status} (the errors are above; nothing was written)`);
  if (!quiet) console.log(`modelroll install: controller compiled into controller/dist in ${Date.now() - started} ms`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    buildController();
  } catch (error) {
    console.error(`controller build failed: ${error.message}`);
    process.exit(1);
  }
}
