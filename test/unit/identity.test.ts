// Model identity in the filter (filter/identity.ts), from build/filter-testing.wasm: the `models` part of the
// controller's rollout table, how an answer's stated version is classified, and when a worker's fail-safe
// survives a config update.
import { beforeAll, describe, expect, it } from "vitest";
import { loadFilterTesting, type FilterTesting } from "./filter-testing.ts";

let filter: FilterTesting;
const str = (name: string, ...args: string[]): string => filter.str(name, ...args);
const yes = (name: string, ...args: string[]): boolean => Boolean(filter.call(name, ...args));

beforeAll(async () => {
  filter = await loadFilterTesting();
});

const rollout = { name: "fraud-model", pathPrefix: "/v1/predict", stickyHeader: "x-user-id", canaryBasisPoints: 500 };
const table = (models: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ epoch: "e", version: 3, rollouts: [{ ...rollout, ...extra, ...(models === undefined ? {} : { models }) }] });
const byField = { stable: "v1", canary: "v2", versionField: "meta.model_version" };
const byHeader = { stable: "v1", canary: "v2", versionHeader: "x-model-version" };

describe("model identity: answers", () => {
  it.each([
    ['{"meta":{"model_version":"v2"}}', "canary"],
    ['{"meta":{"model_version":"v1"}}', "stable mismatch"],
    ['{"meta":{"model_version":"v3"}}', "other mismatch"],
    ['{"meta":{}}', "missing"],
    ['{"meta":{"model_version":{"v":"v2"}}}', "missing"],
    ["not json", "missing"],
    ['{"meta":{"model_version":"V2"}}', "other mismatch"],
  ])("a body %s is %s (versionField)", (body, expected) => {
    expect(str("identityOf", table(byField), body, "")).toBe(expected);
  });

  it("an integer version is compared in decimal", () => {
    expect(str("identityOf", table({ stable: "1", canary: "2", versionField: "v" }), '{"v":2}', "")).toBe("canary");
    expect(str("identityOf", table({ stable: "1", canary: "2", versionField: "v" }), '{"v":2.5}', "")).toBe("missing");
  });

  it.each([
    ["v2", "canary"],
    ["  v2 ", "canary"],
    ["v1", "stable mismatch"],
    ["v9", "other mismatch"],
    ["", "missing"],
  ])("a header %j is %s (versionHeader), whatever the body says", (header, expected) => {
    expect(str("identityOf", table(byHeader), '{"model_version":"v1"}', header)).toBe(expected);
  });

  it("a rollout without models is not checked", () => {
    expect(str("identityOf", table(undefined), "{}", "v2")).toBe("none");
  });
});

describe("model identity: the table's models field", () => {
  it.each([
    [{ stable: "v1", canary: "v2" }, "rollouts[0].models.: needs exactly one of versionField, versionHeader"],
    [{ ...byField, versionHeader: "x-v" }, "rollouts[0].models.: needs exactly one of versionField, versionHeader"],
    [{ canary: "v2", versionField: "v" }, "rollouts[0].models.stable: is required"],
    [{ ...byField, stable: "has space" }, "rollouts[0].models.stable: must be 1-128 printable characters without spaces"],
    [{ ...byField, versionField: "a..b" }, "rollouts[0].models.versionField: must be a dotted path like model_version or meta.version"],
    [{ ...byHeader, versionHeader: "X-Model" }, "rollouts[0].models.versionHeader: must be a lowercase header name"],
    ["v2", "rollouts[0].models.: must be an object"],
  ])("refuses %j, naming the field", (models, expected) => {
    expect(str("rolloutTableSummary", table(models))).toBe(`error: ${expected}`);
  });
});

describe("model identity: the fail-safe across config updates", () => {
  it("survives an update that keeps the weights and models, and ends with any change to either", () => {
    expect(yes("identityTripCarries", table(byField), table(byField))).toBe(true);
    expect(yes("identityTripCarries", table(byField), table(byField, { canaryBasisPoints: 0 }))).toBe(false);
    expect(yes("identityTripCarries", table(byField), table({ ...byField, canary: "v3" }))).toBe(false);
    expect(yes("identityTripCarries", table(byField), table(byHeader))).toBe(false);
    expect(yes("identityTripCarries", table(byField), table(undefined))).toBe(false);
  });
});
