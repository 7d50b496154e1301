// Static rollouts in the plugin configuration (Istio's pluginConfig, written by hand): the same shape as the
// controller's table, but a member the filter does not read is a typo and refused, at every level, with its path.
// The controller's own projection of a rollout using every feature is accepted as it is, which shows that the
// filter reads every member the controller sends.
import { beforeAll, describe, expect, it } from "vitest";
import { createRollout, spec, testApp } from "../controller/helpers.ts";
import { pluginConfigOf } from "../../controller/src/filter-config/wasmplugin-distributor.ts";
import { loadFilterTesting, type FilterTesting } from "./filter-testing.ts";

let filter: FilterTesting;
let full: Record<string, any>;

beforeAll(async () => {
  filter = await loadFilterTesting();
  const app = await testApp();
  await createRollout(
    app,
    spec({
      name: "fraud-model",
      canaryPercent: 5,
      segments: [
        { name: "tenant_tier", header: "x-tenant-tier", values: ["free", "pro"] },
        { name: "endpoint", endpoints: [{ value: "score", pathPrefix: "/v1/predict/score" }] },
        { name: "size", requestSizeBytes: [1024, 16384] },
      ],
      shadow: { percent: 10, cluster: "shadow", timeoutMs: 500, maxBodyBytes: 4096, maxInFlight: 8 },
      output: {
        labels: ["approve", "review", "decline"],
        schema: { type: "object", required: ["prediction"], properties: { prediction: { enum: ["approve", "review", "decline"] } } },
        guard: true,
        llm: { citationField: "citations", abstainedField: "abstained", fallbackField: "meta.fallback_model" },
      },
      models: { stable: "v1", canary: "v2", versionField: "model_version" },
    }),
  );
  const table = (await app.inject({ url: "/v1/filter-config" })).json();
  await app.close();
  full = table.rollouts[0];
});

const refusal = (rollouts: unknown[]) => filter.str("pluginConfigError", JSON.stringify({ rollouts }));

describe("static rollouts in the plugin config", () => {
  it("accept the controller's projection of a rollout that uses every feature, as it is", () => {
    expect(Object.keys(full).sort()).toEqual(["canaryBasisPoints", "models", "name", "output", "pathPrefix", "segments", "shadow", "stickyHeader"]);
    expect(full.output.schema).toEqual(expect.any(String));
    expect(full.output.citationField).toBe("citations");
    expect(refusal([full])).toBe("");
  });

  it.each([
    ["the rollout", (r: any) => ({ ...r, canaryBasisPoint: 500 }), "rollouts[0].canaryBasisPoint: unknown field"],
    ["shadow", (r: any) => ({ ...r, shadow: { ...r.shadow, percent: 10 } }), "rollouts[0].shadow.percent: unknown field"],
    ["output", (r: any) => ({ ...r, output: { ...r.output, gaurd: true } }), "rollouts[0].output.gaurd: unknown field"],
    [
      "a segment",
      (r: any) => ({ ...r, segments: [r.segments[0], { ...r.segments[1], endpoints: [] }, r.segments[2]] }),
      "rollouts[0].segments[1].endpoints: unknown field",
    ],
    ["models", (r: any) => ({ ...r, models: { ...r.models, version_field: "x" } }), "rollouts[0].models.version_field: unknown field"],
  ])("refuse an unknown member of %s, naming it", (_where, typo, expected) => {
    expect(refusal([typo(full)])).toBe(expected);
  });

  it("take the controller's config version beside them (istiod delivery), which only goes with rollouts", () => {
    expect(filter.str("staticTableVersion", JSON.stringify({ configVersion: 42, rollouts: [full] }))).toBe("v42");
    expect(filter.str("staticTableVersion", JSON.stringify({ rollouts: [full] }))).toBe("v0");
    expect(filter.str("staticTableVersion", JSON.stringify({ variantHeader: "x-v" }))).toBe("-");
    expect(filter.str("staticTableVersion", JSON.stringify({ configVersion: -1, rollouts: [] }))).toBe(
      "error: configVersion: must be an integer 0..9007199254740991",
    );
    expect(filter.str("staticTableVersion", JSON.stringify({ configVersion: 3 }))).toBe("error: configVersion: only with rollouts");
    // What the WasmPlugin distributor writes is accepted as it is.
    const written = pluginConfigOf({ epoch: "e", version: 7, rollouts: [full as never] });
    expect(filter.str("pluginConfigError", JSON.stringify(written))).toBe("");
    expect(filter.str("staticTableVersion", JSON.stringify(written))).toBe("v7");
  });

  it("while the controller's table still ignores members this filter does not know (a newer controller)", () => {
    const table = {
      epoch: "e",
      version: 1,
      rollouts: [{ ...full, canaryBasisPoint: 1, shadow: { ...full.shadow, percent: 10 }, models: { ...full.models, future: 1 } }],
    };
    expect(filter.str("rolloutTableSummary", JSON.stringify(table))).toBe("v1 e fraud-model:/v1/predict:x-user-id:500");
  });
});
