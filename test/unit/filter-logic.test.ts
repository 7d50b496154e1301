// Pure filter logic (config parser, hashing, weight edges, JSON parser) run from build/filter-testing.wasm,
// the same AssemblyScript sources Envoy runs, through @assemblyscript/loader.
import { beforeAll, describe, expect, it } from "vitest";
import { loadFilterTesting, type FilterTesting } from "./filter-testing.ts";

let filter: FilterTesting;
const call = (name: string, ...args: Array<string | number>): any => filter.call(name, ...args);
const str = (name: string, ...args: Array<string | number>): string => filter.str(name, ...args);

beforeAll(async () => {
  filter = await loadFilterTesting();
});

const table = (rollouts: unknown[], extra: Record<string, unknown> = {}) => JSON.stringify({ epoch: "e", version: 3, rollouts, ...extra });
const rollout = { name: "fraud-model", pathPrefix: "/v1/predict", stickyHeader: "x-user-id", canaryBasisPoints: 500 };

describe("plugin config parser", () => {
  it("accepts defaults, a controller, and static rollouts", () => {
    expect(str("pluginConfigSummary", "")).toBe("ok x-rollout-variant - -");
    expect(str("pluginConfigSummary", JSON.stringify({ controller: { cluster: "ctl", authority: "127.0.0.1:8080" } }))).toBe(
      "ok x-rollout-variant ctl@127.0.0.1:8080/v1/filter-config/20 -",
    );
    expect(str("pluginConfigSummary", JSON.stringify({ variantHeader: "x-variant", rollouts: [rollout] }))).toBe("ok x-variant - 1");
  });

  it.each([
    ["not JSON", "{", /^not JSON: unexpected end of input/],
    ["not an object", "[]", /^must be a JSON object$/],
    ["a typo'd top-level field", JSON.stringify({ variantHeadr: "x" }), /^variantHeadr: unknown field$/],
    ["an uppercase header", JSON.stringify({ variantHeader: "X-Variant" }), /^variantHeader: must be a lowercase header name$/],
    ["a controller without cluster", JSON.stringify({ controller: { authority: "a:1" } }), /^controller\.cluster: is required$/],
    [
      "a controller path with a query",
      JSON.stringify({ controller: { cluster: "c", authority: "a:1", path: "/x?y=1" } }),
      /^controller\.path: must start with '\/' and have no query$/,
    ],
    [
      "a poll wait out of range",
      JSON.stringify({ controller: { cluster: "c", authority: "a:1", pollWaitSeconds: 0 } }),
      /^controller\.pollWaitSeconds: must be an integer 1\.\.60$/,
    ],
    ["a non-boolean headersStopIteration", JSON.stringify({ headersStopIteration: "yes" }), /^headersStopIteration: must be a boolean$/],
    [
      "a token with a space",
      JSON.stringify({ controller: { cluster: "c", authority: "a:1", token: "two words" } }),
      /^controller\.token: must be 1-256 printable ASCII characters without spaces$/,
    ],
    ["an empty token", JSON.stringify({ controller: { cluster: "c", authority: "a:1", token: "" } }), /^controller\.token: must be 1-256/],
    ["a typo inside the controller", JSON.stringify({ controller: { cluster: "c", authority: "a:1", timeout: 3 } }), /^controller\.timeout: unknown field$/],
    [
      "a bad static rollout",
      JSON.stringify({ rollouts: [{ ...rollout, canaryBasisPoints: 10001 }] }),
      /^rollouts\[0\]\.canaryBasisPoints: must be an integer 0\.\.10000$/,
    ],
  ])("refuses %s, naming the field", (_what, text, expected) => {
    expect(str("pluginConfigError", text)).toMatch(expected);
  });
});

describe("controller rollout table parser", () => {
  it("parses rollouts and ignores fields it does not know (newer controller)", () => {
    expect(str("rolloutTableSummary", table([{ ...rollout, shadow: { percent: 5 } }], { future: true }))).toBe("v3 e fraud-model:/v1/predict:x-user-id:500");
  });

  it.each([
    ["missing version", JSON.stringify({ epoch: "e", rollouts: [] }), "version: is required"],
    ["rollouts not an array", JSON.stringify({ epoch: "e", version: 1, rollouts: {} }), "rollouts: must be an array"],
    ["fractional basis points", table([{ ...rollout, canaryBasisPoints: 1.5 }]), "rollouts[0].canaryBasisPoints: must be an integer 0..10000"],
    ["negative basis points", table([{ ...rollout, canaryBasisPoints: -1 }]), "rollouts[0].canaryBasisPoints: must be an integer 0..10000"],
    ["a dotted name", table([{ ...rollout, name: "a.b" }]), "rollouts[0].name: must be a DNS label (a-z, 0-9, '-', at most 63)"],
    ["a relative prefix", table([{ ...rollout, pathPrefix: "v1" }]), "rollouts[0].pathPrefix: must start with '/'"],
    ["a duplicate name", table([rollout, { ...rollout, pathPrefix: "/b" }]), "rollouts[1].name: duplicate rollout fraud-model"],
  ])("refuses %s", (_what, text, expected) => {
    expect(str("rolloutTableSummary", text)).toBe(`error: ${expected}`);
  });

  it("reports every error at once", () => {
    const out = str("rolloutTableSummary", table([{ name: "X", pathPrefix: 3, stickyHeader: "x-user-id", canaryBasisPoints: 1 }]));
    expect(out).toContain("rollouts[0].name: must be a DNS label");
    expect(out).toContain("rollouts[0].pathPrefix: must be a string");
  });

  it("matches the longest path prefix", () => {
    const t = table([rollout, { ...rollout, name: "fraud-v2-path", pathPrefix: "/v1/predict/v2" }]);
    expect(str("matchedRollout", t, "/v1/predict/v2/x")).toBe("fraud-v2-path");
    expect(str("matchedRollout", t, "/v1/predict?x=1")).toBe("fraud-model");
    expect(str("matchedRollout", t, "/health")).toBe("");
  });
});

describe("sticky hashing", () => {
  it("is deterministic and depends on the rollout name", () => {
    const a = call("bucketFor", "fraud-model", "user-42") >>> 0;
    expect(call("bucketFor", "fraud-model", "user-42") >>> 0).toBe(a);
    expect(a).toBeLessThan(10000);
    let differs = 0;
    for (let i = 0; i < 50; i++) if (call("bucketFor", "fraud-model", `u${i}`) >>> 0 !== call("bucketFor", "other-model", `u${i}`) >>> 0) differs++;
    expect(differs).toBeGreaterThan(45);
  });

  it("is uniform: chi-square over 100 bins for 200,000 keys stays below the 99.9% critical value", () => {
    const bins = 100;
    const n = 200_000;
    const ptr = call("bucketHistogram", "fraud-model", "user-", n, bins);
    const counts: Int32Array = filter.exports.__getInt32Array(ptr);
    const expected = n / bins;
    const chi2 = Array.from(counts).reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    console.log(`chi-square (99 dof) = ${chi2.toFixed(1)}; critical value at 99.9% = 148.2`);
    expect(counts.reduce((s, c) => s + c, 0)).toBe(n);
    expect(chi2).toBeLessThan(148.2);
  });

  it("also spreads sequential numeric keys and keys that differ in one character", () => {
    const buckets = Array.from({ length: 2000 }, (_, i) => call("bucketFor", "r", String(i)) >>> 0);
    const lowShare = buckets.filter((b) => b < 500).length / buckets.length;
    expect(lowShare).toBeGreaterThan(0.03);
    expect(lowShare).toBeLessThan(0.07);
  });
});

/** The sticky hash exactly as the README ("How the data path decides") describes it. */
function readmeBucket(rollout: string, key: string): number {
  const M = (1n << 64n) - 1n;
  const prime = 0x100000001b3n;
  let h = 0xcbf29ce484222325n;
  const round = (x: bigint) => {
    h = ((h ^ x) * prime) & M;
  };
  for (let i = 0; i < rollout.length; i++) round(BigInt(rollout.charCodeAt(i)));
  round(0xffn);
  for (let i = 0; i < key.length; i++) {
    const unit = key.charCodeAt(i);
    round(BigInt(unit & 0xff));
    round(BigInt(unit >> 8));
  }
  h ^= h >> 30n;
  h = (h * 0xbf58476d1ce4e5b9n) & M;
  h ^= h >> 27n;
  h = (h * 0x94d049bb133111ebn) & M;
  h ^= h >> 31n;
  return Number(((h >> 32n) * 10000n) >> 32n);
}

describe("the sticky hash as documented", () => {
  it("gives the filter's bucket for ASCII, non-ASCII and astral keys, and the README's example", () => {
    const keys = [...Array.from({ length: 500 }, (_, i) => `user-${i}`), "Zoë", "ユーザー", "😀-tenant", "", "a\u0000b"];
    for (const key of keys) expect(call("bucketFor", "fraud-model", key) >>> 0, key).toBe(readmeBucket("fraud-model", key));
    expect(call("bucketFor", "fraud-model#shadow", "user-1") >>> 0).toBe(readmeBucket("fraud-model#shadow", "user-1"));
    expect(readmeBucket("fraud-model", "user-42")).toBe(2528); // the README's worked example
  });
});

describe("weight comparison at the edges", () => {
  it("0 basis points sends nothing to the canary, 10000 sends everything", () => {
    for (const bucket of [0, 1, 4999, 9999]) {
      expect(call("canaryAt", bucket, 0)).toBe(0);
      expect(call("canaryAt", bucket, 10000)).toBe(1);
    }
  });
  it("0.01% (1 basis point) sends exactly bucket 0", () => {
    expect(call("canaryAt", 0, 1)).toBe(1);
    expect(call("canaryAt", 1, 1)).toBe(0);
  });
  it("a bucket below the weight is canary, at the weight is stable", () => {
    expect(call("canaryAt", 499, 500)).toBe(1);
    expect(call("canaryAt", 500, 500)).toBe(0);
  });
});

describe("JSON parser on hostile input", () => {
  it.each([
    ['{"a":1}', "object"],
    ["[1,2,[3]]", "array"],
    ['"\\ud83d\\ude00"', "string"],
    ["1e400", "number"],
    ['{"a":1,"a":2}', "object"],
    ['{"a":', "error: unexpected end of input"],
    ["\ufeff{}", "error: unexpected character"],
    ["[1,]", "error: unexpected character"],
    ["01", "error: trailing characters after the JSON value"],
    ['"a\u0001"', "error: control character in string"],
    ["nul", "error: invalid literal"],
  ])("%s -> %s", (text, expected) => {
    expect(str("jsonKind", text, 64)).toBe(expected);
  });

  it("refuses 10,000-deep nesting without trapping", () => {
    expect(str("jsonKind", "[".repeat(10_000) + "]".repeat(10_000), 64)).toBe("error: nesting deeper than 64");
  });
});
