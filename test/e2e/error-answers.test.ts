// Error answers on real Envoy: a 5xx, a 4xx or Envoy's own local reply is an error, never a model output. The
// filter validates and analyzes 2xx answers only (primary and shadow alike) and counts every other answer once,
// as unanalyzed error_status; the output guard leaves error answers alone; the engine rolls a canary answering
// JSON-bodied 500s back for its error rate, and a shadow that is down for its status mismatches, never for
// the schema.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startModelServer } from "../../controller/src/demo/model-server.ts";
import { parsePrometheusText } from "../../controller/src/metrics/prometheus-text.ts";
import { api, decisionsOf, managedSpec, phaseOf, send, sendMany, startStack, waitFor, waitForRolloutActive, type Stack } from "./harness.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ controller: { tickIntervalMs: 250 } });
});
afterAll(async () => {
  await stack?.stop();
});

const ctl = () => stack.controller!.url;

const schema = {
  type: "object",
  required: ["prediction", "confidence"],
  properties: { prediction: { enum: ["approve", "review", "decline"] }, confidence: { type: "number", minimum: 0, maximum: 1 } },
};
const RESET = { errorRate: 0, latencyMs: 0, labelShift: 0, garbage: false, fixedResponse: null, overrides: [] };

async function behave(server: { url: string }, behavior: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${server.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ ...RESET, ...behavior }) });
  expect(res.status, await res.text()).toBe(200);
}

/** A fixed JSON answer with this status. */
const answering = (status: number, body: unknown) => ({
  fixedResponse: { status, headers: { "content-type": "application/json" }, bodyBase64: Buffer.from(JSON.stringify(body)).toString("base64") },
});

/** The filter's output counters of one variant (overall slice), keyed like the metric provider: "outputs{schema=valid}". */
async function outputCounters(rollout: string, variant: string): Promise<Record<string, number>> {
  const filter = encodeURIComponent(`^wasmcustom\\.modelroll\\.rollout\\.${rollout}\\.variant\\.${variant}\\.`);
  const text = await (await fetch(`${stack.adminUrl}/stats/prometheus?usedonly&filter=${filter}`)).text();
  const out: Record<string, number> = {};
  for (const s of parsePrometheusText(text).samples) {
    if (s.labels.modelroll_segment !== undefined || s.labels.le !== undefined) continue;
    const label =
      s.labels.modelroll_schema !== undefined
        ? `{schema=${s.labels.modelroll_schema}}`
        : s.labels.modelroll_unanalyzed !== undefined
          ? `{unanalyzed=${s.labels.modelroll_unanalyzed}}`
          : s.labels.modelroll_label !== undefined
            ? `{label=${s.labels.modelroll_label}}`
            : s.labels.modelroll_class !== undefined
              ? `{class=${s.labels.modelroll_class}}`
              : "";
    out[`${s.name.replace(/^modelroll_/, "")}${label}`] = s.value;
  }
  return out;
}

function changed(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  return out;
}

const sum = (counters: Record<string, number>, prefix: string) =>
  Object.entries(counters)
    .filter(([k]) => k.startsWith(prefix))
    .reduce((s, [, n]) => s + n, 0);

describe("error answers are errors, not model outputs", () => {
  it("counts a 500, a 404 and Envoy's local 503 as error_status, validates only the 2xx answer", async () => {
    const name = "errs";
    const created = await api(ctl(), "POST", "/v1/rollouts", {
      name,
      match: { pathPrefix: `/${name}` },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 0,
      output: { labels: ["approve", "review", "decline"], schema },
    });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    await waitForRolloutActive(`${stack.dataUrl}/${name}`);
    const url = `${stack.dataUrl}/${name}/predict`;
    const cases: Array<{ what: string; status: number; set: () => Promise<unknown>; expect: string }> = [
      {
        what: "a JSON-bodied 500",
        status: 500,
        set: () => behave(stack.stable, answering(500, { error: "model failed", model_version: "v1" })),
        expect: "outputs{unanalyzed=error_status}",
      },
      {
        what: "a JSON-bodied 404",
        status: 404,
        set: () => behave(stack.stable, answering(404, { error: "no such model" })),
        expect: "outputs{unanalyzed=error_status}",
      },
      { what: "a valid 200", status: 200, set: () => behave(stack.stable, {}), expect: "outputs{schema=valid}" },
    ];
    try {
      for (const c of cases) {
        await c.set();
        const before = await outputCounters(name, "stable");
        const reply = await send(url, { "x-user-id": "e-1" });
        expect(reply.status, c.what).toBe(c.status);
        let d: Record<string, number> = {};
        await waitFor(`${c.what} counted`, async () => ((d = changed(await outputCounters(name, "stable"), before))[c.expect] ?? 0) === 1, 5000, 50).catch(
          (e) => {
            throw new Error(`${e.message}: ${JSON.stringify(d)}`);
          },
        );
        console.log(`${c.what}: ${JSON.stringify(d)}`);
        // Counted once: one output counter moved, and for an error no schema verdict and no label.
        expect(sum(d, "outputs{"), c.what).toBe(1);
        if (c.status !== 200) expect(sum(d, "predictions{"), c.what).toBe(0);
        else expect(sum(d, "predictions{"), c.what).toBe(1);
      }
      // Stable down: Envoy answers 503 itself (a local reply, text/plain), counted as an error, not as "not JSON".
      const port = stack.stable.port;
      await stack.stable.close();
      try {
        const before = await outputCounters(name, "stable");
        const reply = await send(url, { "x-user-id": "e-1" });
        expect(reply.status).toBe(503);
        let d: Record<string, number> = {};
        await waitFor(
          "the local reply counted",
          async () => ((d = changed(await outputCounters(name, "stable"), before))["outputs{unanalyzed=error_status}"] ?? 0) === 1,
          5000,
          50,
        ).catch((e) => {
          throw new Error(`${e.message}: ${JSON.stringify(d)}`);
        });
        console.log(`stable down (Envoy's 503): ${JSON.stringify(d)}`);
        expect(d["responses{class=local}"]).toBe(1);
        expect(sum(d, "outputs{")).toBe(1);
      } finally {
        stack.stable = await startModelServer({ version: "v1", port });
      }
      const stats = (await api(ctl(), "GET", `/v1/rollouts/${name}/stats`)).json.variants.stable.output;
      console.log(`through the API: schema ${JSON.stringify(stats.schema)}, unanalyzed ${JSON.stringify(stats.unanalyzed)}`);
      expect(stats.unanalyzed.error_status).toBe(3);
      expect(stats.schema.failures).toEqual({});
      expect(stats.schema.passRate).toBe(1);
    } finally {
      await behave(stack.stable, {});
    }
  });

  it("the output guard leaves a canary's error answer alone: only 2xx answers are judged and replaced", async () => {
    const name = "guard-errs";
    const created = await api(ctl(), "POST", "/v1/rollouts", {
      name,
      match: { pathPrefix: `/${name}` },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 100,
      output: { schema, guard: true },
    });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    await waitForRolloutActive(`${stack.dataUrl}/${name}`);
    const before = await outputCounters(name, "canary");
    const stableBefore = stack.stable.served();
    await behave(stack.canary, { errorRate: 1 });
    try {
      const replies = await sendMany(`${stack.dataUrl}/${name}/predict`, 10, (i) => ({ "x-user-id": `ge-${i}` }), 2);
      // The canary's own 500 reaches the client: stable was not asked for a replacement.
      for (const r of replies) {
        expect(r.status).toBe(500);
        expect(r.variant).toBe("canary");
        expect(JSON.parse(r.body)).toEqual({ error: "model failed", model_version: "v2" });
      }
      expect(stack.stable.served() - stableBefore).toBe(0);
      let d: Record<string, number> = {};
      await waitFor(
        "the error answers counted",
        async () => ((d = changed(await outputCounters(name, "canary"), before))["outputs{unanalyzed=error_status}"] ?? 0) === 10,
        5000,
        50,
      ).catch((e) => {
        throw new Error(`${e.message}: ${JSON.stringify(d)}`);
      });
      console.log(`guarded canary answering 500s: ${JSON.stringify(d)}`);
      expect(d.guard_replaced ?? 0).toBe(0);
      expect(d.guard_skipped).toBe(10);
      expect(sum(d, "outputs{schema=")).toBe(0);
    } finally {
      await behave(stack.canary, {});
    }
  });

  it("a canary answering 5% JSON-bodied 500s is rolled back for its error rate, not its schema", { timeout: 120_000 }, async () => {
    const name = "err-canary";
    await behave(stack.canary, { errorRate: 0.05 });
    try {
      const created = await api(
        ctl(),
        "POST",
        "/v1/rollouts",
        managedSpec(name, "canary error rate above 1% or schema pass rate below 99%", {
          output: { schema },
          stages: [{ canaryPercent: 50, minDurationSeconds: 1, minRequests: 100, deadlineSeconds: 120 }, 100],
          promotion_gates: { error_rate: { maximum: 0.01 }, schema_validation_pass_rate: { minimum: 0.99 } },
        }),
      );
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      await waitFor(`${name}: the canary stage`, async () => (await phaseOf(ctl(), name)) === "Canary", 10_000, 50);
      let sent = 0;
      let canary500 = 0;
      let phase = "Canary";
      const started = performance.now();
      while (phase === "Canary" && performance.now() - started < 90_000) {
        const replies = await sendMany(`${stack.dataUrl}/${name}/predict`, 100, (i) => ({ "x-user-id": `ec-${sent + i}` }), 8);
        sent += replies.length;
        canary500 += replies.filter((r) => r.variant === "canary" && r.status === 500).length;
        phase = await phaseOf(ctl(), name);
      }
      const history = await decisionsOf(ctl(), name);
      const last = history[history.length - 1];
      const schemaGate = last.measurements.find((m) => m.gate === "schema_validation_pass_rate" && m.segment === null);
      console.log(
        `5% JSON 500s: ${phase} after ${sent} requests (${canary500} canary 500s)\n` +
          `  decision: ${last.kind}: ${last.reason}\n  schema gate: ${schemaGate?.status}: ${schemaGate?.reason}`,
      );
      expect(phase).toBe("RolledBack");
      expect(last.reason).toMatch(/^canary worse overall: error rate [\d.]+% vs [\d.]+% \(maximum 1%;/);
      expect(last.measurements.filter((m) => m.status === "Failed").map((m) => m.gate)).toEqual(["error_rate"]);
      // The 500s were never validated: every answer the schema gate saw was valid.
      expect(schemaGate!.status).not.toBe("Failed");
      expect(schemaGate!.candidateValue).toBe(1);
      expect(canary500).toBeGreaterThan(0);
      const output = (await api(ctl(), "GET", `/v1/rollouts/${name}/stats`)).json.variants.canary.output;
      expect(output.schema.failures).toEqual({});
      expect(output.unanalyzed.error_status).toBeGreaterThanOrEqual(canary500);
    } finally {
      await behave(stack.canary, {});
    }
  });

  it("a shadow that is down fails the shadow stage on status mismatches, with no schema failures", { timeout: 120_000 }, async () => {
    const name = "shadow-down";
    const created = await api(
      ctl(),
      "POST",
      "/v1/rollouts",
      managedSpec(name, "shadow status match below 90% or schema pass rate below 99%", {
        output: { schema },
        shadow: { percent: 100 },
        stages: [{ shadow: true, shadowPercent: 100, minDurationSeconds: 1, minRequests: 100, deadlineSeconds: 120 }, 50, 100],
        promotion_gates: { schema_validation_pass_rate: { minimum: 0.99 }, shadow_status_match_rate: { minimum: 0.9 } },
      }),
    );
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    await waitFor(`${name}: the shadow stage`, async () => (await phaseOf(ctl(), name)) === "Shadowing", 10_000, 50);
    const port = stack.shadow.port;
    await stack.shadow.close();
    try {
      let sent = 0;
      let phase = "Shadowing";
      const started = performance.now();
      while (phase === "Shadowing" && performance.now() - started < 90_000) {
        const replies = await sendMany(`${stack.dataUrl}/${name}/predict`, 100, (i) => ({ "x-user-id": `sd-${sent + i}` }), 8);
        // The client never notices the shadow.
        expect(replies.every((r) => r.status === 200 && r.modelVersion === "v1")).toBe(true);
        sent += replies.length;
        phase = await phaseOf(ctl(), name);
      }
      const history = await decisionsOf(ctl(), name);
      const last = history[history.length - 1];
      const schemaGate = last.measurements.find((m) => m.gate === "schema_validation_pass_rate" && m.segment === null);
      const counters = await outputCounters(name, "shadow");
      console.log(
        `shadow down: ${phase} after ${sent} requests\n  decision: ${last.kind}: ${last.reason}\n` +
          `  schema gate: ${schemaGate?.status}: ${schemaGate?.reason}\n  shadow counters: ${JSON.stringify(counters)}`,
      );
      expect(phase).toBe("RolledBack");
      expect(last.reason).toMatch(/^shadow worse overall: shadow status match rate 0% vs n\/a \(minimum 90%;/);
      expect(last.measurements.filter((m) => m.status === "Failed").map((m) => m.gate)).toEqual(["shadow_status_match_rate"]);
      expect(schemaGate!.status).toBe("Inconclusive");
      expect(schemaGate!.sampleSizes.candidate).toBe(0);
      // Every mirrored call answered Envoy's 503: counted as an error (class 5xx), never validated.
      expect(sum(counters, "outputs{schema=")).toBe(0);
      expect(counters["outputs{unanalyzed=error_status}"]).toBe(counters.requests);
      expect(counters.status_mismatch).toBe(counters.requests);
    } finally {
      stack.shadow = await startModelServer({ version: "v3", port });
    }
  });
});
