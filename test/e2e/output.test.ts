// Output analysis on real Envoy: label distribution, confidence, LLM fields, answers that cannot be
// analyzed (and why), and hostile bodies that must pass through untouched without hurting the filter.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePrometheusText } from "../../controller/src/metrics/prometheus-text.ts";
import { request } from "node:http";
import { api, send, sendMany, startStack, waitFor, waitForRolloutActive, type Stack } from "./harness.ts";

/** POST through Envoy and return the raw status and bytes (no decompression, unlike fetch). */
function rawPost(url: string, headers: Record<string, string>): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { "content-type": "application/json", ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end("{}");
  });
}

/** Envoy's histogram sums are approximate (values are binned to about two significant digits). */
function expectNear(actual: number, expected: number, relative: number, what: string): void {
  expect(Math.abs(actual - expected) / Math.max(1, expected), `${what}: ${actual} vs ${expected}`).toBeLessThan(relative);
}

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** The filter's series for one rollout and variant (overall slice), keyed "name{label=value}" without rollout/variant labels. */
async function series(rollout: string, variant: string): Promise<Record<string, number>> {
  const text = await (
    await fetch(
      `${stack.adminUrl}/stats/prometheus?usedonly&filter=${encodeURIComponent(`^wasmcustom\\.modelroll\\.rollout\\.${rollout}\\.variant\\.${variant}\\.`)}`,
    )
  ).text();
  const out: Record<string, number> = {};
  for (const s of parsePrometheusText(text).samples) {
    if (s.labels.modelroll_segment_dimension !== undefined) continue;
    const extra = Object.entries(s.labels).filter(([k]) => k !== "modelroll_rollout" && k !== "modelroll_variant" && k !== "le");
    if (s.labels.le !== undefined) {
      // Keep a few cumulative buckets, for placement checks.
      if (["100", "116", "122", "200", "500", "1000"].includes(s.labels.le)) out[`${s.name}{le=${s.labels.le}}`] = s.value;
      continue;
    }
    out[`${s.name}${extra.length ? `{${extra.map(([k, v]) => `${k.replace("modelroll_", "")}=${v}`).join(",")}}` : ""}`] = s.value;
  }
  return out;
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) !== 0) out[k] = v - (before[k] ?? 0);
  return out;
}

async function fixed(
  body: Buffer | string,
  headers: Record<string, string> = { "content-type": "application/json" },
  extra: Record<string, unknown> = {},
): Promise<void> {
  const res = await fetch(`${stack.stable.url}/__demo/behavior`, {
    method: "PUT",
    body: JSON.stringify({ fixedResponse: { headers, bodyBase64: Buffer.from(body).toString("base64"), ...extra } }),
  });
  expect(res.status).toBe(200);
}

async function settle(
  rollout: string,
  variant: string,
  check: (d: Record<string, number>) => boolean,
  before: Record<string, number>,
): Promise<Record<string, number>> {
  let d: Record<string, number> = {};
  await waitFor(`${rollout} counters`, async () => check((d = delta(await series(rollout, variant), before))), 10_000, 100).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(d)}`);
  });
  return d;
}

describe("output analysis", () => {
  it("counts the label distribution and confidence per variant", async () => {
    const created = await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "labels",
      match: { pathPrefix: "/labels" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 50,
      output: { labels: ["approve", "review"] },
    });
    expect(created.status).toBe(201);
    await waitForRolloutActive(`${stack.dataUrl}/labels`);
    await new Promise((r) => setTimeout(r, 1200));
    const before = { stable: await series("labels", "stable"), canary: await series("labels", "canary") };
    const apiBefore = (await api(stack.controller!.url, "GET", "/v1/rollouts/labels/stats")).json;
    const replies = await sendMany(
      `${stack.dataUrl}/labels/p`,
      400,
      (i) => ({ "x-user-id": `l-${i}` }),
      16,
      (i) => `{"x":${i}}`,
    );
    const expected: Record<string, Record<string, number>> = { stable: {}, canary: {} };
    for (const r of replies) {
      const label = JSON.parse(r.body).prediction as string;
      const key = label === "decline" ? "other" : label;
      expected[r.variant!][key] = (expected[r.variant!][key] ?? 0) + 1;
    }
    for (const variant of ["stable", "canary"] as const) {
      const n = replies.filter((r) => r.variant === variant).length;
      const d = await settle("labels", variant, (x) => (x.modelroll_confidence_milli_count ?? 0) === n, before[variant]);
      for (const [label, count] of Object.entries(expected[variant])) expect(d[`modelroll_predictions{label=${label}}`], `${variant} ${label}`).toBe(count);
      const confidenceSum = replies.filter((r) => r.variant === variant).reduce((s, r) => s + Math.round(JSON.parse(r.body).confidence * 1000), 0);
      expectNear(d.modelroll_confidence_milli_sum, confidenceSum, 0.02, `${variant} confidence sum`);
      const atMostHalf = replies.filter((r) => r.variant === variant && JSON.parse(r.body).confidence <= 0.49).length;
      const aboveHalf = replies.filter((r) => r.variant === variant && JSON.parse(r.body).confidence >= 0.51).length;
      // Placement: everything below 0.49 is at or under the 0.5 bucket, everything above 0.51 is over it.
      expect(d["modelroll_confidence_milli_bucket{le=500}"] ?? 0).toBeGreaterThanOrEqual(atMostHalf);
      expect(d["modelroll_confidence_milli_bucket{le=500}"] ?? 0).toBeLessThanOrEqual(n - aboveHalf);
    }
    console.log("label distribution sent:", JSON.stringify(expected));
    // The controller reports the same distribution through its API.
    const apiAfter = (await api(stack.controller!.url, "GET", "/v1/rollouts/labels/stats")).json;
    for (const variant of ["stable", "canary"] as const) {
      for (const [label, count] of Object.entries(expected[variant])) {
        const was = apiBefore.variants[variant].output?.labels?.[label] ?? 0;
        expect(apiAfter.variants[variant].output.labels[label] - was, `API ${variant} ${label}`).toBe(count);
      }
      expect(apiAfter.variants[variant].output.confidence.mean).toBeGreaterThan(0);
      expect(apiAfter.variants[variant].output.schema).toBeNull();
    }
  });

  it("reads OpenAI-style usage and the configured citation/abstained/fallback fields", async () => {
    await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "llm",
      match: { pathPrefix: "/llm" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 0,
      output: { llm: { citationField: "citations", abstainedField: "abstained", fallbackField: "meta.fallback_model" } },
    });
    await waitForRolloutActive(`${stack.dataUrl}/llm`);
    await new Promise((r) => setTimeout(r, 1200));
    const before = await series("llm", "stable");
    const answer = (cited: boolean, abstained: boolean, fallback: string) =>
      JSON.stringify({
        id: "chatcmpl-1",
        choices: [{ message: { role: "assistant", content: "hi" } }],
        usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 },
        citations: cited ? ["doc-1"] : [],
        abstained,
        meta: { fallback_model: fallback },
      });
    try {
      await fixed(answer(true, false, ""));
      await sendMany(`${stack.dataUrl}/llm/chat`, 6, (i) => ({ "x-user-id": `q-${i}` }), 2);
      await fixed(answer(false, true, "small-model"));
      await sendMany(`${stack.dataUrl}/llm/chat`, 4, (i) => ({ "x-user-id": `q-${i}` }), 2);
    } finally {
      await fixed("", {}, {});
      await fetch(`${stack.stable.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ fixedResponse: null }) });
    }
    const d = await settle("llm", "stable", (x) => (x.modelroll_prompt_tokens_count ?? 0) >= 10, before);
    console.log("llm counters:", JSON.stringify(d));
    expect(d.modelroll_llm_outputs).toBe(10);
    expect(d.modelroll_citation_present).toBe(6);
    expect(d.modelroll_abstained).toBe(4);
    expect(d.modelroll_fallback_used).toBe(4);
    expect(d.modelroll_prompt_tokens_count).toBe(10);
    // 120 prompt tokens each: between the _tokens buckets 116 and 122 (deploy/envoy/envoy.template.yaml).
    expect(d["modelroll_prompt_tokens_bucket{le=116}"] ?? 0).toBe(0);
    expect(d["modelroll_prompt_tokens_bucket{le=122}"]).toBe(10);
    expectNear(d.modelroll_prompt_tokens_sum, 1200, 0.05, "prompt tokens sum");
    expectNear(d.modelroll_completion_tokens_sum, 300, 0.05, "completion tokens sum");
    const llm = (await api(stack.controller!.url, "GET", "/v1/rollouts/llm/stats")).json.variants.stable.output.llm;
    console.log("llm through the API:", JSON.stringify(llm));
    expect(llm.outputs).toBe(10);
    expect(llm.citationRate).toBeCloseTo(0.6, 10);
    expect(llm.abstainRate).toBeCloseTo(0.4, 10);
    expect(llm.promptTokens.count).toBe(10);
    expect(llm.promptTokens.p50).toBeGreaterThan(100);
    expect(llm.promptTokens.p50).toBeLessThanOrEqual(200);
  });
});

describe("answers that cannot be analyzed, and hostile bodies", () => {
  const deep = "[".repeat(10_000) + "]".repeat(10_000);
  const tenMb = `{"prediction":"approve","blob":"${"a".repeat(10 * 1024 * 1024)}"}`;
  const cases: Array<{ name: string; body: Buffer | string; headers?: Record<string, string>; chunkBytes?: number; expect: string }> = [
    { name: "text/plain", body: "OK", headers: { "content-type": "text/plain" }, expect: "modelroll_outputs{unanalyzed=not_json_content_type}" },
    {
      name: "gzip",
      body: Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]),
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      expect: "modelroll_outputs{unanalyzed=compressed}",
    },
    { name: "over the limit", body: JSON.stringify({ prediction: "approve", pad: "x".repeat(40000) }), expect: "modelroll_outputs{unanalyzed=too_large}" },
    { name: "truncated JSON", body: '{"prediction":"appr', expect: "modelroll_predictions{label=missing}" },
    { name: "10,000-deep nesting", body: deep, expect: "modelroll_predictions{label=missing}" },
    {
      name: "invalid UTF-8",
      body: Buffer.concat([Buffer.from('{"prediction":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
      expect: "modelroll_predictions{label=missing}",
    },
    { name: "a BOM", body: `\ufeff${JSON.stringify({ prediction: "approve" })}`, expect: "modelroll_predictions{label=missing}" },
    { name: "1e400 confidence", body: '{"prediction":"approve","confidence":1e400}', expect: "modelroll_predictions{label=approve}" },
    { name: "duplicate keys (last wins)", body: '{"prediction":"review","prediction":"approve"}', expect: "modelroll_predictions{label=approve}" },
    {
      name: "many small chunks",
      body: JSON.stringify({ prediction: "approve", confidence: 0.5, pad: "y".repeat(500) }),
      chunkBytes: 7,
      expect: "modelroll_predictions{label=approve}",
    },
  ];

  it("passes every body through unchanged and counts why", async () => {
    await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "hostile",
      match: { pathPrefix: "/hostile" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 0,
      output: { labels: ["approve"], maxBodyBytes: 32768 },
    });
    await waitForRolloutActive(`${stack.dataUrl}/hostile`);
    await new Promise((r) => setTimeout(r, 1200));
    try {
      for (const c of cases) {
        const before = await series("hostile", "stable");
        await fixed(c.body, c.headers ?? { "content-type": "application/json" }, c.chunkBytes ? { chunkBytes: c.chunkBytes } : {});
        const raw = await rawPost(`${stack.dataUrl}/hostile/x`, { "x-user-id": "h" });
        expect(raw.status, c.name).toBe(200);
        expect(raw.body.equals(Buffer.from(c.body)), `${c.name}: body passed through unchanged`).toBe(true);
        const d = await settle("hostile", "stable", (x) => (x[c.expect] ?? 0) === 1, before);
        console.log(`${c.name}: ${JSON.stringify(d)}`);
      }
      // The 10 MB string, with a limit that lets the filter read it: Envoy still serves, the filter still answers.
      await api(stack.controller!.url, "POST", "/v1/rollouts", {
        name: "huge",
        match: { pathPrefix: "/huge" },
        stickyKey: { header: "x-user-id" },
        canaryPercent: 0,
        output: { labels: ["approve"], maxBodyBytes: 16 * 1024 * 1024 },
      });
      await waitForRolloutActive(`${stack.dataUrl}/huge`);
      const before = await series("huge", "stable");
      await fixed(tenMb);
      const raw = await rawPost(`${stack.dataUrl}/huge/x`, { "x-user-id": "h" });
      expect(raw.body.length).toBe(Buffer.byteLength(tenMb));
      const d = await settle("huge", "stable", (x) => (x["modelroll_predictions{label=approve}"] ?? 0) === 1, before);
      console.log(`10 MB string: ${JSON.stringify(d)}`);
    } finally {
      await fetch(`${stack.stable.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ fixedResponse: null }) });
    }
    // The VM is alive and routing after all of it.
    const after = await send(`${stack.dataUrl}/hostile/x`, { "x-user-id": "h" });
    expect(after.status).toBe(200);
    expect(after.variant).toBe("stable");
  });
});
