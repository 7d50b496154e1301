// The dashboard's pure parts for "which model is which": the models line and its short form, the window the
// observed share was measured over, and where the charts' decision labels go (never into one another).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { labelRows } from "../../dashboard/src/label-rows.ts";
import { modelsOf, observedWindowOf, observedWindowText } from "../../dashboard/src/read-models.ts";
import { buildPicture } from "../../dashboard/src/read.ts";

describe("labelRows", () => {
  it("puts labels a few pixels apart in rows under one another, and reuses a row once it is free", () => {
    // "started 5%" at 100 and "promoted 10%" at 104, each 60 wide: the second goes under the first.
    expect(
      labelRows([
        { x: 100, width: 60 },
        { x: 104, width: 70 },
        { x: 170, width: 40 },
        { x: 400, width: 40 },
      ]),
    ).toEqual([0, 1, 0, 0]);
    // More labels in one place than rows: the rest are left out (their lines are still drawn).
    expect(
      labelRows(
        Array.from({ length: 6 }, (_, i) => ({ x: 10 + i, width: 50 })),
        4,
      ),
    ).toEqual([0, 1, 2, 3, null, null]);
  });

  it("never places two labels of one row so that they touch, whatever the input order", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ x: fc.integer({ min: 0, max: 1400 }), width: fc.integer({ min: 1, max: 200 }) }), { maxLength: 30 }), (labels) => {
        const rows = labelRows(labels, 4, 6);
        for (let a = 0; a < labels.length; a++)
          for (let b = 0; b < labels.length; b++) {
            if (a === b || rows[a] === null || rows[a] !== rows[b]) continue;
            const [l, r] = labels[a]!.x <= labels[b]!.x ? [labels[a]!, labels[b]!] : [labels[b]!, labels[a]!];
            expect(r.x).toBeGreaterThanOrEqual(l.x + l.width + 6);
          }
      }),
      { numRuns: 300 },
    );
  });
});

describe("which model is which", () => {
  const variants = {
    stable: { model: "v1", cluster: "stable", upstreams: ["127.0.0.1:9001"] },
    canary: { model: null, cluster: "canary", upstreams: ["10.0.0.7:80", "10.0.0.8:80"] },
    text: "stable v1 at 127.0.0.1:9001 · canary 10.0.0.7:80, 10.0.0.8:80",
  };
  it("shows the controller's line, and the short form stable → canary; older controllers' declared versions", () => {
    expect(modelsOf({ variants })).toEqual({ models: variants.text, modelsShort: "v1 → 10.0.0.7:80 +1" });
    expect(modelsOf({}, { variants })).toEqual({ models: variants.text, modelsShort: "v1 → 10.0.0.7:80 +1" });
    expect(modelsOf({ spec: { models: { stable: "a", canary: "b" } } })).toEqual({ models: "stable a · canary b", modelsShort: "a → b" });
    expect(modelsOf({ name: "x" }, null)).toEqual({ models: null, modelsShort: null });
  });
});

describe("the observed share's window", () => {
  const evaluation = {
    at: "2026-01-01T12:02:10Z",
    windowStartedAt: "2026-01-01T12:00:00Z",
    stage: { index: 1, name: "5%" },
    observedCanaryPercent: 5.21,
  };
  it("says over which stage's window, and after the end that it is not measured since", () => {
    expect(observedWindowOf(evaluation, "Canary")).toEqual({ stage: "5%", seconds: 130, ended: false });
    expect(observedWindowText(observedWindowOf(evaluation, "Canary")!)).toBe("over stage 5%'s window (2m 10s)");
    expect(observedWindowText(observedWindowOf(evaluation, "RolledBack")!)).toBe("over stage 5%'s window (2m 10s), before it ended; not measured since");
    expect(observedWindowOf({ ...evaluation, observedCanaryPercent: null }, "Canary")).toBeNull();
    const p = buildPicture({ view: { name: "r", managed: true, phase: "RolledBack", canaryPercent: 0, evaluation, variants: { text: "t" } } }, Date.now());
    expect(p).toMatchObject({ observedCanaryPercent: 5.21, observedWindow: { ended: true }, models: "t" });
  });
});
