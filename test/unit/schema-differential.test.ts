// Differential test: the filter's validator (build/filter-testing.wasm, fed UTF-8 bytes as Envoy does)
// against ajv on JSON.parse of the same text. Schemas come from fast-check within the supported subset,
// compiled by the controller's compiler; documents are mostly near the schema, some random.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { FAILURE_REASONS, compiledText, filterVerdict, loadFilterTesting, referenceAjv, type FilterTesting } from "./schema-harness.ts";
import { nearDocument, randomDocument, render, schemaArbitrary } from "./schema-generators.ts";

let filter: FilterTesting;
beforeAll(async () => {
  filter = await loadFilterTesting();
});

const SEED = 20_260_124;
const SCHEMAS = 500;
const DOCUMENTS_PER_SCHEMA = 12;

/** Where a JSON pointer leads in JSON.parse's result: the parent container and whether the member exists. */
function resolvePointer(root: unknown, pointer: string): { parentFound: boolean; exists: boolean } {
  if (pointer === "") return { parentFound: true, exists: true };
  const tokens = pointer
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
  let current: unknown = root;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const isLast = i === tokens.length - 1;
    const has = current !== null && typeof current === "object" && Object.hasOwn(current, token);
    if (isLast) return { parentFound: current !== null && typeof current === "object", exists: has };
    if (!has) return { parentFound: false, exists: false };
    current = (current as Record<string, unknown>)[token];
  }
  return { parentFound: false, exists: false };
}

describe("output schema validation agrees with ajv", () => {
  it(`on ${SCHEMAS * DOCUMENTS_PER_SCHEMA} generated (schema, document) pairs`, () => {
    const ajv = referenceAjv();
    const counts = { cases: 0, pass: 0, fail: 0, near: 0, random: 0, ajvThrew: 0 };
    const byReason = new Map<string, number>();
    const taggedDocuments = (schema: unknown) =>
      fc.array(
        fc.oneof(
          { arbitrary: nearDocument(schema).map((doc) => ({ doc, near: true })), weight: 4 },
          { arbitrary: randomDocument.map((doc) => ({ doc, near: false })), weight: 1 },
        ),
        { minLength: DOCUMENTS_PER_SCHEMA, maxLength: DOCUMENTS_PER_SCHEMA },
      );
    fc.assert(
      fc.property(
        schemaArbitrary.chain((schema) => fc.tuple(fc.constant(schema), taggedDocuments(schema))),
        ([schema, documents]) => {
          const compiled = compiledText(schema);
          const reference = ajv.compile(schema);
          for (const { doc, near } of documents) {
            const text = render(doc);
            const parsed = JSON.parse(text);
            let expected: boolean;
            try {
              expected = reference(parsed);
            } catch (e) {
              // ajv's deep equality (fast-deep-equal) calls a document's own "toString"/"valueOf" member when
              // comparing objects for enum/const, and throws when that member is not a function. No reference
              // verdict then; such cases are counted and printed, and must stay rare.
              if (!(e instanceof TypeError && /toString|valueOf/.test(e.message))) throw e;
              counts.ajvThrew++;
              continue;
            }
            const verdict = filterVerdict(filter, compiled, text);
            // Built only on a mismatch: the happy path runs thousands of times.
            const problem = (what: string) =>
              new Error(
                `${what}: ${verdict}\nschema ${JSON.stringify(schema)}\ncompiled ${compiled}` +
                  `\ndocument ${text}\najv ${expected} ${JSON.stringify(reference.errors)}`,
              );
            if ((verdict === "pass") !== expected) throw problem("verdicts differ");
            if (verdict !== "pass") {
              const [, reason = "", pointer = ""] = /^fail (\w+) (.*)$/s.exec(verdict) ?? [];
              if (!FAILURE_REASONS.includes(reason)) throw problem("not a failure reason");
              const place = resolvePointer(parsed, pointer);
              // A missing member's pointer names the member under an existing object; any other names a value.
              const pointsRight = reason === "missing_field" ? place.parentFound && !place.exists : place.exists;
              if (!pointsRight) throw problem("the pointer does not lead to the failing place");
              byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
            }
            counts.cases++;
            counts[expected ? "pass" : "fail"]++;
            counts[near ? "near" : "random"]++;
          }
        },
      ),
      { seed: SEED, numRuns: SCHEMAS },
    );
    console.log(
      `differential: ${counts.cases} cases over ${SCHEMAS} schemas (${counts.near} near the schema, ${counts.random} random): ` +
        `${counts.pass} pass, ${counts.fail} fail, all agree with ajv; ajv threw on ${counts.ajvThrew} more\n` +
        `  failure reasons: ${[...byReason]
          .sort((a, b) => b[1] - a[1])
          .map(([r, n]) => `${r} ${n}`)
          .join(", ")}`,
    );
    expect(counts.cases + counts.ajvThrew).toBe(SCHEMAS * DOCUMENTS_PER_SCHEMA);
    expect(counts.ajvThrew).toBeLessThan(counts.cases * 0.01);
    // The split shows the generator exercises both verdicts; a generator that only fails would prove little.
    expect(counts.pass).toBeGreaterThan(counts.cases * 0.2);
    expect(counts.fail).toBeGreaterThan(counts.cases * 0.2);
    for (const reason of FAILURE_REASONS) expect(byReason.get(reason) ?? 0, reason).toBeGreaterThan(0);
  });
});
