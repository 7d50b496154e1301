#!/usr/bin/env node
// The tools only tests need, installed by the test command on first need, never by `npm install` (which installs
// what `npm start` and the `modelroll` command need, nothing system-wide). The vitest set-up (test/tools.setup.ts)
// asks for the tools of the test files about to run (test/suites.ts, NEEDS), so `npm test`, `npm run test:unit`,
// `npm run test:e2e` and `npx vitest run FILE` on a fresh machine install what those files use, once: every tool is
// cached (a binary that runs, a stamped download) and asking again costs a version check. Each tool says what it
// installs before a long step, and how long it took.
//
//   node scripts/test-tools.mjs                 every tool (prepare a machine or a CI image ahead)
//   node scripts/test-tools.mjs prometheus ...  only those (npm's prebench:* and prebuild:image scripts do this)
//
// Overrides that install nothing: PROMETHEUS_BIN, CHROMIUM_BIN, REGISTRY_BIN, ORAS_BIN, ISTIO_WASM_BIN,
// MESH_SCHEMAS_DIR, KUBE_BIN_DIR, ISTIOD_BIN (see each tool's module). Needs, when a tool is missing: apt-get as root (Debian packages), Go
// (the Go tools and the schemas, everything from the Go module proxy).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureIstiod, ensureKube } from "./install-kube.mjs";
import { ensureIstioWasm, ensureOras, ensureRegistry, ensureSchemas } from "./install-mesh.mjs";
import { ensureChromium, ensurePrometheus } from "./tools-debian.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function buildFilterTesting(_root, say, fail) {
  // The filter's pure logic with the loader's bindings, for the unit tests; `npm test` rebuilds it every run.
  if (existsSync(join(root, "build", "filter-testing.wasm"))) return "build/filter-testing.wasm already built (npm test rebuilds it)";
  say("asc filter/testing.ts -> build/filter-testing.wasm");
  const asc = join(root, "node_modules", "assemblyscript", "bin", "asc.js");
  const r = spawnSync(process.execPath, [asc, "filter/testing.ts", "--config", "asconfig.json", "--target", "testing"], { cwd: root, stdio: "inherit" });
  if (r.error || r.status !== 0) fail(`building the filter's test module: asc exited with ${r.status ?? r.error?.message}`);
  return "build/filter-testing.wasm built";
}

/** Every tool: what it is for (said when it is installed) and how to ensure it. Keys are NEEDS' keys (test/suites.ts). */
export const TOOLS = {
  "filter-testing": { what: "the filter's test build", ensure: buildFilterTesting },
  "mesh-schemas": { what: "Istio's, Kubernetes' and the PodMonitor schemas (Go module proxy)", ensure: ensureSchemas },
  prometheus: { what: "Prometheus (Debian package)", ensure: (_root, say, fail) => ensurePrometheus(say, fail) },
  chromium: { what: "Chromium (Debian package)", ensure: (_root, say, fail) => ensureChromium(say, fail) },
  registry: { what: "an OCI registry (Debian's docker-registry)", ensure: ensureRegistry },
  oras: { what: "oras, the OCI client (go install)", ensure: ensureOras },
  "istio-wasm": { what: "istio-agent's Wasm fetcher (go build tools/istio-wasm)", ensure: ensureIstioWasm },
  kube: { what: "etcd, kube-apiserver and kubectl (go build tools/kube, tools/etcd)", ensure: ensureKube },
  istiod: { what: "istiod's pilot-discovery (go build tools/istiod)", ensure: ensureIstiod },
};

export class ToolError extends Error {}

/**
 * Ensures the named tools, in TOOLS' order, printing one line per tool (what it found, or what it installed and
 * how long that took). Throws ToolError with the reason and what to do when one cannot be installed.
 */
export function ensureTools(names = Object.keys(TOOLS), log = console.log) {
  const unknown = names.filter((n) => !(n in TOOLS));
  if (unknown.length > 0) throw new ToolError(`unknown tool ${unknown.join(", ")} (known: ${Object.keys(TOOLS).join(", ")})`);
  for (const name of Object.keys(TOOLS).filter((n) => names.includes(n))) {
    const say = (text) => log(`modelroll test tools: ${name}: ${text}`);
    const fail = (message) => {
      throw new ToolError(`${name} (${TOOLS[name].what}): ${message}`);
    };
    const started = performance.now();
    const result = TOOLS[name].ensure(root, say, fail);
    const took = performance.now() - started;
    say(took >= 1000 && !/\(\d+(\.\d+)? s\)/.test(result) ? `${result} (${(took / 1000).toFixed(1)} s)` : result);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    ensureTools(process.argv.length > 2 ? process.argv.slice(2) : undefined);
  } catch (error) {
    console.error(`\nmodelroll test tools: ${error instanceof ToolError ? error.message : error.stack}\n`);
    process.exit(1);
  }
}
