// The ModelRollout CRD is generated from the schema behind /openapi.json: the committed file is what the
// generator writes, its spec has the REST body's fields (name aside), and every node is structural (the
// real API server accepts it: test/kube/kubestate.test.ts applies it).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CRD_FILE, crdYaml } from "../../controller/src/kube-state/crd-yaml.ts";
import { modelRolloutCrd, specSchema } from "../../controller/src/kube-state/crd.ts";
import { toStructural } from "../../controller/src/kube/structural.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { RolloutSpecDoc } from "../../controller/src/rollouts/spec-doc.ts";

type Json = Record<string, unknown>;

/** Where a node breaks the structural rules Kubernetes applies to CRD schemas. */
function structuralProblems(node: Json, path: string): string[] {
  const problems: string[] = [];
  for (const banned of ["$ref", "anyOf", "oneOf", "allOf", "not", "default", "uniqueItems", "const", "examples"])
    if (banned in node) problems.push(`${path}: has ${banned}`);
  if (node.type === undefined && node["x-kubernetes-preserve-unknown-fields"] !== true && node["x-kubernetes-int-or-string"] !== true)
    problems.push(`${path}: no type`);
  if (node.properties && node.additionalProperties) problems.push(`${path}: properties and additionalProperties`);
  if (typeof node.exclusiveMinimum === "number") problems.push(`${path}: numeric exclusiveMinimum`);
  for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Json>)) problems.push(...structuralProblems(child, `${path}.${name}`));
  if (node.items) problems.push(...structuralProblems(node.items as Json, `${path}[]`));
  if (typeof node.additionalProperties === "object") problems.push(...structuralProblems(node.additionalProperties as Json, `${path}{}`));
  return problems;
}

describe("ModelRollout CRD", () => {
  it(`${CRD_FILE} is what scripts/generate-crds.ts writes (run it after changing the spec schema)`, () => {
    expect(readFileSync(join(repoRoot, CRD_FILE), "utf8")).toBe(crdYaml());
  });

  it("its spec has every field of the REST API's rollout body except name, and every node is structural", () => {
    const spec = specSchema();
    const doc = JSON.parse(JSON.stringify(RolloutSpecDoc)) as { properties: Json; required: string[] };
    expect(Object.keys(spec.properties as Json).sort()).toEqual(
      Object.keys(doc.properties)
        .filter((k) => k !== "name")
        .sort(),
    );
    expect(spec.required).toEqual(doc.required.filter((k) => k !== "name"));
    const root = ((modelRolloutCrd().spec as Json).versions as Json[])[0] as { schema: { openAPIV3Schema: Json } };
    expect(structuralProblems(root.schema.openAPIV3Schema, "")).toEqual([]);
    // Open only where the REST API's own schema is open or mixes types: a stage ("shadow" | 5 | {...}) and the output schema.
    const open: string[] = [];
    const walk = (node: Json, path: string) => {
      if (node["x-kubernetes-preserve-unknown-fields"]) open.push(path);
      for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Json>)) walk(child, `${path}.${name}`);
      if (node.items) walk(node.items as Json, `${path}[]`);
      if (typeof node.additionalProperties === "object") walk(node.additionalProperties as Json, `${path}{}`);
    };
    walk(spec, "spec");
    expect(open).toEqual(["spec.output.schema", "spec.stages[]"]);
  });

  it("turns the schema forms TypeBox writes into structural ones", () => {
    expect(toStructural({ anyOf: [{ const: "major" }, { const: "minor" }], default: "minor" })).toEqual({ type: "string", enum: ["major", "minor"] });
    expect(toStructural({ type: "number", exclusiveMinimum: 0, maximum: 1, multipleOf: 0.01 })).toEqual({
      type: "number",
      minimum: 0,
      exclusiveMinimum: true,
      maximum: 1,
    });
    expect(toStructural({ type: "array", items: [{ type: "number" }, { type: "number" }] })).toEqual({
      type: "array",
      items: { type: "number" },
      minItems: 2,
      maxItems: 2,
    });
    expect(toStructural({ anyOf: [{ const: "shadow" }, { type: "number" }], description: "d" })).toEqual({
      description: "d",
      "x-kubernetes-preserve-unknown-fields": true,
    });
    // A map with known names: one value schema, the known ones merged with the rest.
    const gates = toStructural({
      type: "object",
      properties: { error_rate: { type: "object", properties: { maximum: { type: "number", maximum: 1 } } } },
      additionalProperties: { type: "object", properties: { query: { type: "string" }, maximum: { type: "number" } } },
    });
    expect(gates).toEqual({ type: "object", additionalProperties: { type: "object", properties: { maximum: { type: "number" }, query: { type: "string" } } } });
  });
});
