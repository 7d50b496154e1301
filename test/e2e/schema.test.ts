// Output-schema validation on real Envoy: the controller compiles the rollout's schema, the filter
// validates every answer and counts the verdict per variant, segment and reason. The same documents go
// through ajv here, so the filter's verdicts in Envoy are checked against a reference validator.
import { Ajv } from "ajv";
import fc from "fast-check";
import { nearDocument, render, schemaArbitrary } from "../unit/schema-generators.ts";
import { referenceAjv } from "../unit/schema-harness.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, send, sendMany, startStack, waitFor, waitForRolloutActive, type Stack } from "./harness.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const schema = {
  type: "object",
  required: ["prediction", "confidence", "model_version"],
  properties: {
    prediction: { enum: ["approve", "review", "decline"] },
    confidence: { type: "number", minimum: 0, maximum: 1 },
    model_version: { type: "string", minLength: 1 },
    reasons: { type: "array", items: { type: "string" }, maxItems: 3 },
  },
  additionalProperties: false,
};

// Answers the stable model will give, in turn, and the reason the filter must report for each.
const answers: Array<{ body: string; reason: string }> = [
  { body: '{"prediction":"approve","confidence":0.9,"model_version":"v1"}', reason: "valid" },
  { body: '{"prediction":"approve","confidence":0.9}', reason: "missing_field" },
  { body: '{"prediction":"approve","confidence":"high","model_version":"v1"}', reason: "wrong_type" },
  { body: '{"prediction":"approve","confidence":1.5,"model_version":"v1"}', reason: "out_of_range" },
  { body: '{"prediction":"maybe","confidence":0.5,"model_version":"v1"}', reason: "not_allowed" },
  { body: '{"prediction":"review","confidence":0.5,"model_version":"v1","reasons":["a","b","c","d"]}', reason: "bad_length" },
  { body: '{"prediction":"review","confidence":0.5,"model_version":"v1","debug":true}', reason: "unexpected_field" },
  { body: '{"prediction":"review","confidence":0.5,', reason: "not_json" },
  { body: "[".repeat(100) + "]".repeat(100), reason: "too_deep" },
  { body: '{"prediction":"review","confidence":0.5,"model_version":"v1","confidence":2}', reason: "out_of_range" },
];

describe("output schema validation in Envoy", () => {
  it("refuses a schema outside the subset with the keyword's pointer", async () => {
    const res = await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "bad-schema",
      match: { pathPrefix: "/bad" },
      stickyKey: { header: "x-user-id" },
      output: { schema: { type: "object", properties: { label: { type: "string", pattern: "^[a-z]+$" } }, oneOf: [] } },
    });
    expect(res.status).toBe(400);
    const paths = (res.json.details as Array<{ path: string }>).map((d) => d.path).sort();
    expect(paths).toEqual(["/output/schema/oneOf", "/output/schema/properties/label/pattern"]);
  });

  it("counts each answer's verdict with the reason ajv agrees with, per variant and segment", async () => {
    const created = await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "validated",
      match: { pathPrefix: "/validated" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 0,
      segments: [{ name: "tier", header: "x-tier", values: ["pro"] }],
      output: { schema, labels: ["approve", "review", "decline"] },
    });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    await waitForRolloutActive(`${stack.dataUrl}/validated`);
    const ajv = new Ajv({ strict: false, allErrors: false, ownProperties: true });
    const check = ajv.compile(schema);
    const before = (await api(stack.controller!.url, "GET", "/v1/rollouts/validated/stats")).json;
    const expected: Record<string, number> = {};
    try {
      for (const a of answers) {
        let reference: boolean;
        try {
          reference = check(JSON.parse(a.body));
        } catch {
          reference = false;
        }
        expect(reference, `ajv on ${a.body.slice(0, 60)}`).toBe(a.reason === "valid");
        expected[a.reason] = (expected[a.reason] ?? 0) + 2;
        await fetch(`${stack.stable.url}/__demo/behavior`, {
          method: "PUT",
          body: JSON.stringify({ fixedResponse: { headers: { "content-type": "application/json" }, bodyBase64: Buffer.from(a.body).toString("base64") } }),
        });
        const replies = await sendMany(`${stack.dataUrl}/validated/x`, 2, (i) => ({ "x-user-id": `s-${i}`, "x-tier": "pro" }), 2);
        expect(replies.every((r) => r.status === 200 && r.body === a.body)).toBe(true);
      }
    } finally {
      await fetch(`${stack.stable.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ fixedResponse: null }) });
    }
    const beforeSchema = before.variants.stable.output?.schema;
    const was = (reason: string) => (reason === "valid" ? (beforeSchema?.valid ?? 0) : (beforeSchema?.failures?.[reason] ?? 0));
    let stats: any;
    await waitFor(
      "verdicts in the stats API",
      async () => {
        stats = (await api(stack.controller!.url, "GET", "/v1/rollouts/validated/stats")).json;
        const s = stats.variants.stable.output?.schema;
        return s && Object.entries(expected).every(([reason, n]) => (reason === "valid" ? s.valid : (s.failures[reason] ?? 0)) - was(reason) === n);
      },
      10_000,
      200,
    ).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(stats?.variants?.stable?.output?.schema)}`);
    });
    const s = stats.variants.stable.output.schema;
    console.log("schema verdicts through the API:", JSON.stringify(s));
    expect(s.passRate).toBeCloseTo(s.valid / s.validated, 10);
    // The same verdicts in the segment the requests carried.
    const seg = stats.segments.tier.pro.stable.output.schema;
    expect(seg.failures.missing_field).toBeGreaterThanOrEqual(2);
    expect(seg.failures.too_deep).toBeGreaterThanOrEqual(2);
  });
});

// The differential test's smaller set through real Envoy: generated schemas (within the subset) and documents
// near them, each document answered by the stable model and judged by the filter in Envoy; its verdict,
// read from the filter's counters, must equal ajv's.

describe("generated documents through Envoy agree with ajv", () => {
  it("on 8 schemas x 8 documents", async () => {
    const ajv = referenceAjv();
    const samples = fc.sample(fc.tuple(schemaArbitrary, fc.integer()), { seed: 424242, numRuns: 8 });
    let compared = 0;
    let valid = 0;
    for (const [i, [generated]] of samples.entries()) {
      const name = `gen-${i}`;
      const created = await api(stack.controller!.url, "POST", "/v1/rollouts", {
        name,
        match: { pathPrefix: `/${name}/` },
        stickyKey: { header: "x-user-id" },
        canaryPercent: 0,
        output: { schema: generated },
      });
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      await waitForRolloutActive(`${stack.dataUrl}/${name}/`);
      const check = ajv.compile(generated as object);
      const docs = fc.sample(nearDocument(generated), { seed: 1000 + i, numRuns: 8 });
      for (const doc of docs) {
        const text = render(doc);
        let reference: boolean;
        try {
          reference = check(JSON.parse(text)) as boolean;
        } catch {
          reference = false;
        }
        const counters = async () => {
          const body = await (
            await fetch(`${stack.adminUrl}/stats?filter=${encodeURIComponent(`^wasmcustom\\.modelroll\\.rollout\\.${name}\\.variant\\.stable\\.schema\\.`)}`)
          ).text();
          let validCount = 0;
          let all = 0;
          for (const line of body.split("\n")) {
            const m = /\.schema\.([a-z_]+)\.outputs: (\d+)/.exec(line);
            if (!m) continue;
            all += Number(m[2]);
            if (m[1] === "valid") validCount += Number(m[2]);
          }
          return { valid: validCount, all };
        };
        const before = await counters();
        await fetch(`${stack.stable.url}/__demo/behavior`, {
          method: "PUT",
          body: JSON.stringify({ fixedResponse: { headers: { "content-type": "application/json" }, bodyBase64: Buffer.from(text).toString("base64") } }),
        });
        const reply = await send(`${stack.dataUrl}/${name}/x`, { "x-user-id": "d" });
        expect(reply.status).toBe(200);
        let after = before;
        await waitFor("the verdict", async () => (after = await counters()).all === before.all + 1, 5000, 10);
        expect(after.valid - before.valid === 1, `schema ${JSON.stringify(generated)} document ${text.slice(0, 200)}`).toBe(reference);
        compared++;
        if (reference) valid++;
      }
    }
    await fetch(`${stack.stable.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ fixedResponse: null }) });
    console.log(`generated documents through Envoy: ${compared} compared with ajv (${valid} valid, ${compared - valid} invalid), all agree`);
    expect(compared).toBe(64);
  });
});
