#!/usr/bin/env node
// The `modelroll` command: runs the TypeScript entry point through tsx's loader (no build step yet).
// Resolved from this file's real location, so it works through npx, `npm install -g` and symlinks alike.
import { register } from "tsx/esm/api";

register();
await import("../controller/src/cli/modelroll/main.ts");
