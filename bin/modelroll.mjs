#!/usr/bin/env node
// The `modelroll` command: the compiled CLI in controller/dist (built by `npm install`, or `npm run build`).
// Resolved from this file's real location, so it works through npx, `npm install -g` and symlinks alike.
import { existsSync } from "node:fs";

const main = new URL("../controller/dist/cli/modelroll/main.js", import.meta.url);
if (!existsSync(main)) {
  console.error("modelroll: the controller is not built (no controller/dist): run 'npm install' or 'npm run build' in the checkout");
  process.exit(1);
}
// Stack traces point at the TypeScript source.
process.setSourceMapsEnabled(true);
await import(main.href);
