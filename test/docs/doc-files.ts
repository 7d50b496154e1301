// The Markdown the doc tests read: README.md and every page under docs/, but docs/notes/ (drafts other work leaves
// for the lead to merge into the pages; their examples are run once they are merged).
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** Repository-relative paths (forward slashes), README.md first, then docs/ sorted. */
export function docFiles(root: string): string[] {
  const docs = existsSync(join(root, "docs"))
    ? readdirSync(join(root, "docs"), { recursive: true, encoding: "utf8" })
        .map((f) => `docs/${f.split("\\").join("/")}`)
        .filter((f) => f.endsWith(".md") && !f.startsWith("docs/notes/"))
        .sort()
    : [];
  return ["README.md", ...docs];
}
