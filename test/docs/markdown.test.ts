// The doc test's reading of Markdown: which blocks it runs, which it refuses unless marked, and how it compares.
import { describe, expect, it } from "vitest";
import { classify, countCurls, extractBlocks, extractInlineCurl, masked, parseConsole, substituteAddresses } from "./markdown.ts";
import { expectedLines, missingLines } from "./commands.ts";

const SPEC_KEYS = ["name", "match", "stickyKey", "canaryPercent", "shadow", "stages", "promotion_gates", "expectedTraffic"];
const fence = "```";

const doc = [
  "# Title",
  "",
  `${fence}`,
  "a diagram",
  `${fence}`,
  "",
  "<!-- doc-test: skip: a sample of output, nothing to run -->",
  "",
  `${fence}`,
  "some output",
  `${fence}`,
  "## Use",
  "Make the canary slow: `curl -XPUT 127.0.0.1:9002/__demo/behavior -d '{\"latencyMs\":20}'`, then `npm start`.",
  `${fence}sh`,
  "curl -XPOST 127.0.0.1:8080/v1/rollouts -H 'content-type: application/yaml' --data-binary @- <<'EOF'",
  "name: x   # curl in a heredoc is not a command",
  "EOF",
  "curl 127.0.0.1:10000/v1/predict -i   # x-rollout-variant: stable|canary",
  `${fence}`,
  "1. Steps:",
  `   ${fence}sh`,
  "   npm install && kubectl apply -f x.yaml",
  `   ${fence}`,
  `${fence}yaml`,
  "shadow: { percent: 10 }",
  `${fence}`,
  `${fence}yaml`,
  "name: fraud-model",
  "match: { pathPrefix: /v1/predict }",
  `${fence}`,
  `${fence}yaml`,
  "prometheus: { url: x }",
  `${fence}`,
].join("\n");

describe("reading the README", () => {
  const blocks = extractBlocks(doc, "doc.md");
  const kinds = blocks.map((b) => classify(b, SPEC_KEYS));

  it("finds every fenced block, indented ones too, with its line, section and marker", () => {
    expect(blocks.map((b) => [b.line, b.lang, b.section])).toEqual([
      [3, "", "Title"],
      [9, "", "Title"],
      [14, "sh", "Use"],
      [21, "sh", "Use"],
      [24, "yaml", "Use"],
      [27, "yaml", "Use"],
      [31, "yaml", "Use"],
    ]);
    expect(blocks[1].marker).toEqual({ kind: "skip", reason: "a sample of output, nothing to run" });
    expect(blocks[3].text).toBe("npm install && kubectl apply -f x.yaml");
  });

  it("runs shell blocks of curl and modelroll, specs and parts of specs; refuses the rest unless marked skip", () => {
    expect(kinds.map((k) => k.kind)).toEqual(["unrunnable", "skip", "shell", "unrunnable", "fragment", "spec", "unrunnable"]);
    expect(kinds[3]).toMatchObject({ why: expect.stringContaining("'npm', 'kubectl'") });
    expect(kinds[6]).toMatchObject({ why: expect.stringContaining("unknown keys: prometheus") });
    expect(kinds[2]).toMatchObject({ curls: 2 });
  });

  it("creates a whole spec marked accept without running it, and only a whole spec; reads a models file as one", () => {
    const marked = extractBlocks(
      `<!-- doc-test: accept: its judge is elsewhere -->\n${fence}yaml\nname: a\nmatch: { pathPrefix: /a }\nstages: [5, 100]\n${fence}`,
      "a.md",
    );
    expect(classify(marked[0], SPEC_KEYS)).toMatchObject({ kind: "spec", acceptOnly: "its judge is elsewhere" });
    const part = extractBlocks(`<!-- doc-test: accept: why -->\n${fence}yaml\nstages: [5, 100]\n${fence}`, "b.md");
    expect(classify(part[0], SPEC_KEYS)).toEqual({ kind: "fragment", fragment: { stages: [5, 100] } });
    const models = extractBlocks(`${fence}yaml\nmodels:\n  - name: m\n${fence}`, "c.md");
    expect(classify(models[0], SPEC_KEYS)).toMatchObject({ kind: "models-file" });
  });

  it("refuses an unknown marker rather than skip a block silently", () => {
    expect(() => extractBlocks(`<!-- doc-test: skpi: typo -->\n${fence}sh\ncurl x\n${fence}`, "typo.md")).toThrow(/typo.md:1: unknown doc-test marker/);
  });

  it("picks the curl commands out of the prose, and nothing else", () => {
    expect(extractInlineCurl(doc, "doc.md")).toEqual([
      { file: "doc.md", line: 13, text: "curl -XPUT 127.0.0.1:9002/__demo/behavior -d '{\"latencyMs\":20}'", section: "Use" },
    ]);
  });

  it("counts curl commands outside heredocs and comments, in pipelines and lists", () => {
    expect(countCurls("curl a | grep b && curl c; echo '# not a comment' # curl d\nx <<EOF\ncurl e\nEOF")).toBe(2);
  });

  it("maps the README's addresses to the stack's, localhost included, and leaves others alone", () => {
    expect(substituteAddresses("curl localhost:8080/a 127.0.0.1:10000/b 127.0.0.1:9090/c", { 8080: 41000, 10000: 41001 })).toBe(
      "curl 127.0.0.1:41000/a 127.0.0.1:41001/b 127.0.0.1:9090/c",
    );
  });
});

describe("holding a console session to what the README shows", () => {
  const session = parseConsole(
    [
      "$ npx modelroll create -f x.yaml",
      "rollout x created: ○ Pending, revision 1",
      "$ npx modelroll get x --watch",
      "x  ◑ Canary  stage 1/3 (10%)  revision 2",
      "  owner      team-fraud",
      "  holds      minimum duration: 5 of 20 s",
      "$ npx modelroll status x \\",
      "    --timeout 10m",
      "",
    ].join("\n"),
  );

  it("splits commands from their output, joining continued lines", () => {
    expect(session.map((c) => c.command)).toEqual(["npx modelroll create -f x.yaml", "npx modelroll get x --watch", "npx modelroll status x --timeout 10m"]);
    expect(session[2].output).toEqual([]);
  });

  it("compares lines with numbers masked; a live view only by its first line and its lines without numbers", () => {
    expect(masked("2026-11-30T11:11:36Z  rollout x  stage 50%  n 2,425 / 1.5 s")).toBe("#-#-#T#Z rollout x stage #% n # / # s");
    expect(missingLines(session[0], "rollout x created: ○ Pending, revision 7\n")).toEqual([]);
    expect(missingLines(session[0], "rollout x created: ○ Pending, stage -, revision 1\n")).toEqual(["rollout x created: ○ Pending, revision #"]);
    expect(expectedLines(session[1])).toEqual(["x ◑ Canary stage #/# (#%) revision #", "owner team-fraud"]);
    expect(missingLines(session[1], "x  ◑ Canary  stage 1/3 (10%)  revision 9\n  owner      team-fraud\n  holds  other things\n")).toEqual([]);
  });
});
