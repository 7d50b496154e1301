// The install step's part for the Istio-mesh tests (test/mesh/), run by scripts/install.mjs:
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
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
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
      `Go is needed for ${needs} (everything comes from the Go module proxy). Install Go (https://go.dev/dl, or apt-get install golang-go: an old Go fetches the newer toolchain it needs by itself) and run npm install again, or set GO=/path/to/go. Overrides that skip Go: MESH_SCHEMAS_DIR, ORAS_BIN, ISTIO_WASM_BIN.`,
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

function installSchemas(root, fail) {
  if (process.env.MESH_SCHEMAS_DIR) {
    const missing = Object.keys(SCHEMA_FILES).filter((f) => !existsSync(join(process.env.MESH_SCHEMAS_DIR, f)));
    if (missing.length > 0) fail(`MESH_SCHEMAS_DIR=${process.env.MESH_SCHEMAS_DIR} lacks ${missing.join(", ")}`);
    console.log(`modelroll install: using the mesh schemas in MESH_SCHEMAS_DIR=${process.env.MESH_SCHEMAS_DIR}`);
    return;
  }
  const dir = join(root, ".cache", "mesh");
  const stamp = join(dir, "versions.json");
  const wanted = JSON.stringify(SCHEMA_FILES);
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === wanted && Object.keys(SCHEMA_FILES).every((f) => existsSync(join(dir, f)))) {
    console.log("modelroll install: mesh schemas already in .cache/mesh");
    return;
  }
  const go = findGo(fail, "the Istio/Kubernetes schemas the mesh manifests are validated against");
  const start = performance.now();
  mkdirSync(dir, { recursive: true });
  const dirs = new Map();
  for (const [file, [mod, path]] of Object.entries(SCHEMA_FILES)) {
    const key = `${mod.module}@${mod.version}`;
    if (!dirs.has(key)) {
      console.log(`modelroll install: go mod download ${key} (Go module proxy)`);
      const info = JSON.parse(goRun(go, ["mod", "download", "-json", key], root, `downloading ${key}`, fail));
      if (info.Error || !info.Dir) fail(`downloading ${key}: ${info.Error ?? "no directory reported"}`);
      dirs.set(key, info.Dir);
    }
    const source = join(dirs.get(key), path);
    if (!existsSync(source)) fail(`${key} has no ${path}`);
    copyFileSync(source, join(dir, file));
  }
  writeFileSync(stamp, wanted);
  console.log(`modelroll install: mesh schemas in .cache/mesh (${seconds(start)})`);
}

function orasVersionOf(bin) {
  const r = spawnSync(bin, ["version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return null;
  const m = r.stdout.match(/Version:\s+(\S+)/);
  return m ? m[1] : "unknown";
}

function installOras(root, fail) {
  if (process.env.ORAS_BIN) {
    const v = orasVersionOf(process.env.ORAS_BIN);
    if (v === null) fail(`ORAS_BIN=${process.env.ORAS_BIN} does not run ('version' failed)`);
    console.log(`modelroll install: using ORAS_BIN=${process.env.ORAS_BIN} (oras ${v})`);
    return;
  }
  const bin = join(root, ".tools", "oras");
  if (existsSync(bin) && `v${orasVersionOf(bin)}` === ORAS.version) {
    console.log(`modelroll install: oras ${ORAS.version} already at .tools/oras`);
    return;
  }
  const go = findGo(fail, "oras, the OCI client that builds the filter image");
  const start = performance.now();
  console.log(`modelroll install: go install ${ORAS.pkg}@${ORAS.version} -> .tools/oras`);
  goRun(go, ["install", `${ORAS.pkg}@${ORAS.version}`], root, "building oras", fail, { GOBIN: join(root, ".tools") });
  console.log(`modelroll install: oras ${orasVersionOf(bin)} at .tools/oras (${seconds(start)})`);
}

function installIstioWasm(root, fail) {
  if (process.env.ISTIO_WASM_BIN) {
    if (!existsSync(process.env.ISTIO_WASM_BIN)) fail(`ISTIO_WASM_BIN=${process.env.ISTIO_WASM_BIN} does not exist`);
    console.log(`modelroll install: using ISTIO_WASM_BIN=${process.env.ISTIO_WASM_BIN}`);
    return;
  }
  const go = findGo(fail, "tools/istio-wasm (istio-agent's Wasm fetch code, used by the mesh tests)");
  const start = performance.now();
  console.log("modelroll install: go build tools/istio-wasm -> .tools/istio-wasm (istio.io/istio/pkg/wasm; the first build downloads Istio's dependencies)");
  // -mod=readonly: go.mod and go.sum are committed; the build must not change them.
  goRun(go, ["build", "-mod=readonly", "-o", join(root, ".tools", "istio-wasm"), "."], join(root, "tools", "istio-wasm"), "building tools/istio-wasm", fail);
  console.log(`modelroll install: .tools/istio-wasm built (${seconds(start)})`);
}

function registryVersionOf(bin) {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return null;
  return `${r.stdout}${r.stderr}`.trim().split("\n")[0] || "unknown";
}

function installRegistry(root, fail) {
  if (process.env.REGISTRY_BIN) {
    const v = registryVersionOf(process.env.REGISTRY_BIN);
    if (v === null) fail(`REGISTRY_BIN=${process.env.REGISTRY_BIN} does not run ('--version' failed)`);
    console.log(`modelroll install: using REGISTRY_BIN=${process.env.REGISTRY_BIN} (${v})`);
    return;
  }
  if (existsSync(REGISTRY_DEFAULT_BIN)) {
    const v = registryVersionOf(REGISTRY_DEFAULT_BIN);
    if (v === null) fail(`${REGISTRY_DEFAULT_BIN} exists but does not run; reinstall the docker-registry package or set REGISTRY_BIN`);
    console.log(`modelroll install: OCI registry already at ${REGISTRY_DEFAULT_BIN} (${v})`);
    return;
  }
  const start = performance.now();
  console.log(
    "modelroll install: the OCI registry is missing; apt-get install docker-registry (Debian package, about 5 MB; the filter image test pushes to it)",
  );
  const installed = aptInstall("docker-registry", root);
  if (!installed.ok)
    fail(
      `installing docker-registry: ${installed.message}\nInstall a Docker Distribution registry (v2) yourself and set REGISTRY_BIN=/path/to/registry, or fix the error above.`,
    );
  const v = registryVersionOf(REGISTRY_DEFAULT_BIN);
  if (v === null) fail(`apt-get installed docker-registry but ${REGISTRY_DEFAULT_BIN} does not run`);
  console.log(`modelroll install: ${v} installed at ${REGISTRY_DEFAULT_BIN} (${installed.note}; ${seconds(start)})`);
}

export function installMesh(root, fail) {
  installSchemas(root, fail);
  installOras(root, fail);
  installIstioWasm(root, fail);
  installRegistry(root, fail);
}
