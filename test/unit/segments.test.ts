// Segment dimensions in the filter: config parsing and the value a request gets (build/filter-testing.wasm).
import { beforeAll, describe, expect, it } from "vitest";
import { loadFilterTesting, type FilterTesting } from "./filter-testing.ts";

let filter: FilterTesting;
const str = (name: string, ...args: string[]): string => filter.str(name, ...args);

beforeAll(async () => {
  filter = await loadFilterTesting();
});

const tier = { name: "tenant_tier", header: "x-tenant-tier", values: ["free", "pro", "enterprise"] };
const endpoint = { name: "endpoint", prefixes: ["/v1/predict/score", "/v1/predict/score/batch"], values: ["score", "batch"] };
const size = { name: "size", bounds: [1024, 16384], values: ["le_1024", "le_16384", "gt_16384"] };
const table = (segments: unknown[]) =>
  JSON.stringify({ epoch: "e", version: 1, rollouts: [{ name: "r", pathPrefix: "/", stickyHeader: "x-user-id", canaryBasisPoints: 0, segments }] });

describe("segment values", () => {
  it.each([
    ["pro", "/v1/predict/score", "100", "tenant_tier=pro,endpoint=score,size=le_1024"],
    ["ENTERPRISE ", "/v1/predict/score/batch/7", "1024", "tenant_tier=enterprise,endpoint=batch,size=le_1024"],
    ["platinum", "/health", "1025", "tenant_tier=other,endpoint=other,size=le_16384"],
    ["<absent>", "/v1/predict/scoreboard", "99999", "tenant_tier=other,endpoint=score,size=gt_16384"],
    ["free", "/v1/predict/score", "<absent>", "tenant_tier=free,endpoint=score,size=other"],
    ["free", "/v1/predict/score", "12x", "tenant_tier=free,endpoint=score,size=other"],
  ])("header %j, path %s, content-length %s -> %s", (header, path, length, expected) => {
    expect(str("segmentValues", table([tier, endpoint, size]), header, path, length)).toBe(expected);
  });
});

describe("segment config from the controller", () => {
  it.each([
    [[{ ...tier, header: undefined }], "rollouts[0].segments[0].: needs exactly one of header, prefixes, bounds"],
    [[{ ...tier, prefixes: ["/a", "/b", "/c"] }], "rollouts[0].segments[0].: needs exactly one of header, prefixes, bounds"],
    [[{ ...tier, values: ["other"] }], "rollouts[0].segments[0].values[0]: must be 1-32 of a-z 0-9 _ - and not 'other'"],
    [[{ ...tier, name: "tier.x" }], "rollouts[0].segments[0].name: must be 1-32 of a-z 0-9 _ -"],
    [[{ ...endpoint, values: ["score"] }], "rollouts[0].segments[0].prefixes: must pair with values one to one"],
    [[{ ...size, bounds: [10, 5] }], "rollouts[0].segments[0].bounds[1]: must be an ascending non-negative integer"],
    [[{ ...size, values: ["a", "b"] }], "rollouts[0].segments[0].values: a size dimension has one value per bound plus one above the last"],
    [[tier, tier], "rollouts[0].segments[1].name: duplicate dimension tenant_tier"],
    [[tier, endpoint, size, { ...tier, name: "a" }, { ...tier, name: "b" }], "rollouts[0].segments: at most 4 dimensions"],
  ])("refuses %j", (segments, expected) => {
    expect(str("rolloutTableSummary", table(segments as unknown[]))).toBe(`error: ${expected}`);
  });
});
