// /openapi.json describes the whole rollout spec, release keys included (every stage form, stageDefaults and
// the gates with their defaults, from the engine's own schemas), while the API keeps judging bodies as before:
// the engine's errors still point inside stages and gates, and nothing documented is filled into a body.
import { describe, expect, it } from "vitest";
import { DEFAULT_STAGES, STAGE_DEFAULTS } from "../../controller/src/engine/index.ts";
import { FINALIZE_DEFAULTS } from "../../controller/src/engine/lifecycle-spec.ts";
import { ENGINE_PROPERTIES } from "../../controller/src/rollouts/schemas.ts";
import { testApp } from "../controller/helpers.ts";

type Schema = Record<string, any>;

async function documentedBodies(): Promise<Array<[string, Schema]>> {
  const app = await testApp();
  const doc = (await app.inject({ url: "/openapi.json" })).json();
  const bodies: Array<[string, Schema]> = [];
  for (const [path, method] of [
    ["/v1/rollouts", "post"],
    ["/v1/rollouts/{name}", "put"],
  ] as const) {
    for (const [type, media] of Object.entries(doc.paths[path][method].requestBody.content as Record<string, { schema: Schema }>)) {
      bodies.push([`${method.toUpperCase()} ${path} (${type})`, media.schema]);
    }
  }
  return bodies;
}

const managed = {
  name: "fraud-model",
  match: { pathPrefix: "/v1/predict" },
  stickyKey: { header: "x-user-id" },
  owner: "team-fraud",
  rollbackCondition: "canary error rate above 1%",
  shadow: { percent: 10 },
  stages: ["shadow", { canaryPercent: 10 }, 100],
  promotion_gates: { error_rate: { maximum: 0.01 } },
};

describe("the OpenAPI document's rollout spec", () => {
  it("spells out every release key of the spec in the create and apply bodies, JSON and YAML alike", async () => {
    const bodies = await documentedBodies();
    expect(bodies.map(([where]) => where)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^POST \/v1\/rollouts \(application\/json\)/),
        expect.stringMatching(/^PUT \/v1\/rollouts\/\{name\} \(application\/yaml\)/),
      ]),
    );
    for (const [where, body] of bodies) {
      for (const key of Object.keys(ENGINE_PROPERTIES)) {
        // A placeholder carries no structure: each key must be a real schema (a type, or the forms it may take).
        const property = body.properties[key];
        expect(property, `${where}: ${key}`).toBeDefined();
        expect(property.type ?? property.anyOf, `${where}: ${key} is only a placeholder`).toBeDefined();
      }
      expect(body.additionalProperties, where).toBe(false);
    }
  });

  it("documents each stage form with its defaults: 'shadow', a percent, a stage object (canary or shadow, with its mirror percent)", async () => {
    for (const [where, body] of await documentedBodies()) {
      const stages = body.properties.stages;
      expect(stages.default, where).toEqual([...DEFAULT_STAGES]);
      const forms: Schema[] = stages.items.anyOf;
      expect(
        forms.some((f) => f.type === "string" && (f.enum?.[0] === "shadow" || f.const === "shadow")),
        where,
      ).toBe(true);
      expect(
        forms.some((f) => f.type === "number" && f.maximum === 100),
        where,
      ).toBe(true);
      const object = forms.find((f) => f.type === "object")!;
      expect(Object.keys(object.properties).sort(), where).toEqual(
        ["canaryPercent", "deadlineSeconds", "minDurationSeconds", "minRequests", "name", "onDeadline", "shadow", "shadowPercent"].sort(),
      );
      expect(object.properties.shadowPercent.description, where).toMatch(/shadow section's percent.*else 10/);
      for (const key of ["minDurationSeconds", "minRequests", "deadlineSeconds", "onDeadline"] as const) {
        expect(object.properties[key].default, `${where}: stage ${key}`).toBe(STAGE_DEFAULTS[key]);
        expect(object.properties[key].description, `${where}: stage ${key}`).toContain(`stageDefaults.${key}`);
      }
    }
  });

  it("documents stageDefaults, the gates in the seed's format, statistics, trafficMix, expectedTraffic and finalize with their defaults", async () => {
    for (const [where, body] of await documentedBodies()) {
      const p = body.properties;
      for (const key of ["minDurationSeconds", "minRequests", "deadlineSeconds", "onDeadline", "segmentTrafficShare"] as const) {
        expect(p.stageDefaults.properties[key].default, `${where}: stageDefaults.${key}`).toBe(STAGE_DEFAULTS[key]);
      }
      const gates = p.promotion_gates;
      for (const gate of [
        "latency_p95_ms",
        "error_rate",
        "schema_validation_pass_rate",
        "human_review_score",
        "gpu_oom_events",
        "shadow_agreement_rate",
        "confidence_drift",
      ]) {
        expect(gates.properties[gate], `${where}: ${gate}`).toBeDefined();
      }
      expect(gates.properties.latency_p95_ms.properties.tolerance_ms.default, where).toBe(2);
      expect(gates.properties.error_rate.properties.maximum.type, where).toBe("number");
      // Other names: latency_p<NN>_ms or a custom gate (query, ratio, mean, external).
      const others = JSON.stringify(gates.additionalProperties);
      for (const field of ["tolerance_ms", "query", "ratio", "mean", "external"]) expect(others, `${where}: other gates`).toContain(`"${field}"`);
      expect(p.statistics.properties.falseAlarmRate.default, where).toBe(0.05);
      expect(p.statistics.properties.harmMultiple.default, where).toBe(4);
      expect(p.trafficMix.properties.minDifference.default, where).toBe(0.1);
      expect(p.expectedTraffic.required, where).toEqual(["requestsPerSecond"]);
      expect(p.finalize.properties.verifyAnswers.default, where).toBe(FINALIZE_DEFAULTS.verifyAnswers);
      expect(p.finalize.properties.deadlineSeconds.default, where).toBe(FINALIZE_DEFAULTS.deadlineSeconds);
    }
  });

  it("leaves what the API accepts and says as it was: engine errors keep their pointers inside stages, and a re-applied spec keeps its revision", async () => {
    const app = await testApp();
    const bad = { ...managed, stages: ["shadow", { canaryPercent: 10, minDurationSecs: 5 }, 50, 25, 100] };
    for (const [method, url] of [
      ["POST", "/v1/rollouts"],
      ["PUT", "/v1/rollouts/fraud-model"],
    ] as const) {
      if (method === "PUT") expect((await app.inject({ method: "POST", url: "/v1/rollouts", payload: managed })).statusCode).toBe(201);
      const refused = await app.inject({ method, url, payload: bad });
      expect(refused.statusCode, method).toBe(400);
      expect(refused.json().details, method).toEqual(
        expect.arrayContaining([
          { path: "/stages/1/minDurationSecs", reason: expect.stringMatching(/^is not a known field/) },
          { path: "/stages/3", reason: "must be above the previous stage's 50% (weights only grow, so sticky users never switch back)" },
        ]),
      );
    }
    const before = (await app.inject({ url: "/v1/rollouts/fraud-model" })).json();
    const again = await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model", payload: managed });
    expect(again.statusCode).toBe(200);
    expect(again.json().revision).toBe(before.revision);
  });
});
