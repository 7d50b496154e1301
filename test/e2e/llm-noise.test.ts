// Shadow comparison for a model that samples, on real Envoy with the openai client: every request is mirrored to
// the shadow and also sent to stable a second time (shadow.noisePercent 100), so stable's disagreement with itself
// is measured beside the shadow's disagreement with the primary. A shadow of the same model agrees with stable as
// often as stable agrees with itself and passes shadow_disagreement_excess, though its raw agreement is far from
// 1; a shadow of another model disagrees beyond the noise and is rolled back naming the gate.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, decisionsOf, type MeasurementView } from "./harness.ts";
import { counters, startSamplingServer, startStack, type RouteStack, type SamplingServer } from "./llm-route-harness.ts";

// Stable answers "approve" 95% of the time: two draws agree 0.95^2 + 0.05^2 = 90.5% of the time.
const P_STABLE = 0.95;
let stable: SamplingServer;
let canary: SamplingServer;
let shadow: SamplingServer;
let stack: RouteStack;
beforeAll(async () => {
  stable = await startSamplingServer(P_STABLE);
  canary = await startSamplingServer(P_STABLE);
  shadow = await startSamplingServer(P_STABLE);
  stack = await startStack({ stable, canary, shadow });
});
afterAll(async () => {
  await stack?.stop();
  await Promise.all([stable?.close(), canary?.close(), shadow?.close()]);
});

const spec = (name: string) => ({
  name,
  match: { pathPrefix: `/${name}` },
  stickyKey: { header: "x-user-id" },
  owner: "team-fraud",
  rollbackCondition: "the new model decides differently than stable beyond stable's own variation",
  changeKind: "major",
  shadow: { percent: 100, noisePercent: 100, timeoutMs: 2000 },
  output: { predictionField: "choices.0.message.content", labels: ["approve", "deny"] },
  stages: ["shadow", 10, 100],
  stageDefaults: { minDurationSeconds: 1, minRequests: 100, deadlineSeconds: 120 },
  promotion_gates: { shadow_disagreement_excess: { maximum: 0.1 } },
});

/** Sends batches through the filter until the rollout leaves its shadow stage; the last decision and the requests sent. */
async function untilDecided(name: string): Promise<{ phase: string; sent: number; excess: MeasurementView | undefined }> {
  const ctl = stack.controller.url;
  const created = await api(ctl, "POST", "/v1/rollouts", spec(name));
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  const client = new OpenAI({ apiKey: "x", baseURL: `${stack.dataUrl}/${name}/v1`, maxRetries: 0 });
  let sent = 0;
  let phase = (await api(ctl, "GET", `/v1/rollouts/${name}`)).json.phase;
  const deadline = performance.now() + 120_000;
  while (["Pending", "Shadowing"].includes(phase) && performance.now() < deadline) {
    const batch = Array.from({ length: 100 }, (_, i) => sent + i);
    let next = 0;
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        while (next < batch.length) {
          const i = batch[next++] as number;
          await client.chat.completions.create(
            { model: "fraud-llm", messages: [{ role: "user", content: `payment ${i}` }] },
            { headers: { "x-user-id": `n${i}` } },
          );
        }
      }),
    );
    sent += batch.length;
    phase = (await api(ctl, "GET", `/v1/rollouts/${name}`)).json.phase;
  }
  const decisions = await decisionsOf(ctl, name);
  const decided = decisions.find((d) => d.kind !== "held" && d.kind !== "started" && d.from === "Shadowing");
  return { phase, sent, excess: decided?.measurements.find((m) => m.gate === "shadow_disagreement_excess" && m.segment === null) };
}

describe("shadow comparison that knows the model samples", () => {
  it("a same-model shadow agrees within stable's own noise and passes", async () => {
    const { phase, sent, excess } = await untilDecided("same");
    const c = await counters(stack, "same", "shadow");
    const raw = c.prediction_agree / (c.prediction_agree + c.prediction_disagree);
    const noise = c.noise_agree / (c.noise_agree + c.noise_disagree);
    console.log(
      `same model: ${phase} after ${sent} requests; agreement shadow vs primary ${(raw * 100).toFixed(1)}%, stable vs stable ${(noise * 100).toFixed(1)}% (n=${c.prediction_agree + c.prediction_disagree} / ${c.noise_agree + c.noise_disagree}); gate ${excess?.status}: ${excess?.reason}`,
    );
    expect(excess?.status).toBe("Passed");
    expect(phase).toBe("Canary");
    // Raw agreement alone would have judged the same model as differing in about one answer of ten.
    expect(raw).toBeLessThan(0.97);
    expect(c.noise_requests).toBeGreaterThan(0);
    expect(c.noise_missing ?? 0).toBe(0);
    // Both numbers in /stats: the shadow's agreement and stable's with itself.
    const comparison = (await api(stack.controller.url, "GET", "/v1/rollouts/same/stats")).json.variants.shadow.comparison;
    expect(comparison.predictionAgreementRate).toBeCloseTo(raw, 1);
    expect(comparison.noise.agreementRate).toBeCloseTo(noise, 1);
  });

  it("a shadow of another model disagrees beyond the noise and is rolled back naming the gate", async () => {
    shadow.pApprove = 0.6;
    const { phase, sent, excess } = await untilDecided("diff");
    const c = await counters(stack, "diff", "shadow");
    const raw = c.prediction_agree / (c.prediction_agree + c.prediction_disagree);
    const noise = c.noise_agree / (c.noise_agree + c.noise_disagree);
    console.log(
      `other model: ${phase} after ${sent} requests; agreement shadow vs primary ${(raw * 100).toFixed(1)}%, stable vs stable ${(noise * 100).toFixed(1)}%; gate ${excess?.status}: ${excess?.reason}`,
    );
    expect(phase).toBe("RolledBack");
    expect(excess?.status).toBe("Failed");
    expect(raw).toBeLessThan(noise);
  });
});
