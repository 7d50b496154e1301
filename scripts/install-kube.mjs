// The Kubernetes tools only the Kubernetes-mode tests need (test/kube/), installed on first need by
// scripts/test-tools.mjs, never by `npm install`. Both are Go builds of small wrapper modules kept in tools/ (their
// go.mod and go.sum are committed, so every machine builds the same versions), from the Go module proxy:
//  - "kube": .tools/kube/{etcd,kube-apiserver,kubectl}. tools/kube requires k8s.io/kubernetes and replaces each of
//    its staging modules (k8s.io/api, k8s.io/client-go, ...) with the published k8s.io/<name> of the same minor
//    release, as that module's own go.mod points them at a local staging/ directory a module download lacks.
//    The version is stamped with -ldflags (kubectl refuses a server whose version it cannot parse). tools/etcd
//    runs etcdmain.Main from go.etcd.io/etcd/server/v3. KUBE_BIN_DIR=/dir (holding those three files) overrides.
//  - "istiod": .tools/istiod/pilot-discovery from tools/istiod, the same istio.io/istio version as
//    tools/istio-wasm. ISTIOD_BIN overrides.
// Each build is cached: a stamp beside the binaries holds a hash of the module's sources, so a build happens once
// per source change (a merge or a fresh checkout that leaves the files alike builds nothing). Builds go to a
// temporary directory first and are renamed into place, so two test runs building at once never see half a file.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

export const KUBE_BINARIES = ["etcd", "kube-apiserver", "kubectl"];

function seconds(since) {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

function findGo(fail, needs, overrides) {
  const go = process.env.GO || "go";
  const r = spawnSync(go, ["version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    fail(
      `Go is needed for ${needs} (built from the Go module proxy). Install Go (https://go.dev/dl, or apt-get install golang-go: an old Go fetches the newer toolchain it needs by itself) and run the tests again, or set GO=/path/to/go. ${overrides}`,
    );
  }
  return go;
}

function goRun(go, args, cwd, what, fail) {
  const r = spawnSync(go, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0)
    fail(`${what}: '${go} ${args.join(" ")}' failed:\n${`${r.stdout ?? ""}${r.stderr ?? r.error?.message ?? ""}`.trim().split("\n").slice(-20).join("\n")}`);
}

/** A hash of every file under the module directories (names and contents) and of the build's flags. */
function sourceHash(dirs, extra) {
  const hash = createHash("sha256").update(extra);
  const walk = (base, dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(base, path);
      else
        hash
          .update(`${relative(base, path)}\0`)
          .update(readFileSync(path))
          .update("\0");
    }
  };
  for (const dir of dirs) walk(join(dir, ".."), dir);
  return hash.digest("hex");
}

const built = (dir, names, stamp) =>
  names.every((n) => existsSync(join(dir, n))) && existsSync(join(dir, "stamp")) && readFileSync(join(dir, "stamp"), "utf8") === stamp;

/** Moves the freshly built files of `tmp` into `dir`, then writes the stamp. */
function install(tmp, dir, names, stamp) {
  for (const n of names) renameSync(join(tmp, n), join(dir, n));
  writeFileSync(join(dir, "stamp"), stamp);
  rmSync(tmp, { recursive: true, force: true });
}

/** The Kubernetes version tools/kube builds (its require of k8s.io/kubernetes). */
export function kubeVersion(root) {
  const m = readFileSync(join(root, "tools", "kube", "go.mod"), "utf8").match(/^\s*k8s\.io\/kubernetes (v\S+)/m);
  if (!m) throw new Error("tools/kube/go.mod does not require k8s.io/kubernetes");
  return m[1];
}

export function ensureKube(root, say, fail) {
  if (process.env.KUBE_BIN_DIR) {
    const missing = KUBE_BINARIES.filter((n) => !existsSync(join(process.env.KUBE_BIN_DIR, n)));
    if (missing.length > 0) fail(`KUBE_BIN_DIR=${process.env.KUBE_BIN_DIR} lacks ${missing.join(", ")}`);
    return `using etcd, kube-apiserver and kubectl in KUBE_BIN_DIR=${process.env.KUBE_BIN_DIR}`;
  }
  const version = kubeVersion(root);
  // -s -w: no symbol table or DWARF (a third smaller); the version stamp makes kubectl accept the server.
  const ldflags = `-s -w -X k8s.io/component-base/version.gitVersion=${version}`;
  const sources = [join(root, "tools", "kube"), join(root, "tools", "etcd")];
  const stamp = sourceHash(sources, ldflags);
  const dir = join(root, ".tools", "kube");
  if (built(dir, KUBE_BINARIES, stamp)) return `etcd, kube-apiserver and kubectl ${version} already built in .tools/kube`;
  const go = findGo(fail, "etcd, kube-apiserver and kubectl (the Kubernetes-mode tests)", "KUBE_BIN_DIR=/dir with those three binaries skips Go.");
  const start = performance.now();
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.build-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  say(`go build tools/etcd -> .tools/kube/etcd (about 1 min with empty Go caches)`);
  // -mod=readonly: go.mod and go.sum are committed; the build must not change them.
  goRun(go, ["build", "-mod=readonly", "-ldflags", "-s -w", "-o", join(tmp, "etcd"), "."], sources[1], "building tools/etcd", fail);
  say(`go build tools/kube -> .tools/kube/{kube-apiserver,kubectl} ${version} (about 5 min on 2 cores with empty Go caches, under 1 min with warm ones)`);
  goRun(go, ["build", "-mod=readonly", "-ldflags", ldflags, "-o", `${tmp}/`, "./cmd/kube-apiserver", "./cmd/kubectl"], sources[0], "building tools/kube", fail);
  install(tmp, dir, KUBE_BINARIES, stamp);
  return `etcd, kube-apiserver and kubectl ${version} built into .tools/kube (${seconds(start)})`;
}

export function ensureIstiod(root, say, fail) {
  if (process.env.ISTIOD_BIN) {
    if (!existsSync(process.env.ISTIOD_BIN) || !statSync(process.env.ISTIOD_BIN).isFile()) fail(`ISTIOD_BIN=${process.env.ISTIOD_BIN} is not a file`);
    return `using ISTIOD_BIN=${process.env.ISTIOD_BIN}`;
  }
  const source = join(root, "tools", "istiod");
  const stamp = sourceHash([source], "-s -w");
  const dir = join(root, ".tools", "istiod");
  if (built(dir, ["pilot-discovery"], stamp)) return "pilot-discovery already built in .tools/istiod";
  const go = findGo(fail, "istiod's pilot-discovery (the mesh tests' control plane)", "ISTIOD_BIN=/path/to/pilot-discovery skips Go.");
  const start = performance.now();
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.build-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  say("go build tools/istiod -> .tools/istiod/pilot-discovery (about 5 min on 2 cores with empty Go caches)");
  goRun(go, ["build", "-mod=readonly", "-ldflags", "-s -w", "-o", join(tmp, "pilot-discovery"), "."], source, "building tools/istiod", fail);
  install(tmp, dir, ["pilot-discovery"], stamp);
  return `pilot-discovery built into .tools/istiod (${seconds(start)})`;
}
