import { describe, expect, it } from "vitest";
import { parsePrometheusText, parseSampleValue } from "../../controller/src/metrics/prometheus-text.ts";

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
    const text = [
      "ok 1",
      'broken{a="unterminated} 1',
      "no_value",
      "bad_value abc",
      'bad_label{1a="x"} 1',
      "0starts_with_digit 1",
      "hex 0x10",
      "after 2",
    ].join("\n");
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
