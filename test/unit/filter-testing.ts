// The filter's pure logic from build/filter-testing.wasm, through @assemblyscript/loader: the same
// AssemblyScript sources Envoy runs (filter/testing.ts exports them).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as loader from "@assemblyscript/loader";
import { repoRoot } from "../../controller/src/paths.ts";

type Ptr = number;

export interface FilterTesting {
  /** The raw exports, for the loader's own helpers (e.g. __getInt32Array). */
  exports: any;
  /** Calls an export with string and byte arguments pinned, so allocating one cannot collect another. */
  call(name: string, ...args: Array<string | number | Uint8Array>): any;
  /** Same, for exports returning a string. */
  str(name: string, ...args: Array<string | number | Uint8Array>): string;
}

export async function loadFilterTesting(): Promise<FilterTesting> {
  const bytes = readFileSync(join(repoRoot, "build", "filter-testing.wasm"));
  const wasm: any = (await loader.instantiate(bytes, {})).exports;
  const call = (name: string, ...args: Array<string | number | Uint8Array>): any => {
    const pinned: Ptr[] = [];
    const raw = args.map((a) => {
      if (typeof a === "number") return a;
      const p: Ptr = wasm.__pin(typeof a === "string" ? wasm.__newString(a) : wasm.__newArrayBuffer(a));
      pinned.push(p);
      return p;
    });
    try {
      return wasm[name](...raw);
    } finally {
      for (const p of pinned) wasm.__unpin(p);
    }
  };
  return { exports: wasm, call, str: (name, ...args) => wasm.__getString(call(name, ...args)) };
}
