// The PromQL of the Prometheus metric source and how its answers become samples (pure parts; the queries
// themselves run against a real Prometheus in test/e2e/prometheus-counts.test.ts and prometheus-driver.test.ts).
import { describe, expect, it } from "vitest";
import { lifeEnds, mainQuery, restartedSidecarQuery, rolloutSelector, samplesFrom, splitMainAnswer } from "../../controller/src/metrics/prometheus-queries.ts";

const S = Date.UTC(2026, 0, 1);

describe("Prometheus counts: queries and answers", () => {
  it("selects every series of one rollout, optionally of one sidecar, quoting label values", () => {
    expect(rolloutSelector("fraud-model")).toBe('{__name__=~"modelroll_.+",modelroll_rollout="fraud-model"}');
    expect(rolloutSelector("fraud-model", { instance: "10.0.0.1:15090", pod: 'a"b', modelroll_rollout: "fraud-model" })).toBe(
      '{__name__=~"modelroll_.+",modelroll_rollout="fraud-model",instance="10.0.0.1:15090",pod="a\\"b"}',
    );
  });

  it("asks last values and values at the rollout's start in one query, summed by name and the filter's labels", () => {
    const q = mainQuery("r", S, S + 90_000);
    expect(q).toContain(
      'sum by (__name__, modelroll_rollout, modelroll_variant, modelroll_segment_dimension, modelroll_segment, modelroll_class, modelroll_schema, modelroll_unanalyzed, modelroll_label, modelroll_model, le) (last_over_time({__name__=~"modelroll_.+",modelroll_rollout="r"}[90000ms])) > 0',
    );
    expect(q).toContain(`{__name__=~"modelroll_.+",modelroll_rollout="r"} @ ${S / 1000}.000`);
    expect(q).toContain('resets(modelroll_requests{modelroll_rollout="r"}[90000ms])');
    expect(q.match(/modelroll_part", "(\w+)"/g)).toEqual([
      'modelroll_part", "now"',
      'modelroll_part", "start"',
      'modelroll_part", "restarted"',
      'modelroll_part", "newest"',
      'modelroll_part", "newest_filter"',
    ]);
    // The values at the start never change: once known, they are not asked again.
    expect(mainQuery("r", S, S + 90_000, false)).not.toContain(" @ ");
  });

  it("ends a restarted sidecar's lives at the last sample before each drop, on any of its series", () => {
    expect(
      lifeEnds([
        {
          labels: {},
          samples: [
            [1000, 5],
            [2000, 9],
            [3000, 2],
            [4000, 4],
          ],
        },
        {
          labels: {},
          samples: [
            [1000, 1],
            [2000, 1],
            [3000, 0],
            [5000, 3],
            [6000, 1],
          ],
        },
      ]),
    ).toEqual([2000, 5000]);
    expect(
      lifeEnds([
        {
          labels: {},
          samples: [
            [1000, 5],
            [2000, 5],
          ],
        },
      ]),
    ).toEqual([]);
  });

  it("asks each life's last value over its own span (a later life starts 1 ms after the previous one ended), and what the main query counted", () => {
    const q = restartedSidecarQuery("r", { instance: "a" }, [S + 10_000, S + 30_000], S, S + 60_000);
    const spans = [...q.matchAll(/\[(\d+)ms\] @ (\d+\.\d+)/g)].map((m) => [Number(m[1]), Number(m[2]) * 1000 - S]);
    expect(spans).toEqual([
      [10_000, 10_000],
      [19_999, 30_000],
      [29_999, 60_000],
    ]);
    expect(q).toContain('last_over_time({__name__=~"modelroll_.+",modelroll_rollout="r",instance="a"}[60000ms])) > 0, "modelroll_part", "naive"');
  });

  it("adds the parts up per series: last values minus values at the start, restarted sidecars' lives added", () => {
    const series = (name: string, value: number, extra: Record<string, string> = {}) => ({
      labels: { __name__: name, modelroll_rollout: "r", modelroll_variant: "canary", ...extra },
      value,
    });
    const main = splitMainAnswer([
      { labels: { ...series("modelroll_requests", 0).labels, modelroll_part: "now" }, value: 120 },
      { labels: { ...series("modelroll_requests", 0).labels, modelroll_part: "start" }, value: 20 },
      { labels: { ...series("modelroll_latency_us_bucket", 0, { le: "+Inf" }).labels, modelroll_part: "now" }, value: 7 },
      { labels: { instance: "b", modelroll_rollout: "r", modelroll_part: "restarted" }, value: 1 },
      { labels: { modelroll_part: "newest" }, value: (S + 1500) / 1000 },
      { labels: { modelroll_part: "newest_filter" }, value: (S + 2500) / 1000 },
    ]);
    expect(main.restarted).toEqual([{ instance: "b", modelroll_rollout: "r" }]);
    expect(main.newest).toBe(S + 2500);
    const samples = samplesFrom([main.now, [series("modelroll_requests", 30)]], [main.start, [series("modelroll_requests", 4)]]);
    expect(samples).toEqual([
      { name: "modelroll_latency_us_bucket", labels: { modelroll_rollout: "r", modelroll_variant: "canary", le: "+Inf" }, value: 7 },
      { name: "modelroll_requests", labels: { modelroll_rollout: "r", modelroll_variant: "canary" }, value: 126 },
    ]);
    expect(splitMainAnswer([]).newest).toBeNull();
  });
});
