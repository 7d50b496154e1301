// Differential tests for the Prometheus text parser and the summing: the fast code in
// controller/src/metrics against the code it replaced, kept verbatim in prometheus-reference.ts as
// referenceParse / referenceRolloutCounts. The whole Exposition must be the same for every input: samples
// (with label order), declared types, and problems with their line numbers and reasons.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parsePrometheusText, parseSamplesContaining, type Exposition, type Sample } from "../../controller/src/metrics/prometheus-text.ts";
import { emptyRolloutCounts, type RolloutCounts, type SliceCounts, type VariantCounts } from "../../controller/src/metrics/provider.ts";
import { RolloutCountsSum, rolloutCountsFromSamples, rolloutSamplesFromText } from "../../controller/src/metrics/rollout-counts.ts";
import { EnvoyAdminMetricProvider } from "../../controller/src/metrics/envoy-admin.ts";
import { GOOD, TrafficSim, type Behavior } from "../engine/sim.ts";
import { referenceParse, referenceRolloutCounts } from "./prometheus-reference.ts";

/** Everything deep equality could miss: label order, -0, NaN, the labels' prototype. */
function canonical(e: Exposition): unknown {
  return {
    samples: e.samples.map(canonicalSample),
    types: [...e.types],
    problems: e.problems.map((p) => Object.entries(p)),
  };
}
function canonicalSample(s: Sample): unknown {
  return {
    keys: Object.keys(s),
    name: s.name,
    labels: Object.entries(s.labels),
    plainObject: Object.getPrototypeOf(s.labels) === Object.prototype,
    value: Object.is(s.value, -0) ? "-0" : String(s.value),
  };
}
function expectSameExposition(text: string): void {
  const expected = referenceParse(text);
  const actual = parsePrometheusText(text);
  expect(canonical(actual)).toStrictEqual(canonical(expected));
  expect(actual).toStrictEqual(expected);
}

// ---- generated text ----

const SPACE = fc.constantFrom("", "", "", "", " ", " ", "  ", "\t", " \t", "\f", "\v", "\u00a0", "\r", "\ufeff", "\u2028");
const METRIC_NAME = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,10}$/) },
  { weight: 2, arbitrary: fc.constantFrom("modelroll_requests", "modelroll_latency_us_bucket", "m", "_", ":", "a:b") },
  { weight: 1, arbitrary: fc.constantFrom("0bad", "-x", "é", "m-n", "m.n", "m\u00a0", "", "{", "#x", "m\\") },
);
const LABEL_NAME = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,8}$/) },
  { weight: 2, arbitrary: fc.constantFrom("le", "modelroll_rollout", "modelroll_variant", "a", "b") },
  { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "toString", "1a", "", "a-b", "a:b", "é", "a b") },
);
const LABEL_VALUE_PIECE = fc.constantFrom(
  "a",
  "b",
  "fraud-model",
  "-",
  "+Inf",
  "1e3",
  "0.5",
  ",",
  "}",
  "{",
  "=",
  " ",
  "\t",
  "#",
  "é",
  "\u00a0",
  "\r",
  "\u2028",
  "\\\\",
  '\\"',
  "\\n",
  "\\x",
  "\\",
  "\\\\\\",
  '"',
);
const RAW_LABEL_VALUE = fc.array(LABEL_VALUE_PIECE, { maxLength: 6 }).map((pieces) => pieces.join(""));
const QUOTED = fc.oneof(
  { weight: 10, arbitrary: RAW_LABEL_VALUE.map((v) => `"${v}"`) },
  { weight: 1, arbitrary: RAW_LABEL_VALUE },
  { weight: 1, arbitrary: RAW_LABEL_VALUE.map((v) => `"${v}`) },
  { weight: 1, arbitrary: RAW_LABEL_VALUE.map((v) => `'${v}'`) },
);
const EQUALS = fc.constantFrom("=", "=", "=", "=", "", ":", "==");
const LABEL_PAIR = fc.tuple(SPACE, LABEL_NAME, SPACE, EQUALS, SPACE, QUOTED, SPACE).map((parts) => parts.join(""));
const SEPARATOR = fc.constantFrom(",", ",", ",", ",", ";", "", ",,", " , ");
const LABELS_BLOCK = fc.oneof(
  { weight: 2, arbitrary: fc.constant("") },
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        fc.array(fc.tuple(LABEL_PAIR, SEPARATOR), { maxLength: 5 }),
        LABEL_PAIR,
        fc.constantFrom("", "", "", ",", ", "),
        fc.constantFrom("}", "}", "}", "}", "", "}}", " }", "{"),
      )
      .map(([pairs, last, trailing, close]) => `{${pairs.map(([p, s]) => p + s).join("")}${last}${trailing}${close}`),
  },
  { weight: 1, arbitrary: fc.constantFrom("{}", "{ }", "{,}", "{", "}", "{=}", '{a="1"}{b="2"}') },
);
const VALUE = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "0",
      "1",
      "42",
      "+Inf",
      "-Inf",
      "Inf",
      "inf",
      "+inf",
      "INF",
      "NaN",
      "nan",
      "NAN",
      "Infinity",
      "+Infinity",
      "-infinity",
      "-nan",
      "1e3",
      "1E-3",
      "1e+3",
      "-2.5",
      ".5",
      "5.",
      "-0",
      "+0",
      "-.0",
      "0x10",
      "0b1",
      "1_0",
      "",
      "abc",
      "1e",
      "e1",
      "--1",
      "1.2.3",
      "007",
      "123456789012345",
      "1234567890123456",
      "999999999999999",
      "9007199254740993",
      "99999999999999999999",
      "1e400",
      "-",
      "+",
      ".",
      "1,5",
      "Infinityx",
      "²",
      "١",
      "4e-400",
      "400000.0000000000",
    ),
  },
  { weight: 2, arbitrary: fc.nat().map(String) },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.double().map(String) },
  { weight: 1, arbitrary: fc.double().map((d) => d.toExponential()) },
  { weight: 1, arbitrary: fc.stringMatching(/^[+-]?\d{0,20}(\.\d{0,5})?([eE][+-]?\d{1,3})?$/) },
);
const TIMESTAMP = fc.constantFrom("", "", "", " 1700000000000", "\t1700000000000", " -5", " 12a", " 1 2", " -", " +5", " 1.5", "  7  ", " 0x1", " \u00a01");
const SAMPLE_LINE = fc
  .tuple(SPACE, METRIC_NAME, SPACE, LABELS_BLOCK, SPACE, fc.constantFrom(" ", " ", "", "\t", "  "), VALUE, TIMESTAMP, SPACE)
  .map((parts) => parts.join(""));
const COMMENT_LINE = fc.oneof(
  fc.constantFrom(
    "# TYPE m counter",
    "#TYPE m Gauge",
    "# HELP m some help text",
    "#",
    "#   ",
    "  # TYPE a b c",
    "# TYPE a",
    "\t#\tTYPE\tx\tHISTOGRAM",
    "# TYPE m\u00a0counter",
    "#  TYPE  spaced   summary  ",
    "# type m counter",
    "# TYPE m counter extra words",
    "\u00a0# TYPE nb gauge",
    "# TYPE m untyped\r",
  ),
  fc
    .tuple(SPACE, METRIC_NAME, SPACE, fc.constantFrom("counter", "GAUGE", "histogram", "Summary", "untyped", ""))
    .map(([a, name, b, type]) => `#${a}TYPE ${name}${b} ${type}`),
);
const BLANK_LINE = fc.constantFrom("", " ", "\t", "\r", "\f", "\u00a0", "\ufeff", " \t ");
const GARBAGE_LINE = fc.string({
  unit: fc.constantFrom(
    "m",
    "a",
    "_",
    ":",
    "1",
    "0",
    ".",
    "e",
    "+",
    "-",
    "{",
    "}",
    "=",
    '"',
    "\\",
    ",",
    " ",
    "\t",
    "\r",
    "#",
    "I",
    "n",
    "f",
    "N",
    "é",
    "\u00a0",
  ),
  maxLength: 30,
});
const LINE = fc.oneof(
  { weight: 10, arbitrary: SAMPLE_LINE },
  { weight: 2, arbitrary: COMMENT_LINE },
  { weight: 1, arbitrary: BLANK_LINE },
  { weight: 2, arbitrary: GARBAGE_LINE },
);
const LINE_END = fc.constantFrom("\n", "\n", "\n", "\r\n", "\r\n", "\r\r\n", "\n\n");
const DOCUMENT = fc
  .tuple(fc.array(fc.tuple(LINE, LINE_END), { maxLength: 25 }), fc.constantFrom("", "", "\n", "\r\n", "\r"))
  .map(([lines, tail]) => lines.map(([line, end]) => line + end).join("") + tail);

// Lines close to the common form, so that the fast path's every branch is reached: a valid line with one
// character inserted, deleted or replaced; and documents of a series' lines that share a prefix (as a
// histogram's buckets do), each possibly so damaged.
const PLAIN_VALUE = fc.stringMatching(/^[a-zA-Z0-9_.+-]{0,6}$/);
const VALID_LINE = fc
  .tuple(
    fc.stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,6}$/),
    fc.array(fc.tuple(fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,4}$/), PLAIN_VALUE), { maxLength: 4 }),
    fc.oneof(fc.nat().map(String), fc.constantFrom("1.5", "+Inf", "NaN", "12345678901234567", "99999999999999999", "9007199254740993", "1e3")),
    fc.constantFrom("", " 1700000000000", " -1"),
  )
  .map(([name, labels, value, ts]) => ({ name, labels, value, ts }));
const renderLine = (l: { name: string; labels: Array<[string, string]>; value: string; ts: string }, braces: boolean) =>
  `${l.name}${braces || l.labels.length > 0 ? `{${l.labels.map(([k, v]) => `${k}="${v}"`).join(",")}}` : ""} ${l.value}${l.ts}`;
const DAMAGE_CHAR = fc.constantFrom(" ", "\t", "{", "}", ",", "=", '"', "\\", "\r", "x", "1", "-", ".", "#", "\f", "\u00a0", "é");
const damage = (line: string, at: number, kind: number, char: string) => {
  const i = at % (line.length + 1);
  if (kind === 0) return line.slice(0, i) + char + line.slice(i);
  if (kind === 1) return line.slice(0, i) + line.slice(i + 1);
  if (kind === 2) return line.slice(0, i) + char + line.slice(i + 1);
  return line;
};
const DAMAGE = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 5 }), DAMAGE_CHAR);
const SERIES_DOCUMENT = fc
  .tuple(VALID_LINE, fc.boolean(), fc.array(fc.tuple(PLAIN_VALUE, fc.nat(), DAMAGE), { minLength: 1, maxLength: 12 }), LINE_END)
  .map(([base, braces, lines, end]) =>
    lines
      .map(([last, value, [at, kind, char]]) => {
        const labels = base.labels.length > 0 ? [...base.labels.slice(0, -1), [base.labels[base.labels.length - 1][0], last] as [string, string]] : [];
        return damage(renderLine({ ...base, labels, value: String(value) }, braces), at, kind, char);
      })
      .join(end),
  );

/** referenceParse line by line: the samples of the lines (as split("\n") gives them) that hold the needle. */
function referenceSamplesContaining(text: string, needle: string): Sample[] {
  return text
    .split("\n")
    .map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line))
    .filter((line) => line.includes(needle))
    .flatMap((line) => referenceParse(line).samples);
}

describe("parsePrometheusText against the reference parser", () => {
  it("gives the same Exposition for generated documents", () => {
    fc.assert(
      fc.property(DOCUMENT, (text) => expectSameExposition(text)),
      { numRuns: 3000 },
    );
  });

  it("gives the same result for every single generated line, with and without CRLF", () => {
    fc.assert(
      fc.property(LINE, (line) => {
        expectSameExposition(line);
        expectSameExposition(`${line}\r\n`);
        expectSameExposition(`\n${line}\n`);
      }),
      { numRuns: 5000 },
    );
  });

  it("gives the same result for common lines with one character inserted, deleted or replaced", () => {
    fc.assert(
      fc.property(VALID_LINE, fc.boolean(), DAMAGE, (line, braces, [at, kind, char]) => {
        const text = damage(renderLine(line, braces), at, kind, char);
        expectSameExposition(text);
        expectSameExposition(`${renderLine(line, braces)}\n${text}\n${renderLine(line, braces)}`);
      }),
      { numRuns: 10000 },
    );
  });

  it("gives the same result for runs of a series' lines sharing a prefix, some damaged", () => {
    fc.assert(
      fc.property(SERIES_DOCUMENT, (text) => expectSameExposition(text)),
      { numRuns: 5000 },
    );
  });

  it("gives the same result for fuzz text from the format's characters", () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.constantFrom(
            "m",
            "_",
            "l",
            "e",
            "=",
            '"',
            "\\",
            "n",
            "{",
            "}",
            ",",
            " ",
            "\t",
            "\r",
            "\n",
            "#",
            "1",
            "0",
            ".",
            "-",
            "+",
            "I",
            "f",
            "N",
            "a",
            "\f",
            "\u00a0",
          ),
          maxLength: 120,
        }),
        (text) => expectSameExposition(text),
      ),
      { numRuns: 5000 },
    );
  });

  it("agrees on hand-picked edge cases", () => {
    const cases = [
      "",
      "\n",
      "\r\n",
      "\r",
      "m 1",
      "m 1\n",
      "m 1\r\n",
      "m 1\r\r\n",
      "m1",
      "m{} 1",
      "m{}1",
      "m {} 1",
      "m\t{}\t1\t2\t",
      'm{a="1"}1',
      'm{a="1",} 1',
      'm{a="1",,} 1',
      'm{a="1" } 1',
      'm{ a="1"} 1',
      'm{a ="1"} 1',
      'm{a= "1"} 1',
      'm{a="1"} 1 2 3',
      'm{a="1"} 1 -2',
      'm{a="1"} 1 +2',
      'm{a="1"} 1 2x',
      'm{a="1"} 1\u00a0',
      'm{a="1"}\u00a01',
      "m\f1",
      "m\u00a01",
      "m 1\f",
      "m 1 \f",
      'm{a="x\\"y"} 1',
      'm{a="x\\\\"} 1',
      'm{a="x\\n"} 1',
      'm{a="x\\q"} 1',
      'm{a="x\\',
      'm{a="x',
      "m{a=x} 1",
      "m{a",
      "m{",
      "m{a=",
      'm{a="1"',
      'm{a="1"}',
      'm{a="1"} ',
      'm{a="x" 5',
      'm{a="x"x 5',
      'm{a="x"} 5 x',
      "m ",
      "m",
      "  m 1",
      "\tm 1",
      "\fm 1",
      "# TYPE m counter",
      "  # TYPE m counter",
      "m 0x10",
      "m 1_0",
      'm{__proto__="x",a="1"} 1',
      'm{a="1",a="2"} 1',
      'm{constructor="c"} 1',
      "m 123456789012345",
      "m 1234567890123456",
      "m 007",
      "m -0",
      "m +Inf",
      "m NaN",
      "m Infinity",
      "m 1e400",
      'm{a="é\u2028"} 1',
      "m 1\u2028",
      "é 1",
      'h_bucket{le="+Inf"} +Inf',
    ];
    for (const text of cases) expectSameExposition(text);
    // One document of all of them: line numbers carry over.
    expectSameExposition(cases.join("\n"));
    expectSameExposition(cases.join("\r\n"));
  });

  it("agrees on the recorded fixtures", () => {
    for (const name of ["envoy-a.prom", "envoy-b.prom", "envoy-segments.prom"]) {
      expectSameExposition(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"));
    }
  });
});

describe("parseSamplesContaining", () => {
  it("gives the reference's samples of exactly the lines that hold the needle", () => {
    const needle = fc.constantFrom('"a"', '"fraud-model"', "a", "1", "=", "\\", "m", "", " ", "\r", '"', "#", "\n", "1\n", "}\r\n");
    fc.assert(
      fc.property(DOCUMENT, needle, (text, n) => {
        expect(parseSamplesContaining(text, n).map(canonicalSample)).toStrictEqual(referenceSamplesContaining(text, n).map(canonicalSample));
      }),
      { numRuns: 3000 },
    );
  });
});

// ---- summing: realistic Envoy text ----

/** Label values as the format writes them. */
const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/**
 * RolloutCounts as Envoy's /stats/prometheus prints them: one TYPE line per family, families by name, a
 * histogram's buckets (every bound), _sum and _count per series; besides the gates' series a few the summing
 * keeps as counters or other histograms, a filter-wide counter and Envoy's own stats.
 */
function envoyText(rollouts: Array<{ name: string; counts: RolloutCounts }>, options: { fractionalSums?: boolean } = {}): string {
  const families = new Map<string, { type: string; lines: string[] }>();
  const add = (family: string, type: string, line: string) => {
    let f = families.get(family);
    if (!f) families.set(family, (f = { type, lines: [] }));
    f.lines.push(line);
  };
  const sum = (x: number) => (options.fractionalSums ? x.toFixed(10) : String(x));
  const histogram = (family: string, labels: string, buckets: Array<{ upperBound: number; cumulativeCount: number }>, total: number, count: number) => {
    for (const b of buckets)
      add(family, "histogram", `${family}_bucket{${labels},le="${b.upperBound === Infinity ? "+Inf" : b.upperBound}"} ${b.cumulativeCount}`);
    add(family, "histogram", `${family}_sum{${labels}} ${sum(total)}`);
    add(family, "histogram", `${family}_count{${labels}} ${count}`);
  };
  const variant = (rollout: string, name: string, c: VariantCounts, segment: [string, string] | null) => {
    const labels =
      `modelroll_rollout="${escapeLabel(rollout)}",modelroll_variant="${name}"` +
      (segment ? `,modelroll_segment_dimension="${escapeLabel(segment[0])}",modelroll_segment="${escapeLabel(segment[1])}"` : "");
    add("modelroll_requests", "counter", `modelroll_requests{${labels}} ${c.requests}`);
    for (const [cls, n] of Object.entries(c.responses)) add("modelroll_responses", "counter", `modelroll_responses{${labels},modelroll_class="${cls}"} ${n}`);
    for (const [key, n] of Object.entries(c.counters)) {
      const schema = /^outputs\{schema=(\w+)\}$/.exec(key);
      if (schema) add("modelroll_outputs", "counter", `modelroll_outputs{${labels},modelroll_schema="${schema[1]}"} ${n}`);
    }
    add("modelroll_predictions", "counter", `modelroll_predictions{${labels},modelroll_label="approve"} ${Math.floor(c.requests / 2)}`);
    add("modelroll_outputs", "counter", `modelroll_outputs{${labels},modelroll_unanalyzed="too_large"} ${c.requests % 3}`);
    if (name === "shadow") add("modelroll_status_match", "counter", `modelroll_status_match{${labels}} ${c.requests - (c.requests % 5)}`);
    histogram("modelroll_latency_us", labels, c.latency.bucketsUs, c.latency.sumUs, c.latency.count);
    const confidence = [200, 500, 800, 1000].map((upperBound, i) => ({ upperBound, cumulativeCount: Math.floor((c.requests * (i + 1)) / 4) }));
    histogram("modelroll_confidence_milli", labels, [...confidence, { upperBound: Infinity, cumulativeCount: c.requests }], c.requests * 612.5, c.requests);
  };
  for (const { name, counts } of rollouts) {
    const slices: Array<[SliceCounts | RolloutCounts, [string, string] | null]> = [[counts, null]];
    for (const [dimension, values] of Object.entries(counts.segments)) {
      for (const [value, slice] of Object.entries(values)) slices.push([slice, [dimension, value]]);
    }
    for (const [slice, segment] of slices) {
      for (const v of ["stable", "canary", "shadow"] as const) {
        const c = slice[v];
        if (c) variant(name, v, c, segment);
      }
    }
  }
  add("modelroll_config_updates", "counter", "modelroll_config_updates 3");
  add("envoy_cluster_upstream_rq_total", "counter", 'envoy_cluster_upstream_rq_total{envoy_cluster_name="stable"} 120');
  const out: string[] = [];
  for (const [family, f] of [...families].sort(([a], [b]) => (a < b ? -1 : 1))) out.push(`# TYPE ${family} ${f.type}`, ...f.lines);
  return `${out.join("\n")}\n`;
}

const TENANTS = Object.fromEntries(["t0", "t1", "t2", "other"].map((v) => [v, 0.25]));
function simCounts(seed: number, opts: { segments: boolean; shadowPercent: number; behavior?: Behavior }): RolloutCounts {
  const sim = new TrafficSim({
    seed,
    ...(opts.segments ? { segment: { dimension: "tenant", shares: TENANTS } } : {}),
    behavior: () => opts.behavior ?? GOOD,
    allBuckets: true,
  });
  sim.run(2000, { canaryPercent: 10, shadowPercent: opts.shadowPercent });
  return sim.counts();
}

function expectSameCounts(texts: string[], rollout: string): RolloutCounts {
  const expected = referenceRolloutCounts(
    texts.flatMap((t) => referenceParse(t).samples),
    rollout,
  );
  const parsed = rolloutCountsFromSamples(
    texts.flatMap((t) => parsePrometheusText(t).samples),
    rollout,
  );
  const filtered = rolloutCountsFromSamples(
    texts.flatMap((t) => rolloutSamplesFromText(t, rollout)),
    rollout,
  );
  // As EnvoyAdminMetricProvider sums: one scrape after another.
  const sum = new RolloutCountsSum(rollout);
  for (const t of texts) sum.add(rolloutSamplesFromText(t, rollout));
  const inParts = sum.finish();
  for (const actual of [parsed, filtered, inParts]) {
    expect(actual).toStrictEqual(expected);
    // Key order too (counters, segments), which deep equality does not look at.
    expect(JSON.stringify(actual)).toBe(JSON.stringify(expected));
  }
  return expected;
}

describe("rolloutCountsFromSamples against the reference, on recorded Envoy text", () => {
  it("sums several endpoints of several rollouts, with segments, shadow and every latency bucket", () => {
    const texts = [1, 2, 3].map((seed) =>
      envoyText(
        [
          { name: "fraud-model", counts: simCounts(seed, { segments: true, shadowPercent: 10 }) },
          { name: "fraud-model-2", counts: simCounts(seed + 100, { segments: false, shadowPercent: 0 }) },
        ],
        { fractionalSums: seed === 2 },
      ),
    );
    expect(texts[0].split("\n").length).toBeGreaterThan(4000);
    const counts = expectSameCounts(texts, "fraud-model");
    expect(counts.stable.requests).toBeGreaterThan(4000);
    expect(counts.shadow?.requests).toBeGreaterThan(0);
    expect(Object.keys(counts.segments.tenant)).toEqual(["other", "t0", "t1", "t2"]);
    expect(counts.canary.latency.bucketsUs.length).toBeGreaterThan(200);
    expect(counts.stable.histograms.confidence_milli.buckets.length).toBe(5);
    expect(expectSameCounts(texts, "fraud-model-2").canary.requests).toBeGreaterThan(0);
    expect(expectSameCounts(texts, "no-such-rollout")).toStrictEqual(emptyRolloutCounts());
  });

  it("agrees on text rendered as bench/gates.ts renders it", () => {
    const values = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"];
    const shares = Object.fromEntries([...values, "other"].map((v) => [v, 0.1]));
    const texts = [1, 2].map((seed) => {
      const sim = new TrafficSim({ seed, segment: { dimension: "tenant", shares }, behavior: () => GOOD, allBuckets: true });
      sim.run(3000, { canaryPercent: 5, shadowPercent: 0 });
      const c = sim.counts();
      const lines: string[] = [];
      const render = (variant: "stable" | "canary", counts: VariantCounts, segment: string | null) => {
        const labels = `modelroll_rollout="fraud-model",modelroll_variant="${variant}"${segment === null ? "" : `,modelroll_segment_dimension="tenant",modelroll_segment="${segment}"`}`;
        lines.push(`modelroll_requests{${labels}} ${counts.requests}`);
        for (const [cls, n] of Object.entries(counts.responses)) if (n > 0) lines.push(`modelroll_responses{${labels},modelroll_class="${cls}"} ${n}`);
        for (const b of counts.latency.bucketsUs)
          lines.push(`modelroll_latency_us_bucket{${labels},le="${b.upperBound === Infinity ? "+Inf" : b.upperBound}"} ${b.cumulativeCount}`);
        lines.push(`modelroll_latency_us_sum{${labels}} ${counts.latency.sumUs}`);
        lines.push(`modelroll_latency_us_count{${labels}} ${counts.latency.count}`);
      };
      for (const v of ["stable", "canary"] as const) render(v, c[v], null);
      for (const [value, slice] of Object.entries(c.segments.tenant)) for (const v of ["stable", "canary"] as const) render(v, slice[v], value);
      return `${lines.join("\n")}\n`;
    });
    expectSameExposition(texts[0]);
    expectSameCounts(texts, "fraud-model");
  });

  it("agrees with CRLF line ends, odd lines and lines of other filters mixed in", () => {
    const text = envoyText([{ name: "fraud-model", counts: simCounts(7, { segments: true, shadowPercent: 5 }) }]);
    const lines = text.split("\n");
    const odd = [
      'modelroll_requests{modelroll_rollout="fraud-model",modelroll_variant="canary"',
      "garbage",
      'x{modelroll_rollout="fraud-model",modelroll_variant="stable"} 1',
      "   ",
      "# HELP x y",
    ];
    const mixed = lines.flatMap((line, i) => (i % 97 === 0 ? [line, odd[i % odd.length]] : [line])).join("\r\n");
    expectSameExposition(mixed);
    expectSameCounts([mixed, text], "fraud-model");
  });

  it("EnvoyAdminMetricProvider sums the endpoints in their order, whichever answers first", async () => {
    // Fractional sums, so that another order could change the last bits.
    const texts = [11, 12, 13].map((seed) =>
      envoyText([{ name: "fraud-model", counts: simCounts(seed, { segments: true, shadowPercent: 10 }) }], { fractionalSums: true }),
    );
    const delays = [150, 0, 60];
    const servers: Server[] = [];
    const requests: string[] = [];
    try {
      const urls: string[] = [];
      for (const [i, text] of texts.entries()) {
        const server = createServer((req, res) => {
          requests.push(req.url ?? "");
          setTimeout(() => res.end(text), delays[i]);
        });
        servers.push(server);
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      }
      const reading = await new EnvoyAdminMetricProvider(urls).readRollout("fraud-model");
      expect(reading.status).toBe("measured");
      const expected = referenceRolloutCounts(
        texts.flatMap((t) => referenceParse(t).samples),
        "fraud-model",
      );
      if (reading.status === "measured") expect(JSON.stringify(reading.value)).toBe(JSON.stringify(expected));
      expect(requests).toEqual(Array(3).fill(`/stats/prometheus?usedonly&filter=${encodeURIComponent("^wasmcustom\\.modelroll\\.rollout\\.fraud-model\\.")}`));
    } finally {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    }
  });

  it("agrees on the recorded fixtures", () => {
    const texts = ["envoy-a.prom", "envoy-b.prom", "envoy-segments.prom"].map((name) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"));
    for (const rollout of ["fraud-model", "other-model", "nope"]) expectSameCounts(texts, rollout);
  });
});

// ---- summing: generated modelroll lines ----

const ROLLOUT_NAMES = ["fraud-model", "fraud-model-2", "r", 'a"b', "x\\y", "two\nlines", ""];
const MODELROLL_LINE = fc
  .record({
    name: fc.constantFrom(
      "modelroll_requests",
      "modelroll_responses",
      "modelroll_latency_us_bucket",
      "modelroll_latency_us_sum",
      "modelroll_latency_us_count",
      "modelroll_outputs",
      "modelroll_predictions",
      "modelroll_confidence_milli_bucket",
      "modelroll_confidence_milli_sum",
      "modelroll_confidence_milli_count",
      "modelroll_prompt_tokens_bucket",
      "modelroll_status_match",
      "modelroll_config_updates",
      "envoy_x",
    ),
    rollout: fc.option(fc.constantFrom(...ROLLOUT_NAMES), { nil: undefined, freq: 8 }),
    variant: fc.option(fc.constantFrom("stable", "canary", "shadow", "other", "includes"), { nil: undefined, freq: 8 }),
    dimension: fc.option(fc.constantFrom("tenant", "region"), { nil: undefined }),
    value: fc.option(fc.constantFrom("t0", "t1", "other", ""), { nil: undefined }),
    cls: fc.option(fc.constantFrom("2xx", "3xx", "4xx", "5xx", "local", "1xx"), { nil: undefined }),
    le: fc.option(fc.constantFrom("100", "105", "1000", "+Inf", "+inf", "1e3", "0.5", "NaN", "abc", "007", "1234567890123456", "99999999999999999", "-5"), {
      nil: undefined,
    }),
    extra: fc.option(fc.constantFrom(["modelroll_schema", "valid"], ["modelroll_label", "approve"], ["modelroll_unanalyzed", "no_body"], ["other", "x"]), {
      nil: undefined,
    }),
    duplicateRollout: fc.option(fc.constantFrom(...ROLLOUT_NAMES), { nil: undefined, freq: 10 }),
    sample: fc.oneof(
      fc.constantFrom("0", "1", "17", "2.5", "0.1", "NaN", "+Inf", "-Inf", "-3", "1e3", "-0", "400000.0000000000"),
      fc.nat().map(String),
      fc.double({ noNaN: true, min: -1e6, max: 1e6 }).map(String),
    ),
  })
  .map((l) => {
    const labels: string[] = [];
    if (l.rollout !== undefined) labels.push(`modelroll_rollout="${escapeLabel(l.rollout)}"`);
    if (l.variant !== undefined) labels.push(`modelroll_variant="${l.variant}"`);
    if (l.dimension !== undefined) labels.push(`modelroll_segment_dimension="${l.dimension}"`);
    if (l.value !== undefined) labels.push(`modelroll_segment="${l.value}"`);
    if (l.cls !== undefined) labels.push(`modelroll_class="${l.cls}"`);
    if (l.extra !== undefined) labels.push(`${l.extra[0]}="${l.extra[1]}"`);
    if (l.le !== undefined) labels.push(`le="${l.le}"`);
    if (l.duplicateRollout !== undefined) labels.push(`modelroll_rollout="${escapeLabel(l.duplicateRollout)}"`);
    return `${l.name}{${labels.join(",")}} ${l.sample}`;
  });
const MODELROLL_DOCUMENT = fc
  .array(fc.tuple(fc.oneof({ weight: 8, arbitrary: MODELROLL_LINE }, { weight: 1, arbitrary: LINE }), LINE_END), { maxLength: 40 })
  .map((lines) => lines.map(([line, end]) => line + end).join(""));

describe("rolloutCountsFromSamples against the reference, on generated series", () => {
  it("gives the same counts, reading everything or only the rollout's lines", () => {
    fc.assert(
      fc.property(fc.array(MODELROLL_DOCUMENT, { minLength: 1, maxLength: 3 }), fc.constantFrom(...ROLLOUT_NAMES), (texts, rollout) => {
        expectSameCounts(texts, rollout);
      }),
      { numRuns: 2000 },
    );
  });
});
