// What the doc test runs, read out of the Markdown: every fenced block (with the doc-test marker right above it,
// if any), and the curl commands written inline in the prose. Pure: no process, no stack.
import { parse as parseYaml } from "yaml";

export interface Location {
  file: string;
  /** 1-based line of the block's opening fence (or of the inline command). */
  line: number;
}

export type Marker = { kind: "skip"; reason: string } | { kind: "accept"; reason: string };

export interface Block extends Location {
  lang: string;
  text: string;
  marker: Marker | null;
  /** The nearest heading above the block. */
  section: string;
}

export interface InlineCommand extends Location {
  text: string;
  section: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)\s*$/;
const HEADING = /^#{1,6}\s+(.*)$/;
// <!-- doc-test: skip: why --> ; the reason is required (a skipped block says what it would need).
const MARKER = /^\s*<!--\s*doc-test:\s*(.*?)\s*-->\s*$/;

/** Every fenced block of a Markdown file, in order. A malformed marker is an error, not a silent skip. */
export function extractBlocks(markdown: string, file: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    const heading = HEADING.exec(lines[i]);
    if (heading) {
      section = heading[1].trim();
      continue;
    }
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    let end = i + 1;
    while (end < lines.length && !(lines[end].trim().startsWith(fence[0].repeat(fence.length)) && lines[end].trim().replace(/[`~]/g, "") === "")) end++;
    if (end >= lines.length) throw new Error(`${file}:${i + 1}: a code block that never closes`);
    const body = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()));
    blocks.push({ file, line: i + 1, lang: lang.toLowerCase(), text: body.join("\n"), marker: markerAbove(lines, i, file), section });
    i = end;
  }
  return blocks;
}

function markerAbove(lines: string[], fenceIndex: number, file: string): Marker | null {
  let j = fenceIndex - 1;
  while (j >= 0 && lines[j].trim() === "") j--;
  if (j < 0) return null;
  const m = MARKER.exec(lines[j]);
  if (!m) return null;
  const skip = /^skip:\s*(.+)$/.exec(m[1]);
  if (skip) return { kind: "skip", reason: skip[1] };
  const accept = /^accept:\s*(.+)$/.exec(m[1]);
  if (accept) return { kind: "accept", reason: accept[1] };
  throw new Error(
    `${file}:${j + 1}: unknown doc-test marker '${m[1]}' (known: 'skip: <why this block cannot run in CI>', 'accept: <why this spec is only created, not run>')`,
  );
}

/** `curl ...` written as inline code in the prose (outside fenced blocks): each is a command a reader may paste. */
export function extractInlineCurl(markdown: string, file: string): InlineCommand[] {
  const lines = markdown.split("\n");
  const found: InlineCommand[] = [];
  let inFence: string | null = null;
  let section = "";
  lines.forEach((line, i) => {
    const fence = FENCE.exec(line);
    if (fence) {
      if (inFence === null) inFence = fence[2];
      else if (line.trim() === inFence || line.trim().replace(/[`~]/g, "") === "") inFence = null;
      return;
    }
    if (inFence !== null) return;
    const heading = HEADING.exec(line);
    if (heading) section = heading[1].trim();
    for (const m of line.matchAll(/(?<!`)`(curl [^`]+)`(?!`)/g)) found.push({ file, line: i + 1, text: m[1], section });
  });
  return found;
}

// ---------------------------------------------------------------------------------------------------------
// What a block is

export type Classified =
  | { kind: "skip"; reason: string }
  | { kind: "shell"; script: string; curls: number }
  | { kind: "console"; commands: ConsoleCommand[] }
  | { kind: "spec"; spec: Record<string, unknown>; text: string; acceptOnly?: string }
  | { kind: "fragment"; fragment: Record<string, unknown> }
  | { kind: "models-file"; text: string }
  | { kind: "unrunnable"; why: string };

export interface ConsoleCommand {
  command: string;
  /** The output the README shows for it. */
  output: string[];
}

/**
 * The rollout spec's top-level keys (RolloutSpec), passed in so this module stays free of the controller;
 * a YAML block whose keys are all among them is a spec or a part of one.
 */
export function classify(block: Block, specKeys: readonly string[]): Classified {
  if (block.marker?.kind === "skip") return { kind: "skip", reason: block.marker.reason };
  switch (block.lang) {
    case "sh":
    case "bash":
    case "shell": {
      const others = commandWords(block.text).filter((w) => !RUNNABLE_COMMANDS.includes(w));
      if (others.length > 0) {
        return {
          kind: "unrunnable",
          why: `runs ${[...new Set(others)].map((w) => `'${w}'`).join(", ")}, which the doc test does not run (it runs ${RUNNABLE_COMMANDS.join(", ")})`,
        };
      }
      return { kind: "shell", script: block.text, curls: countCurls(block.text) };
    }
    case "console": {
      const commands = parseConsole(block.text);
      if (commands.length === 0) return { kind: "unrunnable", why: "a console block without a '$ ' command" };
      const others = commands.flatMap((c) => commandWords(c.command)).filter((w) => !RUNNABLE_COMMANDS.includes(w));
      if (others.length > 0)
        return { kind: "unrunnable", why: `runs ${[...new Set(others)].map((w) => `'${w}'`).join(", ")}, which the doc test does not run` };
      return { kind: "console", commands };
    }
    case "yaml":
    case "yml":
    case "json": {
      let value: unknown;
      try {
        value = parseYaml(block.text);
      } catch (error) {
        return { kind: "unrunnable", why: `not valid ${block.lang}: ${(error as Error).message.split("\n")[0]}` };
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) return { kind: "unrunnable", why: "not a mapping" };
      // `npm start -- --models FILE`: its one key is a list (a rollout spec's `models` is a mapping).
      if (Object.keys(value).length === 1 && Array.isArray((value as { models?: unknown }).models)) return { kind: "models-file", text: block.text };
      const unknown = Object.keys(value).filter((k) => !specKeys.includes(k));
      if (unknown.length > 0) return { kind: "unrunnable", why: `not a rollout spec or a part of one (unknown keys: ${unknown.join(", ")})` };
      const spec = value as Record<string, unknown>;
      if (!("name" in spec && "match" in spec)) return { kind: "fragment", fragment: spec };
      // `accept: why`: a whole spec that needs what CI has not (a judge, a receiver) is created, not run to its end.
      return block.marker?.kind === "accept"
        ? { kind: "spec", spec, text: block.text, acceptOnly: block.marker.reason }
        : { kind: "spec", spec, text: block.text };
    }
    default:
      return {
        kind: "unrunnable",
        why: block.lang ? `a '${block.lang}' block the doc test has no runner for` : "a block without a language (output, a diagram, a format?)",
      };
  }
}

/**
 * What a shell block may run: requests to the stack and the modelroll command (through npx in the repository),
 * and text tools. Anything else (npm install, kubectl, a registry push) changes the machine or needs what CI
 * has not, so such a block is refused unless marked skip, before anything of it runs.
 */
export const RUNNABLE_COMMANDS = ["curl", "modelroll", "npx modelroll", "cat", "echo", "printf", "sleep", "grep", "head", "tail"] as const as readonly string[];

/** The command word of every simple command in a script (heredoc bodies, comments and continuations left out). */
export function commandWords(script: string): string[] {
  const words: string[] = [];
  let heredoc: string | null = null;
  let continued = false;
  for (const raw of script.split("\n")) {
    const line = withoutComment(raw).trim();
    if (heredoc !== null) {
      if (raw.trim() === heredoc) heredoc = null;
      continue;
    }
    if (!continued && line !== "") {
      for (const part of line.split(/&&|\|\||;|\|/)) {
        const tokens = part
          .trim()
          .split(/\s+/)
          .filter((t) => !/^\w+=/.test(t));
        if (tokens.length === 0 || tokens[0] === "") continue;
        words.push(tokens[0] === "npx" ? `npx ${tokens[1] ?? ""}`.trim() : tokens[0]);
      }
    }
    const here = /<<-?\s*['"]?(\w+)['"]?/.exec(line);
    if (here) heredoc = here[1];
    continued = line.endsWith("\\");
  }
  return words;
}

/** A line up to an unquoted `#` that starts a word (a shell comment). */
function withoutComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

/** How many curl commands a script runs: each must answer, so a count of statuses can tell one went missing. */
export function countCurls(script: string): number {
  return commandWords(script).filter((w) => w === "curl").length;
}

/** `$ command` lines (a trailing backslash continues one) and the output shown under each. */
export function parseConsole(text: string): ConsoleCommand[] {
  const commands: ConsoleCommand[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("$ ")) {
      let command = line.slice(2);
      while (command.endsWith("\\") && i + 1 < lines.length) command = `${command.slice(0, -1).trimEnd()} ${lines[++i].trim()}`;
      commands.push({ command: command.trim(), output: [] });
    } else if (commands.length > 0) {
      commands[commands.length - 1].output.push(line);
    }
  }
  for (const c of commands) while (c.output.length > 0 && c.output[c.output.length - 1].trim() === "") c.output.pop();
  return commands;
}

/** A line with its numbers (counts, times, timestamps, percents) masked and its spacing collapsed. */
export function masked(line: string): string {
  return line
    .replace(/\d+(?:[.,:]\d+)*/g, "#")
    .replace(/\s+/g, " ")
    .trim();
}

/** The README's addresses (the defaults npm start listens on), replaced by the test stack's. */
export function substituteAddresses(text: string, ports: Record<number, number>): string {
  return text.replace(/\b(?:127\.0\.0\.1|localhost):(\d+)\b/g, (whole, port: string) =>
    ports[Number(port)] !== undefined ? `127.0.0.1:${ports[Number(port)]}` : whole,
  );
}
