#!/usr/bin/env node
// Import cycles in a TypeScript tree, between files and between folders. Type-only imports count: a cycle
// through a type is still two modules that cannot be understood (or moved) one without the other.
//
//   node scripts/import-cycles.mjs [root]      (default root: controller/src)
//
// Prints every cycle found and exits 1 when there is one, 0 otherwise. Folders are the first path segment
// under the root (rollouts/, engine/, cli/ with cli/modelroll/ inside it); a file directly in the root
// (app.ts, errors.ts) is a unit of its own at the folder level. Imports are read with the TypeScript
// compiler's own pre-processor (import, export ... from, import(), require), so comments and strings that
// look like imports do not count.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** Every .ts file under `dir`, as paths relative to `root` with "/" separators. */
function sourceFiles(root, dir = root) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(root, path));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(relative(root, path).split(sep).join("/"));
  }
  return out;
}

/** The files under `root` that `file` imports (imports leaving the root, or of packages, are left out). */
function importsOf(root, file, known) {
  const text = readFileSync(join(root, file), "utf8");
  const { importedFiles } = ts.preProcessFile(text, true, true);
  const targets = new Set();
  for (const { fileName } of importedFiles) {
    if (!fileName.startsWith(".")) continue;
    const target = relative(root, resolve(root, dirname(file), fileName))
      .split(sep)
      .join("/");
    if (known.has(target)) targets.add(target);
  }
  return [...targets].sort();
}

/** Strongly connected components with more than one node (or a node importing itself): Tarjan's algorithm. */
function cyclesOf(graph) {
  let index = 0;
  const indices = new Map();
  const lowlinks = new Map();
  const onStack = new Set();
  const stack = [];
  const components = [];
  const visit = (node) => {
    indices.set(node, index);
    lowlinks.set(node, index);
    index += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!indices.has(next)) {
        visit(next);
        lowlinks.set(node, Math.min(lowlinks.get(node), lowlinks.get(next)));
      } else if (onStack.has(next)) {
        lowlinks.set(node, Math.min(lowlinks.get(node), indices.get(next)));
      }
    }
    if (lowlinks.get(node) === indices.get(node)) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) components.push(component.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!indices.has(node)) visit(node);
  return components.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/** One concrete loop inside a component, to print: the shortest path from its first member back to it. */
function loopThrough(graph, component) {
  const members = new Set(component);
  const start = component[0];
  const previous = new Map([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift();
    for (const next of graph.get(node) ?? []) {
      if (!members.has(next)) continue;
      if (next === start) {
        const path = [start];
        for (let at = node; at !== start; at = previous.get(at)) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return component;
}

/** Every .ts file under `root` and the files under `root` it imports, as paths relative to `root`. */
export function importGraph(root) {
  const files = sourceFiles(root);
  const known = new Set(files);
  return new Map(files.map((file) => [file, importsOf(root, file, known)]));
}

/** The folder-level unit of a file: its first path segment, or the file itself when it sits in the root. */
export function folderOf(file) {
  const slash = file.indexOf("/");
  return slash === -1 ? file : `${file.slice(0, slash)}/`;
}

/**
 * The import graph of `root` and its cycles. `edges` lists, for each folder-level import, the file imports
 * that make it (to say which import to move).
 */
export function importCycles(root) {
  const fileGraph = importGraph(root);
  const files = [...fileGraph.keys()];
  const folderGraph = new Map();
  const edges = new Map();
  for (const [file, targets] of fileGraph) {
    const from = folderOf(file);
    if (!folderGraph.has(from)) folderGraph.set(from, []);
    for (const target of targets) {
      const to = folderOf(target);
      if (to === from) continue;
      if (!folderGraph.get(from).includes(to)) folderGraph.get(from).push(to);
      const key = `${from} -> ${to}`;
      if (!edges.has(key)) edges.set(key, []);
      edges.get(key).push(`${file} -> ${target}`);
    }
  }
  const fileCycles = cyclesOf(fileGraph).map((c) => ({ members: c, loop: loopThrough(fileGraph, c) }));
  const folderCycles = cyclesOf(folderGraph).map((c) => {
    const members = new Set(c);
    // Every import inside the component: each one is part of some loop, and breaking the loops means moving some.
    const via = [];
    for (const from of c) for (const to of folderGraph.get(from)) if (members.has(to)) via.push(...edges.get(`${from} -> ${to}`));
    return { members: c, loop: loopThrough(folderGraph, c), via };
  });
  return { files: files.length, imports: [...fileGraph.values()].reduce((n, t) => n + t.length, 0), fileCycles, folderCycles };
}

function main() {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = resolve(process.argv[2] ?? join(here, "..", "controller", "src"));
  const result = importCycles(root);
  const shown = relative(process.cwd(), root) || ".";
  console.log(`${shown}: ${result.files} files, ${result.imports} imports between them`);
  for (const { members, loop } of result.fileCycles) {
    console.log(`file cycle: ${loop.join(" -> ")}`);
    if (members.length > loop.length - 1) console.log(`  (${members.length} files tied together: ${members.join(", ")})`);
  }
  for (const { members, loop, via } of result.folderCycles) {
    console.log(`folder cycle: ${loop.join(" -> ")}`);
    if (members.length > loop.length - 1) console.log(`  (${members.length} folders tied together: ${members.join(", ")})`);
    for (const edge of via) console.log(`  ${edge}`);
  }
  const total = result.fileCycles.length + result.folderCycles.length;
  console.log(total === 0 ? "no import cycles" : `${result.fileCycles.length} file cycle(s), ${result.folderCycles.length} folder cycle(s)`);
  process.exitCode = total === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
