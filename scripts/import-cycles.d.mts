// Types for scripts/import-cycles.mjs.
export interface ImportCycles {
  files: number;
  imports: number;
  /** Each cycle between files: its members, and one loop through them (first member repeated at the end). */
  fileCycles: Array<{ members: string[]; loop: string[] }>;
  /** Each cycle between folders, with every file import inside it ("a/x.ts -> b/y.ts"). */
  folderCycles: Array<{ members: string[]; loop: string[]; via: string[] }>;
}
export declare function folderOf(file: string): string;
/** Every .ts file under `root` -> the files under `root` it imports (relative paths, "/" separators). */
export declare function importGraph(root: string): Map<string, string[]>;
export declare function importCycles(root: string): ImportCycles;
