// The documentation's own links hold: every relative link and image in README.md and docs/**/*.md names a file that
// exists, and an anchor names a heading of that page (GitHub's slugs). Also which files the doc tests read.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { docFiles } from "./doc-files.ts";

/** GitHub's anchor for a heading: lowercased, punctuation but '-' and '_' dropped, spaces as '-'; repeats get -1, -2. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fence: string | null = null;
  for (const line of markdown.split("\n")) {
    const f = /^\s*(`{3,}|~{3,})/.exec(line);
    if (f) fence = fence === null ? f[1] : line.trim().startsWith(fence) ? null : fence;
    const h = fence === null ? /^#{1,6}\s+(.*)$/.exec(line) : null;
    if (!h) continue;
    const base = h[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Relative link targets outside code: [text](target) and ![alt](target). */
function links(markdown: string): Array<{ line: number; target: string }> {
  const found: Array<{ line: number; target: string }> = [];
  let fence: string | null = null;
  markdown.split("\n").forEach((line, i) => {
    const f = /^\s*(`{3,}|~{3,})/.exec(line);
    if (f) {
      fence = fence === null ? f[1] : line.trim().startsWith(fence) ? null : fence;
      return;
    }
    if (fence !== null) return;
    const prose = line.replace(/`[^`]*`/g, "");
    for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) if (!/^[a-z]+:/.test(m[1])) found.push({ line: i + 1, target: m[1] });
  });
  return found;
}

describe("the documentation", () => {
  const files = docFiles(repoRoot);

  it("is README.md and every page under docs/ but the drafts in docs/notes/", () => {
    expect(files[0]).toBe("README.md");
    expect(files).toContain("docs/guides/first-rollout.md");
    expect(files).toContain("docs/reference/gates.md");
    expect(files.filter((f) => f.startsWith("docs/notes/"))).toEqual([]);
  });

  it("links only to files that exist and to headings those pages have", () => {
    const broken: string[] = [];
    for (const file of files) {
      for (const { line, target } of links(readFileSync(join(repoRoot, file), "utf8"))) {
        const [path, anchor] = target.split("#");
        const resolved = path === "" ? file : normalize(join(dirname(file), path));
        if (!existsSync(join(repoRoot, resolved))) {
          broken.push(`${file}:${line}: ${target} (no file ${resolved})`);
          continue;
        }
        if (anchor && resolved.endsWith(".md") && !anchors(readFileSync(join(repoRoot, resolved), "utf8")).has(anchor)) {
          broken.push(`${file}:${line}: ${target} (no heading #${anchor} in ${resolved})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("reads anchors as GitHub makes them", () => {
    const a = anchors("# The `modelroll` command\n## Revisions: ETag and If-Match\n```\n# not a heading\n```\n## Notes\n## Notes");
    expect([...a]).toEqual(["the-modelroll-command", "revisions-etag-and-if-match", "notes", "notes-1"]);
  });
});
