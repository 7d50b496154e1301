// Reading back which config version a proxy's workers run from the filter's add/sub gauges
// (metrics/config-versions.ts): the 16 slots decoded against the newest version, the sum that proves no
// worker is 16 or more versions behind, workers without a table.
import { describe, expect, it } from "vitest";
import { decodeVersions, gaugesFromSamples, type ConfigGauges } from "../../controller/src/metrics/config-versions.ts";
import { parsePrometheusText } from "../../controller/src/metrics/prometheus-text.ts";

function gauges(perVersion: Record<number, number>, extraContexts = 0): ConfigGauges {
  const slots = new Array<number>(16).fill(0);
  let contexts = extraContexts;
  let versionSum = 0;
  for (const [v, n] of Object.entries(perVersion)) {
    slots[Number(v) % 16] = (slots[Number(v) % 16] ?? 0) + n;
    contexts += n;
    versionSum += Number(v) * n;
  }
  return { contexts, versionSum, slots };
}

describe("config versions per proxy", () => {
  it("reads Envoy's /stats/prometheus lines of the gauges", () => {
    const text = [
      "# TYPE modelroll_config_contexts gauge",
      "modelroll_config_contexts{} 4",
      "modelroll_config_slot_0_contexts{} 0",
      "modelroll_config_slot_5_contexts{} 3",
      "modelroll_config_slot_4_contexts{} 1",
      "modelroll_config_version_sum{} 83",
      "modelroll_config_updates{} 84",
    ].join("\n");
    const g = gaugesFromSamples(parsePrometheusText(text).samples);
    expect(g).toEqual({ contexts: 4, versionSum: 83, slots: [0, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] });
    // 3 workers at 21, one at 20 (21 mod 16 = 5, 20 mod 16 = 4; 3*21 + 20 = 83).
    expect(decodeVersions({ proxy: "a", gauges: g, error: null }, 21)).toEqual({
      proxy: "a",
      oldest: 20,
      contexts: 4,
      versions: [
        { version: 21, contexts: 3 },
        { version: 20, contexts: 1 },
      ],
      note: null,
    });
    expect(gaugesFromSamples(parsePrometheusText("modelroll_config_updates{} 3").samples)).toBeNull();
  });

  it("a slot stands for the newest version with its remainder; the sum tells a worker 16 behind from a current one", () => {
    expect(decodeVersions({ proxy: "a", gauges: gauges({ 40: 2 }), error: null }, 40).oldest).toBe(40);
    // Newest 40 but a worker still at 24 (same slot, 24 mod 16 = 8 = 40 mod 16): the sum is 16 short.
    const aliased = decodeVersions({ proxy: "a", gauges: gauges({ 40: 1, 24: 1 }), error: null }, 40);
    expect(aliased.oldest).toBeNull();
    expect(aliased.note).toMatch(/16 or more behind 40/);
    // A version 15 behind is still told exactly.
    expect(decodeVersions({ proxy: "a", gauges: gauges({ 40: 1, 25: 1 }), error: null }, 40).oldest).toBe(25);
  });

  it("workers without a table, none at all, an unreadable proxy", () => {
    const noTable = decodeVersions({ proxy: "a", gauges: gauges({ 7: 2 }, 1), error: null }, 7);
    expect(noTable).toMatchObject({ oldest: null, contexts: 3, note: "1 of 3 workers have no config yet" });
    expect(decodeVersions({ proxy: "a", gauges: gauges({}), error: null }, 7).note).toMatch(/no worker has started/);
    expect(decodeVersions({ proxy: "a", gauges: null, error: "connection refused" }, 7)).toMatchObject({
      oldest: null,
      note: "unreadable: connection refused",
    });
    expect(decodeVersions({ proxy: "a", gauges: null, error: null }, 7).note).toMatch(/reports no config version/);
  });
});
