// Shared by the schema-*.test.ts files: the filter's validator from build/filter-testing.wasm, the
// controller's compiler, and ajv configured as the reference the validator must agree with.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as loader from "@assemblyscript/loader";
import { Ajv } from "ajv";
import { compileOutputSchema } from "../../controller/src/schema/compile.ts";
import { repoRoot } from "../../controller/src/paths.ts";

type Ptr = number;

export interface FilterTesting {
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
  return { call, str: (name, ...args) => wasm.__getString(call(name, ...args)) };
}

/**
 * ajv as the reference: draft-07, strict off (so, like our filter, it treats the Infinity that JSON.parse makes
 * of 1e400 as a number), first error only. ownProperties: without it ajv reads inherited members, so
 * `required: ["constructor"]` passes on {} — a quirk of ajv, not JSON Schema; the filter sees own members only.
 */
export function referenceAjv(): Ajv {
  return new Ajv({ strict: false, allErrors: false, ownProperties: true });
}

/** Compiles with the controller's compiler and returns the compiled JSON text the filter receives. */
export function compiledText(schema: unknown): string {
  const r = compileOutputSchema(schema);
  if (!r.ok) throw new Error(`schema refused: ${JSON.stringify(r.errors)}`);
  return JSON.stringify(r.compiled);
}

/** The filter's verdict for a document text (UTF-8 bytes, the data path's depth limit of 64). */
export function filterVerdict(filter: FilterTesting, compiled: string, documentText: string): string {
  return filter.str("validateDocumentBytes", compiled, new TextEncoder().encode(documentText), 64);
}

export const FAILURE_REASONS = ["missing_field", "wrong_type", "out_of_range", "not_allowed", "bad_length", "unexpected_field"];
