// Files that would crash or hang a YAML parser, given to the real `modelroll lint` and to `--models`: a clear
// error and exit code 3 (usage: the file cannot be read as a spec), never a dead process or a stack trace.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readModelsFile } from "../../controller/src/cli/models-file.ts";
import { EXIT } from "../../controller/src/cli/modelroll/plan.ts";
import { TEXT_LIMITS } from "../../controller/src/structured-text.ts";
import { runCliProcess } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-hostile-files-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const SPEC = "name: fraud-model\nmatch:\n  pathPrefix: /v1/predict\nstickyKey:\n  header: x-user-id\n";

describe("modelroll lint with hostile files (the real command)", () => {
  const cases: Array<[string, string | Buffer, string]> = [
    ["deep.yaml", "[".repeat(100_000) + "]".repeat(100_000), `nesting deeper than ${TEXT_LIMITS.maxDepth} levels at line 1, column 65`],
    ["deep-seq.yaml", `${"- ".repeat(1000)}1`, "nesting deeper than"],
    [
      "bomb.yaml",
      [
        "a: &a [x, x, x, x, x, x, x, x, x]",
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
        "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
      ].join("\n"),
      "aliases expand to too many values",
    ],
    [
      "utf8.yaml",
      Buffer.concat([Buffer.from(SPEC.slice(0, SPEC.indexOf("dict"))), Buffer.from([0xe2, 0x28, 0xa1]), Buffer.from(SPEC.slice(SPEC.indexOf("dict")))]),
      "invalid UTF-8 in /match/pathPrefix",
    ],
    ["dup.yaml", `${SPEC}name: other\n`, "YAML/JSON syntax error at line 6, column 1: Map keys must be unique"],
    ["big.yaml", `${SPEC}x: "${"y".repeat(TEXT_LIMITS.maxYamlBytes)}"\n`, `the limit is ${TEXT_LIMITS.maxYamlBytes} bytes`],
  ];
  for (const [name, content, message] of cases) {
    it(`${name}: exit ${EXIT.usage} with the reason`, async () => {
      const path = file(name, content);
      const result = await runCliProcess(["lint", "-f", path]);
      expect(result.code, result.stderr).toBe(EXIT.usage);
      expect(result.stderr).toContain(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it("the same spec, well-formed, lints clean (exit 0): the bounds refuse nothing a spec needs", async () => {
    const result = await runCliProcess(["lint", "-f", file("good.yaml", SPEC)]);
    expect(result.code, result.stderr).toBe(EXIT.ok);
  });

  it("a spec on stdin with invalid UTF-8 is refused too", async () => {
    const bytes = Buffer.concat([Buffer.from(SPEC.replace("x-user-id\n", "x-user-")), Buffer.from([0xc0, 0xaf]), Buffer.from("\n")]);
    // The helper writes what it is given to the pipe; a Buffer goes as the bytes it holds.
    const result = await runCliProcess(["lint", "-f", "-"], {}, bytes as unknown as string);
    expect(result.code, result.stderr).toBe(EXIT.usage);
    expect(result.stderr).toContain("stdin: cannot read: invalid UTF-8 in /stickyKey/header");
  });
});

describe("--models files", () => {
  it("too deep, not UTF-8, repeated keys and too many entries are errors naming the file", () => {
    const deep = file("models-deep.yaml", `models: ${"[".repeat(100_000)}${"]".repeat(100_000)}`);
    expect(() => readModelsFile(deep)).toThrow(`${deep}: nesting deeper than ${TEXT_LIMITS.maxDepth} levels`);
    const utf8 = file("models-utf8.yaml", Buffer.concat([Buffer.from("models:\n  - name: a"), Buffer.from([0xff]), Buffer.from("\n")]));
    expect(() => readModelsFile(utf8)).toThrow("invalid UTF-8 in /models/0/name");
    const dup = file("models-dup.yaml", "models: []\nmodels: []\n");
    expect(() => readModelsFile(dup)).toThrow("not YAML: syntax error at line 2, column 1: Map keys must be unique");
    const many = file("models-many.yaml", `models: [${Array.from({ length: TEXT_LIMITS.maxEntries + 500 }, (_, i) => i).join(", ")}]\n`);
    expect(() => readModelsFile(many)).toThrow(`a collection of ${TEXT_LIMITS.maxEntries + 500} entries (at most ${TEXT_LIMITS.maxEntries})`);
  });
});
