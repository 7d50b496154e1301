#!/usr/bin/env node
// Builds the dashboard (dashboard/src, Preact + uPlot) into build/dashboard with esbuild: one script and one
// stylesheet under assets/, named by content hash, and index.html pointing at them. No inline script or
// style (the controller's Content-Security-Policy forbids both), nothing fetched at run time.
// Run by `npm install` (scripts/install.mjs) and `npm test`; `npm run build:dashboard` alone.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export async function buildDashboard({ quiet = false } = {}) {
  const out = join(root, "build", "dashboard");
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "assets"), { recursive: true });
  const started = Date.now();
  const result = await build({
    absWorkingDir: root,
    entryPoints: { app: "dashboard/src/main.tsx" },
    bundle: true,
    format: "esm",
    target: ["chrome110", "firefox110", "safari16"],
    minify: true,
    sourcemap: false,
    jsx: "automatic",
    jsxImportSource: "preact",
    outdir: join(out, "assets"),
    entryNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    metafile: true,
    legalComments: "linked",
    logLevel: "error",
  });
  const outputs = Object.keys(result.metafile.outputs);
  const js = outputs.find((f) => f.endsWith(".js"));
  const css = outputs.find((f) => f.endsWith(".css"));
  if (!js || !css) throw new Error(`dashboard build: expected a .js and a .css output, got ${outputs.join(", ")}`);
  const html = readFileSync(join(root, "dashboard", "index.html"), "utf8")
    .replace("__JS__", basename(js))
    .replace("__CSS__", basename(css));
  writeFileSync(join(out, "index.html"), html);
  const size = (f) => (result.metafile.outputs[f].bytes / 1024).toFixed(1);
  if (!quiet)
    console.log(
      `modelroll install: dashboard built into build/dashboard (${basename(js)} ${size(js)} KiB, ${basename(css)} ${size(css)} KiB) in ${Date.now() - started} ms`,
    );
  return { dir: out, js: basename(js), css: basename(css) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildDashboard().catch((error) => {
    console.error(`dashboard build failed: ${error.message}`);
    process.exit(1);
  });
}
