// No import cycles between the files or the folders of controller/src (scripts/import-cycles.mjs; run it by hand
// with `node scripts/import-cycles.mjs` to see the imports that make a cycle). The checker itself is tried on a
// small tree with known cycles, so a checker that finds nothing cannot pass for a clean tree. Also: the rest of
// the controller reaches the engine through engine/index.ts only.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { folderOf, importCycles as check, importGraph } from "../../scripts/import-cycles.mjs";

const scratch = mkdtempSync(join(tmpdir(), "modelroll-cycles-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function tree(name: string, files: Record<string, string>): string {
  const root = join(scratch, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe("import cycles", () => {
  it("controller/src has none, between files or between folders", () => {
    const result = check(join(__dirname, "../../controller/src"));
    expect(result.files).toBeGreaterThan(100);
    expect(result.fileCycles).toEqual([]);
    expect(result.folderCycles).toEqual([]);
  });

  it("the checker finds a file cycle made of type imports, and a folder cycle made of acyclic files", () => {
    const root = tree("cyclic", {
      // store -> persistence -> store, through a type: still a cycle.
      "rollouts/store.ts": 'import type { Saved } from "./persistence.ts";\nexport class Store {}\n',
      "rollouts/persistence.ts": 'import type { Store } from "./store.ts";\nexport type Saved = Store;\n',
      // No file imports itself back, yet the folders do: rollouts/ -> config/ -> rollouts/.
      "rollouts/view.ts": 'import { watch } from "../config/watch.ts";\nexport const view = watch;\n',
      "config/watch.ts": "export const watch = 1;\n",
      "config/routes.ts": 'import { Store } from "../rollouts/store.ts";\nexport const routes = Store;\n',
      // Not imports: a comment and a string.
      "leaf.ts": '// import "./rollouts/store.ts";\nexport const text = "import \\"./rollouts/view.ts\\"";\n',
      // A file in the root is a unit of its own at the folder level: errors.ts <- both folders is no cycle.
      "errors.ts": "export class Oops extends Error {}\n",
      "config/errors-user.ts": 'import { Oops } from "../errors.ts";\nexport const e = Oops;\n',
    });
    const result = check(root);
    expect(result.fileCycles.map((c) => c.members)).toEqual([["rollouts/persistence.ts", "rollouts/store.ts"]]);
    expect(result.folderCycles.map((c) => c.members)).toEqual([["config/", "rollouts/"]]);
    expect(result.folderCycles[0].via).toEqual(expect.arrayContaining(["rollouts/view.ts -> config/watch.ts", "config/routes.ts -> rollouts/store.ts"]));

    const run = spawnSync(process.execPath, [join(__dirname, "../../scripts/import-cycles.mjs"), root], { encoding: "utf8" });
    expect(run.status).toBe(1);
    expect(run.stdout).toContain("folder cycle: config/ -> rollouts/ -> config/");
  });

  it("each room imports only rooms of a lower layer (ARCHITECTURE.md, What may import what)", () => {
    const LAYERS: string[][] = [
      ["errors.ts", "net.ts", "paths.ts", "proc.ts", "child-process.ts", "secrets.ts", "structured-text.ts"],
      ["schema/", "metrics/", "envoy/", "prometheus/", "demo/", "kube/"],
      ["engine/"],
      ["rollouts/"],
      ["http/", "telemetry.ts"],
      ["notify/"],
      ["release/", "stats/", "events/", "series/", "filter-config/", "dashboard/", "system/", "kube-state/"],
      ["app.ts"],
      ["server.ts"],
      ["cli/"],
    ];
    const layerOf = new Map(LAYERS.flatMap((rooms, i) => rooms.map((room) => [room, i] as const)));
    const graph = importGraph(join(__dirname, "../../controller/src"));
    const unplaced = [...new Set([...graph.keys()].map(folderOf))].filter((room) => !layerOf.has(room));
    // A new room gets a place in LAYERS (and in ARCHITECTURE.md).
    expect(unplaced).toEqual([]);
    const upward: string[] = [];
    for (const [file, targets] of graph) {
      const from = folderOf(file);
      for (const target of targets) {
        const to = folderOf(target);
        if (to !== from && layerOf.get(to)! >= layerOf.get(from)!) upward.push(`${file} -> ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("outside engine/, the engine is imported through engine/index.ts (its one door)", () => {
    // The operator CLI formats values with engine/measurement.ts alone: the whole engine costs ~1 s at startup.
    const allowed = new Set(["cli/modelroll/picture.ts -> engine/measurement.ts"]);
    const around: string[] = [];
    for (const [file, targets] of importGraph(join(__dirname, "../../controller/src"))) {
      if (file.startsWith("engine/")) continue;
      for (const target of targets) {
        const edge = `${file} -> ${target}`;
        if (target.startsWith("engine/") && target !== "engine/index.ts" && !allowed.has(edge)) around.push(edge);
      }
    }
    // Export what is needed from engine/index.ts and import it from there.
    expect(around).toEqual([]);
  });

  it("the command exits 0 on controller/src", () => {
    const out = execFileSync(process.execPath, [join(__dirname, "../../scripts/import-cycles.mjs")], { encoding: "utf8" });
    expect(out).toContain("no import cycles");
  });
});
