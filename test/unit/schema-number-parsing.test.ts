// Numbers in response bodies and compiled schemas must get the double JavaScript's JSON.parse gives, or
// bounds compare differently from ajv. AssemblyScript's own parseFloat does not (filter/decimal.ts says
// how far off it is); the filter's parser must, including halfway cases, subnormals and overflow.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { loadFilterTesting, type FilterTesting } from "./schema-harness.ts";

let filter: FilterTesting;
beforeAll(async () => {
  filter = await loadFilterTesting();
});
const parsed = (text: string): number => filter.call("jsonNumberValue", text);

/** The exact decimal expansion of the point halfway between a positive double and the next one up. */
function halfwayAbove(x: number): string {
  const bits = new BigUint64Array(new Float64Array([x]).buffer)[0];
  const biased = Number(bits >> 52n);
  const m = (bits & ((1n << 52n) - 1n)) | (biased === 0 ? 0n : 1n << 52n);
  const e2 = (biased === 0 ? -1074 : biased - 1075) - 1;
  const odd = 2n * m + 1n;
  if (e2 >= 0) return (odd << BigInt(e2)).toString();
  const digits = (odd * 5n ** BigInt(-e2)).toString().padStart(-e2 + 1, "0");
  return `${digits.slice(0, digits.length + e2)}.${digits.slice(digits.length + e2)}`;
}

const digits = (min: number, max: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: min, maxLength: max }).map((d) => d.join(""));

describe("JSON numbers parse to the same double as JSON.parse", () => {
  it.each([
    "0",
    "-0",
    "0.0",
    "-0e5",
    "1",
    "0.1",
    "0.3",
    "1.0000000000000002",
    "9007199254740993",
    "123456789012345678901234567890",
    "1e22",
    "1e23",
    "8.41e21",
    "1e37",
    "123456789e28",
    "1.7911781170349283e+45", // AssemblyScript 0.28's parseFloat gives 1.79e+38 for this one
    "0.1677090286558612780532995", // and one ulp off for this one
    "5e-324",
    "4.9e-324",
    "2.4703282292062327e-324",
    "2.4703282292062328e-324",
    "2.2250738585072011e-308",
    "2.2250738585072012e-308",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1.7976931348623159e308",
    "1e400",
    "-1e400",
    "1e-400",
    "-1e-400",
    "1e99999999999",
    "1e-99999999999",
    `0.${"0".repeat(5000)}1e5000`,
    `1.${"0".repeat(3000)}1`,
    (((1n << 54n) - 1n) << 970n).toString(), // exactly halfway between the largest double and 2^1024: Infinity
    ((((1n << 54n) - 1n) << 970n) - 1n).toString(), // a hair below: the largest double
  ])("%s", (text) => {
    expect(Object.is(parsed(text), JSON.parse(text)), `${parsed(text)} vs ${JSON.parse(text)}`).toBe(true);
  });

  it("for every double as JSON.stringify, toExponential and toPrecision(21) write it", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        for (const text of [JSON.stringify(x), x.toExponential(), x.toPrecision(21).replace("e+", "e")]) {
          if (!Object.is(parsed(text), JSON.parse(text))) throw new Error(`${text}: ${parsed(text)} vs ${JSON.parse(text)}`);
        }
      }),
      { seed: 42, numRuns: 20_000 },
    );
  });

  it("for exact halfway points (ties to even) and a hair either side of them", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, noNaN: true, noDefaultInfinity: true, minExcluded: true }), fc.boolean(), (x, negative) => {
        if (x === Number.MAX_VALUE) return;
        const half = halfwayAbove(x);
        // A fractional halfway point ends in 5: 4 followed by nines is a hair below it, a trailing 1 a hair above.
        const fractional = half.includes(".");
        const below = fractional ? `${half.slice(0, -1)}4${"9".repeat(20)}` : (BigInt(half) - 1n).toString();
        const above = fractional ? `${half}000001` : (BigInt(half) + 1n).toString();
        for (const body of [half, above, below]) {
          const text = negative ? `-${body}` : body;
          if (!Object.is(parsed(text), JSON.parse(text))) throw new Error(`${text}: ${parsed(text)} vs ${JSON.parse(text)}`);
        }
      }),
      { seed: 43, numRuns: 3_000 },
    );
  });

  it("for long random mantissas with any exponent", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), digits(0, 40), digits(1, 900), fc.integer({ min: -400, max: 400 }), (lead, intPart, frac, exp) => {
        const text = `${lead}${intPart}.${frac}e${exp}`;
        if (!Object.is(parsed(text), JSON.parse(text))) throw new Error(`${text}: ${parsed(text)} vs ${JSON.parse(text)}`);
      }),
      { seed: 44, numRuns: 3_000 },
    );
  });

  it("for plain decimals around the parser's fast path (<= 15 digits, <= 22 after the point, no exponent) and just past it", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.oneof(
          fc.constant("0"),
          fc.integer({ min: 1, max: 9 }).chain((lead) => digits(0, 16).map((d) => `${lead}${d}`)),
        ),
        fc.option(digits(1, 24)),
        (negative, intPart, frac) => {
          const text = `${negative ? "-" : ""}${intPart}${frac === null ? "" : `.${frac}`}`;
          if (!Object.is(parsed(text), JSON.parse(text))) throw new Error(`${text}: ${parsed(text)} vs ${JSON.parse(text)}`);
        },
      ),
      { seed: 45, numRuns: 20_000 },
    );
  });
});
