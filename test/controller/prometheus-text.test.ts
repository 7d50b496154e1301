import { describe, expect, it } from "vitest";
import { envoyStatsPath } from "../../controller/src/metrics/envoy-series.ts";
import { parsePrometheusText, parseSampleValue, parseSamplesContaining } from "../../controller/src/metrics/prometheus-text.ts";

describe("parsePrometheusText", () => {
  it("reads samples with and without labels, TYPE lines, HELP and blank lines", () => {
    const text = [
      "# HELP modelroll_requests Requests seen by the filter.",
      "# TYPE modelroll_requests counter",
      'modelroll_requests{modelroll_rollout="fraud-model",modelroll_variant="canary"} 42',
      "",
      "# TYPE server_live gauge",
      "server_live 1",
      "# a free comment",
      "# TYPE modelroll_latency_us histogram",
      'modelroll_latency_us_bucket{le="0.5"} 3',
    ].join("\n");
    const { samples, types, problems } = parsePrometheusText(text);
    expect(problems).toEqual([]);
    expect(samples).toEqual([
      { name: "modelroll_requests", labels: { modelroll_rollout: "fraud-model", modelroll_variant: "canary" }, value: 42 },
      { name: "server_live", labels: {}, value: 1 },
      { name: "modelroll_latency_us_bucket", labels: { le: "0.5" }, value: 3 },
    ]);
    expect(Object.fromEntries(types)).toEqual({
      modelroll_requests: "counter",
      server_live: "gauge",
      modelroll_latency_us: "histogram",
    });
  });

  it("unescapes quotes, backslashes and newlines in label values", () => {
    const line = String.raw`m{a="say \"hi\"",b="C:\\dir\\",c="two\nlines",d="odd \x"} 1`;
    const [sample] = parsePrometheusText(line).samples;
    expect(sample.labels).toEqual({ a: 'say "hi"', b: "C:\\dir\\", c: "two\nlines", d: "odd \\x" });
  });

  it("keeps commas, braces and equals signs inside label values", () => {
    const [sample] = parsePrometheusText('m{path="/a,b}{c=d"} 7').samples;
    expect(sample.labels).toEqual({ path: "/a,b}{c=d" });
    expect(sample.value).toBe(7);
  });

  it("accepts spaces around labels, a trailing comma, CRLF and a timestamp", () => {
    const text = 'm { a = "1" , b="2", } 3.5 1700000000000\r\nn{} -2e3\r\n';
    const { samples, problems } = parsePrometheusText(text);
    expect(problems).toEqual([]);
    expect(samples).toEqual([
      { name: "m", labels: { a: "1", b: "2" }, value: 3.5 },
      { name: "n", labels: {}, value: -2000 },
    ]);
  });

  it("reads +Inf, -Inf and NaN values and +Inf bounds", () => {
    const text = ['h_bucket{le="+Inf"} +Inf', "g -Inf", "s NaN", "z 0"].join("\n");
    const values = parsePrometheusText(text).samples.map((s) => s.value);
    expect(values[0]).toBe(Infinity);
    expect(values[1]).toBe(-Infinity);
    expect(values[2]).toBeNaN();
    expect(values[3]).toBe(0);
    expect(parseSampleValue("+Inf")).toBe(Infinity);
    expect(parseSampleValue("1e-3")).toBe(0.001);
  });

  it("reports bad lines with their number and keeps the good ones", () => {
    const text = ["ok 1", 'broken{a="unterminated} 1', "no_value", "bad_value abc", 'bad_label{1a="x"} 1', "0starts_with_digit 1", "hex 0x10", "after 2"].join(
      "\n",
    );
    const { samples, problems } = parsePrometheusText(text);
    expect(samples.map((s) => [s.name, s.value])).toEqual([
      ["ok", 1],
      ["after", 2],
    ]);
    expect(problems.map((p) => p.line)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(problems[0].reason).toMatch(/unterminated/);
    expect(problems[2].reason).toMatch(/not a number/);
  });

  it("parses an empty document", () => {
    expect(parsePrometheusText("")).toEqual({ samples: [], types: new Map(), problems: [] });
  });
});

describe("parseSamplesContaining", () => {
  it("reads only the lines that hold the needle, as parsePrometheusText reads them", () => {
    const text = [
      "# TYPE modelroll_requests counter",
      'modelroll_requests{modelroll_rollout="a",modelroll_variant="canary"} 1',
      'modelroll_requests{modelroll_rollout="a-2",modelroll_variant="canary"} 2',
      'modelroll_requests{ modelroll_rollout = "a" } 3',
      'broken{modelroll_rollout="a"',
      'modelroll_requests{modelroll_rollout="b",note="\\"a\\""} 4',
    ].join("\r\n");
    expect(parseSamplesContaining(text, '"a"')).toEqual([
      { name: "modelroll_requests", labels: { modelroll_rollout: "a", modelroll_variant: "canary" }, value: 1 },
      { name: "modelroll_requests", labels: { modelroll_rollout: "a" }, value: 3 },
    ]);
  });
});

describe("envoyStatsPath", () => {
  const regexOf = (path: string) => new RegExp(decodeURIComponent(new URL(path, "http://x").searchParams.get("filter")!));

  it("asks Envoy for one rollout's stored stat names only", () => {
    const path = envoyStatsPath("fraud-model");
    expect(path).toBe("/stats/prometheus?usedonly&filter=%5Ewasmcustom%5C.modelroll%5C.rollout%5C.fraud-model%5C.");
    const re = regexOf(path);
    expect(re.test("wasmcustom.modelroll.rollout.fraud-model.variant.canary.requests")).toBe(true);
    expect(re.test("wasmcustom.modelroll.rollout.fraud-model.variant.stable.seg.tier.pro.class.2xx.responses")).toBe(true);
    expect(re.test("wasmcustom.modelroll.rollout.fraud-model-2.variant.canary.requests")).toBe(false);
    expect(re.test("wasmcustom.modelroll.rollout.fraud.variant.canary.requests")).toBe(false);
    expect(re.test("wasmcustom.modelroll.config.updates")).toBe(false);
  });

  it("escapes what a regex would read as an operator", () => {
    const re = regexOf(envoyStatsPath("a.b+"));
    expect(re.test("wasmcustom.modelroll.rollout.a.b+.variant.canary.requests")).toBe(true);
    expect(re.test("wasmcustom.modelroll.rollout.aXbb.variant.canary.requests")).toBe(false);
  });
});
