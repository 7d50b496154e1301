// Shared by the schema-*.test.ts files: the filter's validator from build/filter-testing.wasm, the
// controller's compiler, and ajv configured as the reference the validator must agree with.
import { Ajv } from "ajv";
import { compileOutputSchema } from "../../controller/src/schema/compile.ts";

import type { FilterTesting } from "./filter-testing.ts";
export { loadFilterTesting, type FilterTesting } from "./filter-testing.ts";

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
