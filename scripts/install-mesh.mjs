// What the Istio-mesh tests (test/mesh/) and `npm run build:image` need, installed on first need by
// scripts/test-tools.mjs (the test command's set-up), never by `npm install`. Each ensure*(root, say, fail) returns
// what it found or did, in words, says beforehand what a long step installs, and calls fail(message) (which must not
// return) when it cannot:
//  - the published schemas the manifests are validated against, from the Go module proxy (`go mod download`):
//    Istio's CRDs (istio.io/api), Kubernetes' OpenAPI v3 (k8s.io/kubernetes), the PodMonitor CRD
//    (prometheus-operator), copied into .cache/mesh/ (git-ignored). MESH_SCHEMAS_DIR=/dir skips this
//    (the dir must hold the files named in scripts/mesh-versions.mjs).
//  - oras (the OCI client that builds and copies the filter image), `go install`ed into .tools/. ORAS_BIN overrides.
//  - .tools/istio-wasm, built from tools/istio-wasm: istio-agent's own Wasm fetch and ECDS rewrite code.
//    ISTIO_WASM_BIN overrides.
//  - a real OCI registry: Debian's docker-registry package (/usr/bin/docker-registry), apt-get installed when
//    missing. REGISTRY_BIN overrides.
// Go comes from PATH (or GO=/path/to/go); a Go older than the modules need fetches its toolchain from the
// module proxy by itself (GOTOOLCHAIN=auto).
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { aptInstall } from "./apt.mjs";
import { ORAS, SCHEMA_FILES } from "./mesh-versions.mjs";

export const REGISTRY_DEFAULT_BIN = "/usr/bin/docker-registry";

function seconds(since) {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

function findGo(fail, needs) {
  const go = process.env.GO || "go";
  const r = spawnSync(go, ["version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    fail(
      `Go is needed for ${needs} (everything comes from the Go module proxy). Install Go (https://go.dev/dl, or apt-get install golang-go: an old Go fetches the newer toolchain it needs by itself) and run the tests again, or set GO=/path/to/go. Overrides that skip Go: MESH_SCHEMAS_DIR, ORAS_BIN, ISTIO_WASM_BIN.`,
    );
  }
  return go;
}

function goRun(go, args, cwd, what, fail, extraEnv = {}) {
  const r = spawnSync(go, args, { cwd, encoding: "utf8", env: { ...process.env, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0)
    fail(`${what}: '${go} ${args.join(" ")}' failed:\n${`${r.stdout ?? ""}${r.stderr ?? r.error?.message ?? ""}`.trim().split("\n").slice(-20).join("\n")}`);
  return r.stdout;
}

export function ensureSchemas(root, say, fail) {
  if (process.env.MESH_SCHEMAS_DIR) {
    const missing = Object.keys(SCHEMA_FILES).filter((f) => !existsSync(join(process.env.MESH_SCHEMAS_DIR, f)));
    if (missing.length > 0) fail(`MESH_SCHEMAS_DIR=${process.env.MESH_SCHEMAS_DIR} lacks ${missing.join(", ")}`);
    return `using the mesh schemas in MESH_SCHEMAS_DIR=${process.env.MESH_SCHEMAS_DIR}`;
  }
  const dir = join(root, ".cache", "mesh");
  const stamp = join(dir, "versions.json");
  const wanted = JSON.stringify(SCHEMA_FILES);
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === wanted && Object.keys(SCHEMA_FILES).every((f) => existsSync(join(dir, f)))) {
    return "mesh schemas already in .cache/mesh";
  }
  const go = findGo(fail, "the Istio/Kubernetes schemas the mesh manifests are validated against");
  const start = performance.now();
  mkdirSync(dir, { recursive: true });
  const dirs = new Map();
  for (const [file, [mod, path]] of Object.entries(SCHEMA_FILES)) {
    const key = `${mod.module}@${mod.version}`;
    if (!dirs.has(key)) {
      say(`go mod download ${key} (Go module proxy)`);
      const info = JSON.parse(goRun(go, ["mod", "download", "-json", key], root, `downloading ${key}`, fail));
      if (info.Error || !info.Dir) fail(`downloading ${key}: ${info.Error ?? "no directory reported"}`);
      dirs.set(key, info.Dir);
    }
    const source = join(dirs.get(key), path);
    if (!existsSync(source)) fail(`${key} has no ${path}`);
    copyFileSync(source, join(dir, file));
  }
  writeFileSync(stamp, wanted);
  return `mesh schemas copied into .cache/mesh (${seconds(start)})`;
}

function orasVersionOf(bin) {
  const r = spawnSync(bin, ["version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return null;
  const m = r.stdout.match(/Version:\s+(\S+)/);
  return m ? m[1] : "unknown";
}

export function ensureOras(root, say, fail) {
  if (process.env.ORAS_BIN) {
    const v = orasVersionOf(process.env.ORAS_BIN);
    if (v === null) fail(`ORAS_BIN=${process.env.ORAS_BIN} does not run ('version' failed)`);
    return `using ORAS_BIN=${process.env.ORAS_BIN} (oras ${v})`;
  }
  const bin = join(root, ".tools", "oras");
  if (existsSync(bin) && `v${orasVersionOf(bin)}` === ORAS.version) {
    return `oras ${ORAS.version} already at .tools/oras`;
  }
  const go = findGo(fail, "oras, the OCI client that builds the filter image");
  const start = performance.now();
  say(`go install ${ORAS.pkg}@${ORAS.version} -> .tools/oras (about a minute with empty Go caches)`);
  goRun(go, ["install", `${ORAS.pkg}@${ORAS.version}`], root, "building oras", fail, { GOBIN: join(root, ".tools") });
  return `oras ${orasVersionOf(bin)} built into .tools/oras (${seconds(start)})`;
}

/** The newest modification time under a directory (the istio-wasm sources), in ms. */
function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export function ensureIstioWasm(root, say, fail) {
  if (process.env.ISTIO_WASM_BIN) {
    if (!existsSync(process.env.ISTIO_WASM_BIN)) fail(`ISTIO_WASM_BIN=${process.env.ISTIO_WASM_BIN} does not exist`);
    return `using ISTIO_WASM_BIN=${process.env.ISTIO_WASM_BIN}`;
  }
  const bin = join(root, ".tools", "istio-wasm");
  const source = join(root, "tools", "istio-wasm");
  // Cached: built again only when a source file (or go.mod, go.sum) is newer than the binary.
  if (existsSync(bin) && statSync(bin).mtimeMs >= newestMtime(source)) return ".tools/istio-wasm already built from tools/istio-wasm";
  const go = findGo(fail, "tools/istio-wasm (istio-agent's Wasm fetch code, used by the mesh tests)");
  const start = performance.now();
  say("go build tools/istio-wasm -> .tools/istio-wasm (istio.io/istio/pkg/wasm; the first build downloads Istio's dependencies, about 1.5 min)");
  // -mod=readonly: go.mod and go.sum are committed; the build must not change them.
  goRun(go, ["build", "-mod=readonly", "-o", bin, "."], source, "building tools/istio-wasm", fail);
  return `.tools/istio-wasm built (${seconds(start)})`;
}

function registryVersionOf(bin) {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return null;
  return `${r.stdout}${r.stderr}`.trim().split("\n")[0] || "unknown";
}

export function ensureRegistry(root, say, fail) {
  if (process.env.REGISTRY_BIN) {
    const v = registryVersionOf(process.env.REGISTRY_BIN);
    if (v === null) fail(`REGISTRY_BIN=${process.env.REGISTRY_BIN} does not run ('--version' failed)`);
    return `using REGISTRY_BIN=${process.env.REGISTRY_BIN} (${v})`;
  }
  if (existsSync(REGISTRY_DEFAULT_BIN)) {
    const v = registryVersionOf(REGISTRY_DEFAULT_BIN);
    if (v === null) fail(`${REGISTRY_DEFAULT_BIN} exists but does not run; reinstall the docker-registry package or set REGISTRY_BIN`);
    return `OCI registry already at ${REGISTRY_DEFAULT_BIN} (${v})`;
  }
  const start = performance.now();
  say(
    "the OCI registry is missing: apt-get install docker-registry (Debian package, about 5 MB; the filter image tests push to it). REGISTRY_BIN=/path/to/registry uses one you have instead.",
  );
  const installed = aptInstall("docker-registry", root);
  if (!installed.ok)
    fail(
      `installing docker-registry: ${installed.message}\nInstall a Docker Distribution registry (v2) yourself and set REGISTRY_BIN=/path/to/registry, or fix the error above.`,
    );
  const v = registryVersionOf(REGISTRY_DEFAULT_BIN);
  if (v === null) fail(`apt-get installed docker-registry but ${REGISTRY_DEFAULT_BIN} does not run`);
  return `${v} installed at ${REGISTRY_DEFAULT_BIN} (${installed.note}; ${seconds(start)})`;
}
