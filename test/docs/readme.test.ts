// The docs are executable truth: every command and spec block in README.md and docs/**/*.md (docs/notes/ aside,
// test/docs/doc-files.ts) runs against the real `npm start` (demo models, controller, Envoy with the filter) on free
// ports, the addresses the pages use mapped to them. Shell blocks and inline curl commands must exit 0 with a 2xx for every call; spec blocks must
// be accepted (a part of a spec, inside a minimal spec around it); a managed example must state its traffic
// (expectedTraffic), is sent exactly that through Envoy, and must reach Succeeded; console sessions run command
// by command and must print what the README shows (numbers aside). A block this test cannot run must say why
// with `<!-- doc-test: skip: why -->` right above it, or the first test fails: no example slips in untested.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it, type ExpectStatic } from "vitest";
import { ENGINE_SPEC_KEYS, isTerminal } from "../../controller/src/engine/index.ts";
import { parseModelsFile } from "../../controller/src/cli/models-file.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { RolloutSpec } from "../../controller/src/rollouts/schemas.ts";
import { curlShim, missingLines, runScript, startBackground, type Background } from "./commands.ts";
import { docFiles } from "./doc-files.ts";
import { classify, extractBlocks, extractInlineCurl, substituteAddresses, type Block, type Classified, type ConsoleCommand } from "./markdown.ts";
import { startDocStack, type DocStack } from "./stack.ts";
import { startTraffic, type Traffic } from "./traffic.ts";

const SPEC_KEYS = Object.keys(RolloutSpec.properties);
const DOC_FILES = docFiles(repoRoot);

type Item =
  | { label: string; line: number; kind: "shell"; script: string; curls: number }
  | { label: string; line: number; kind: "console"; commands: ConsoleCommand[] }
  | { label: string; line: number; kind: "spec"; spec: Record<string, unknown>; text: string; acceptOnly?: string }
  | { label: string; line: number; kind: "fragment"; fragment: Record<string, unknown> }
  | { label: string; line: number; kind: "models-file"; text: string };

interface Collected {
  items: Item[];
  skipped: Array<{ where: string; reason: string }>;
  unrunnable: string[];
}

/** The runnable items in reading order; consecutive console blocks of one section are one session. */
function collect(): Collected {
  const items: Item[] = [];
  const skipped: Collected["skipped"] = [];
  const unrunnable: string[] = [];
  for (const file of DOC_FILES) {
    const markdown = readFileSync(join(repoRoot, file), "utf8");
    const entries: Array<{ line: number; block?: Block; c: Classified; section: string; inline?: string }> = [
      ...extractBlocks(markdown, file).map((block) => ({ line: block.line, block, c: classify(block, SPEC_KEYS), section: block.section })),
      ...extractInlineCurl(markdown, file).map((cmd) => ({
        line: cmd.line,
        c: { kind: "shell", script: cmd.text, curls: 1 } as Classified,
        section: cmd.section,
        inline: cmd.text,
      })),
    ].sort((a, b) => a.line - b.line);
    let previous: Item | null = null;
    let previousSection = "";
    for (const { line, c, section, inline } of entries) {
      const where = `${file}:${line}`;
      const label = `${where} (${section})`;
      let item: Item | null = null;
      switch (c.kind) {
        case "skip":
          skipped.push({ where, reason: c.reason });
          break;
        case "unrunnable":
          unrunnable.push(`${where}: ${c.why}`);
          break;
        case "console":
          if (previous?.kind === "console" && previousSection === section) {
            previous.commands.push(...c.commands);
            continue;
          }
          item = { label: `${label}: modelroll session`, line, kind: "console", commands: [...c.commands] };
          break;
        case "shell":
          item = { label: `${label}: ${inline ? `inline \`${inline.slice(0, 50)}\`` : "shell block"}`, line, kind: "shell", script: c.script, curls: c.curls };
          break;
        case "spec":
          item = {
            label: `${label}: spec ${String(c.spec.name)}${c.acceptOnly ? " (created only)" : ""}`,
            line,
            kind: "spec",
            spec: c.spec,
            text: c.text,
            ...(c.acceptOnly ? { acceptOnly: c.acceptOnly } : {}),
          };
          break;
        case "fragment":
          item = { label: `${label}: spec part ${Object.keys(c.fragment).join(", ")}`, line, kind: "fragment", fragment: c.fragment };
          break;
        case "models-file":
          item = { label: `${label}: models file`, line, kind: "models-file", text: c.text };
          break;
      }
      if (item) items.push(item);
      previous = item ?? previous;
      previousSection = section;
    }
  }
  return { items, skipped, unrunnable };
}

const collected = collect();
const summary: string[] = [];

describe("the README's examples", () => {
  it("are each run by this test, or marked with why CI cannot run them", () => {
    expect(collected.unrunnable, "blocks with neither a runner nor a <!-- doc-test: skip: why --> marker").toEqual([]);
    expect(collected.items.length).toBeGreaterThan(0);
    for (const s of collected.skipped) expect(s.reason.length, `${s.where}: a skip marker says why`).toBeGreaterThan(10);
  });

  describe("run against npm start", () => {
    // Two stacks: the examples that take minutes (a managed rollout at its stated traffic, a modelroll session)
    // run side by side, one per stack; everything else runs first, in reading order, on the first.
    let main: DocStack;
    let sessions: DocStack;
    let workDir: string;
    let bin: string;
    const envFor = (stack: DocStack): Record<string, string> => {
      const env: Record<string, string> = {
        ...(process.env as Record<string, string>),
        PATH: `${bin}:${process.env.PATH}`,
        MODELROLL_SERVER: stack.controllerUrl,
        NO_COLOR: "1",
      };
      for (const key of Object.keys(env)) if (key.startsWith("MODELROLL_") && key !== "MODELROLL_SERVER") delete env[key];
      return env;
    };

    beforeAll(async () => {
      [main, sessions] = await Promise.all([startDocStack(), startDocStack()]);
      // Sessions run inside the repository (gitignored .tmp/), where `npx modelroll` finds the project's command.
      mkdirSync(join(repoRoot, ".tmp"), { recursive: true });
      workDir = mkdtempSync(join(repoRoot, ".tmp", "doc-test-"));
      bin = curlShim(join(workDir, "bin"), execFileSync("sh", ["-c", "command -v curl"]).toString().trim());
    }, 120_000);

    afterAll(async () => {
      await Promise.all([main?.stop(), sessions?.stop()]);
      if (workDir) rmSync(workDir, { recursive: true, force: true });
      const counts: Record<string, number> = {};
      for (const i of collected.items) counts[i.kind] = (counts[i.kind] ?? 0) + 1;
      console.log(
        [
          `doc test: ran ${collected.items.length} items (${Object.entries(counts)
            .map(([k, n]) => `${n} ${k}`)
            .join(", ")}), skipped ${collected.skipped.length}:`,
          ...collected.skipped.map((s) => `  skipped ${s.where}: ${s.reason}`),
          ...collected.items.flatMap((i) => (i.kind === "spec" && i.acceptOnly ? [`  created only ${i.label}: ${i.acceptOnly}`] : [])),
          ...summary,
        ].join("\n"),
      );
    }, 60_000);

    const long = (item: Item) => item.kind === "console" || (item.kind === "spec" && isManaged(item.spec) && !item.acceptOnly);
    for (const item of collected.items.filter((i) => !long(i))) {
      it(item.label, async () => {
        await main.reset();
        if (item.kind === "shell") return runShellItem(expect, item, main, envFor(main), workDir);
        if (item.kind === "fragment") return runFragment(expect, item, main);
        if (item.kind === "models-file") return runModelsFile(expect, item);
        if (item.kind === "spec") return runSpec(expect, item, main);
      }, 120_000);
    }
    // One at a time per stack; the two stacks' queues side by side.
    const queues = new Map<string, Promise<unknown>>();
    const inTurn = <T>(queue: string, run: () => Promise<T>): Promise<T> => {
      const turn = (queues.get(queue) ?? Promise.resolve()).catch(() => undefined).then(run);
      queues.set(queue, turn);
      return turn;
    };
    for (const item of collected.items.filter(long)) {
      it.concurrent(
        item.label,
        async ({ expect }) => {
          if (item.kind === "console") {
            return inTurn("sessions", async () => {
              await sessions.reset();
              return runSession(expect, item, sessions, envFor(sessions), workDir);
            });
          }
          if (item.kind === "spec") {
            return inTurn("main", async () => {
              await main.reset();
              return runSpec(expect, item, main);
            });
          }
        },
        20 * 60_000,
      );
    }
  });
});

async function runShellItem(
  expect: ExpectStatic,
  item: Extract<Item, { kind: "shell" }>,
  stack: DocStack,
  env: Record<string, string>,
  cwd: string,
): Promise<void> {
  const ran = await runScript(substituteAddresses(item.script, stack.portMap), { cwd, env, timeoutMs: 60_000 });
  expect(ran.code, `exit status; output:\n${ran.output}`).toBe(0);
  expect(ran.statuses.length, `every curl command ran; output:\n${ran.output}`).toBe(item.curls);
  expect(
    ran.statuses.filter((s) => s < 200 || s > 299),
    `HTTP statuses other than 2xx; output:\n${ran.output}`,
  ).toEqual([]);
}

const isManaged = (spec: Record<string, unknown>) => ENGINE_SPEC_KEYS.some((k) => k in spec);

/** A part of a spec, inside the smallest spec around it (a managed one when the part is about the release process). */
async function runFragment(expect: ExpectStatic, item: Extract<Item, { kind: "fragment" }>, stack: DocStack): Promise<void> {
  const name = `doc-line-${item.line}`;
  const base: Record<string, unknown> = { name, match: { pathPrefix: `/${name}` }, stickyKey: { header: "x-user-id" } };
  if (isManaged(item.fragment)) {
    Object.assign(base, {
      owner: "team-fraud",
      rollbackCondition: "canary error rate above 1%",
      stages: [10, 100],
      promotion_gates: { error_rate: { maximum: 0.01 } },
    });
  }
  const spec = { ...base, ...item.fragment };
  const res = await fetch(`${stack.controllerUrl}/v1/rollouts`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(spec),
  });
  expect(res.status, `${JSON.stringify(spec)} -> ${await res.clone().text()}`).toBe(201);
}

/** A models file for `npm start -- --models`: what npm start reads it with accepts it, every model listed. */
function runModelsFile(expect: ExpectStatic, item: Extract<Item, { kind: "models-file" }>): void {
  const models = parseModelsFile(item.text, `README line ${item.line}`);
  const listed = (parseYaml(item.text) as { models: Array<{ name: string }> }).models.map((m) => m.name);
  expect(models.map((m) => m.name)).toEqual(listed);
}

async function runSpec(expect: ExpectStatic, item: Extract<Item, { kind: "spec" }>, stack: DocStack): Promise<void> {
  const spec = item.spec as {
    name: string;
    match: { pathPrefix: string };
    stickyKey: { header: string };
    expectedTraffic?: { requestsPerSecond: number };
    segments?: Array<{ header?: string; values?: string[] }>;
  };
  const managed = isManaged(spec) && !item.acceptOnly;
  const rps = spec.expectedTraffic?.requestsPerSecond;
  if (managed) expect(rps, "a managed example states the traffic it needs (expectedTraffic.requestsPerSecond)").toBeGreaterThan(0);
  const traffic = managed ? startTraffic(trafficFor(spec, stack, rps!)) : null;
  try {
    const res = await fetch(`${stack.controllerUrl}/v1/rollouts`, { method: "POST", headers: { "content-type": "application/yaml" }, body: item.text });
    const created = await res.json();
    expect(res.status, JSON.stringify(created)).toBe(201);
    if (!managed) return;
    const view = await untilEnded(stack, spec.name, 15 * 60_000);
    const history = (await (await fetch(`${stack.controllerUrl}/v1/rollouts/${spec.name}/history`)).json()) as {
      decisions: Array<{ at: number; kind: string; reason: string }>;
    };
    const steps = history.decisions.filter((d) => d.kind !== "held").map((d) => `    ${d.kind}: ${d.reason}`);
    summary.push(`  ${item.label}: ${view.phase} at ${rps} requests/s (forecast at create: ${forecastOf(created)})`, ...steps);
    expect(view.phase, `the example ends Succeeded at its stated traffic; it ended ${view.phase}: ${history.decisions.at(-1)?.reason}`).toBe("Succeeded");
  } finally {
    await traffic?.stop();
  }
  // The stated traffic was answered: an example cannot pass on a data path that refused it.
  expect(
    [...traffic!.counts.keys()].filter((status) => status !== 200),
    `answers by status: ${JSON.stringify([...traffic!.counts])}`,
  ).toEqual([]);
}

function trafficFor(
  spec: { match: { pathPrefix: string }; stickyKey: { header: string }; segments?: Array<{ header?: string; values?: string[] }> },
  stack: DocStack,
  rps: number,
) {
  const headerSegments = (spec.segments ?? []).filter((s) => s.header && s.values && s.values.length > 0);
  return {
    url: `${stack.dataUrl}${spec.match.pathPrefix}`,
    requestsPerSecond: rps,
    stickyHeader: spec.stickyKey.header,
    users: 10_000,
    headers: (i: number) => Object.fromEntries(headerSegments.map((s) => [s.header!, s.values![i % s.values!.length]])),
  };
}

function forecastOf(view: { forecast?: { stages: Array<{ stage: string; seconds: number | null }> } | null }): string {
  const stages = view.forecast?.stages ?? [];
  if (stages.length === 0) return "none";
  const total = stages.reduce((sum, s) => (s.seconds === null || sum === null ? null : sum + s.seconds), 0 as number | null);
  return `${stages.map((s) => `${s.stage} ${s.seconds ?? "?"} s`).join(", ")}; total ${total ?? "?"} s`;
}

async function untilEnded(stack: DocStack, name: string, boundMs: number): Promise<{ phase: string }> {
  const start = Date.now();
  for (;;) {
    const view = (await (await fetch(`${stack.controllerUrl}/v1/rollouts/${name}`)).json()) as { phase: string };
    if (isTerminal(view.phase as never) || view.phase === "AwaitingReview") return view;
    if (Date.now() - start > boundMs) throw new Error(`rollout ${name} still ${view.phase} after ${boundMs / 60_000} min`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** A console session: `$ cat FILE` shows a file the session uses, so it is written first; then each command runs. */
async function runSession(
  expect: ExpectStatic,
  item: Extract<Item, { kind: "console" }>,
  stack: DocStack,
  env: Record<string, string>,
  workDir: string,
): Promise<void> {
  const cwd = mkdtempSync(join(workDir, "session-"));
  let traffic: Traffic | null = null;
  const live: Background[] = [];
  try {
    for (const c of item.commands) {
      const cat = /^cat\s+(\S+)$/.exec(c.command);
      if (!cat) continue;
      const text = `${c.output.join("\n")}\n`;
      writeFileSync(join(cwd, cat[1]), text);
      const spec = parseYaml(text) as { expectedTraffic?: { requestsPerSecond?: number }; stickyKey?: { header: string }; match?: { pathPrefix: string } };
      if (spec?.expectedTraffic?.requestsPerSecond && spec.match && spec.stickyKey) {
        traffic ??= startTraffic(trafficFor(spec as never, stack, spec.expectedTraffic.requestsPerSecond));
      }
    }
    for (const c of item.commands) {
      const command = substituteAddresses(c.command, stack.portMap);
      if (/\s--watch\b/.test(command)) {
        const bg = startBackground(command, { cwd, env });
        live.push(bg);
        await until(
          `'${c.command}' to show what the README shows`,
          () => missingLines(c, bg.output()).length === 0,
          90_000,
          () => `missing:\n${missingLines(c, bg.output()).join("\n")}\nprinted:\n${bg.output().slice(-3000)}`,
        );
        continue;
      }
      const ran = await runScript(command, { cwd, env, timeoutMs: 15 * 60_000 });
      expect(ran.code, `'${c.command}' exit status; output:\n${ran.output}`).toBe(0);
      expect(missingLines(c, ran.output), `'${c.command}': lines the README shows that it did not print (numbers masked); it printed:\n${ran.output}`).toEqual(
        [],
      );
    }
  } finally {
    for (const bg of live) await bg.stop();
    await traffic?.stop();
  }
}

async function until(what: string, check: () => boolean, boundMs: number, explain: () => string): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > boundMs) throw new Error(`timed out after ${boundMs} ms waiting for ${what}; ${explain()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
