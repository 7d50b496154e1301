// Validation of Kubernetes manifests against the published schemas the test set-up copied into .cache/mesh
// (scripts/install-mesh.mjs): Kubernetes' own OpenAPI v3 for the core kinds, Istio's CRDs (istio.io/api), the
// Prometheus Operator's PodMonitor CRD, and the project's own CRDs (deploy/istio/modelrollouts.crd.yaml).
// Validated with ajv, as the API server would with kubectl's default strict field validation:
//  - an unknown field is an error: every object schema with `properties` is closed, unless it says
//    x-kubernetes-preserve-unknown-fields (Istio's pluginConfig, status) or is a map (additionalProperties);
//  - a CRD object's apiVersion, kind and metadata (Kubernetes' ObjectMeta) are checked too;
//  - not evaluated: CEL rules (x-kubernetes-validations) and formats (int32, date-time, ...).
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import AjvModule, { type ErrorObject, type ValidateFunction } from "ajv";
import { parseAllDocuments } from "yaml";
import { repoRoot } from "../../controller/src/paths.ts";
import { SCHEMA_FILES } from "../../scripts/mesh-versions.mjs";

const Ajv = AjvModule as unknown as typeof AjvModule.default;

type Schema = Record<string, unknown>;

export function schemaDir(): string {
  const dir = process.env.MESH_SCHEMAS_DIR ?? join(repoRoot, ".cache", "mesh");
  const missing = Object.keys(SCHEMA_FILES).filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0) {
    throw new Error(
      `the mesh schemas are missing from ${dir} (${missing.join(", ")}): run 'node scripts/test-tools.mjs mesh-schemas' (the test set-up does it for the files that need them: 'go mod download' from the Go module proxy) or set MESH_SCHEMAS_DIR`,
    );
  }
  return dir;
}

/** Closes every object schema that lists its properties, as strict field validation treats them. */
function closeObjects(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) closeObjects(item);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const schema = node as Schema;
  for (const [key, value] of Object.entries(schema)) {
    // Property names are data, not schemas: recurse into their values only.
    if (key === "properties" && value && typeof value === "object") {
      for (const sub of Object.values(value as Schema)) closeObjects(sub);
    } else if (typeof value === "object") {
      closeObjects(value);
    }
  }
  if (schema.properties !== undefined && schema.additionalProperties === undefined && schema["x-kubernetes-preserve-unknown-fields"] !== true) {
    schema.additionalProperties = false;
  }
}

export interface Gvk {
  group: string;
  version: string;
  kind: string;
}

const gvkKey = (g: Gvk) => `${g.group}/${g.version}/${g.kind}`;
const K8S_ID = "https://schemas.modelroll.local/k8s";
const OBJECT_META = `${K8S_ID}#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`;

export interface ManifestDoc {
  file: string;
  index: number;
  object: Record<string, any>;
}

export class ManifestValidator {
  private readonly ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, validateSchema: false });
  private readonly refs = new Map<string, string>();
  private readonly compiled = new Map<string, ValidateFunction>();
  /** Where each known kind's schema came from, for messages. */
  readonly sources = new Map<string, string>();

  constructor(dir = schemaDir()) {
    const components: Record<string, Schema> = {};
    for (const file of ["k8s-api-v1.json", "k8s-apps-v1.json", "k8s-rbac-v1.json", "k8s-policy-v1.json", "k8s-apiextensions-v1.json"]) {
      const doc = JSON.parse(readFileSync(join(dir, file), "utf8")) as { components: { schemas: Record<string, Schema> } };
      for (const [name, schema] of Object.entries(doc.components.schemas)) {
        components[name] = schema;
        for (const g of (schema["x-kubernetes-group-version-kind"] as Gvk[] | undefined) ?? []) {
          this.refs.set(gvkKey(g), `${K8S_ID}#/components/schemas/${name}`);
          this.sources.set(gvkKey(g), `Kubernetes OpenAPI v3 (${file})`);
        }
      }
    }
    closeObjects(components);
    this.ajv.addSchema({ $id: K8S_ID, components: { schemas: components } });

    // The published CRDs, and the project's own (a ModelRollout in deploy/ is checked like any other object).
    const crdFiles = [join(dir, "istio-crds.yaml"), join(dir, "podmonitors.yaml"), join(repoRoot, "deploy", "istio", "modelrollouts.crd.yaml")];
    for (const path of crdFiles) {
      const file = basename(path);
      for (const doc of parseAllDocuments(readFileSync(path, "utf8"))) {
        const crd = doc.toJS() as any;
        if (crd?.kind !== "CustomResourceDefinition") continue;
        for (const version of crd.spec.versions) {
          if (!version.served) continue;
          const g: Gvk = { group: crd.spec.group, version: version.name, kind: crd.spec.names.kind };
          const body = structuredClone(version.schema.openAPIV3Schema) as Schema;
          closeObjects(body);
          const properties = {
            ...(body.properties as Schema),
            apiVersion: { const: `${g.group}/${g.version}` },
            kind: { const: g.kind },
            metadata: { $ref: OBJECT_META },
          };
          const id = `https://schemas.modelroll.local/crd/${gvkKey(g)}`;
          this.ajv.addSchema({
            ...body,
            $id: id,
            type: "object",
            properties,
            required: [...((body.required as string[]) ?? []), "apiVersion", "kind", "metadata"],
            additionalProperties: false,
          });
          this.refs.set(gvkKey(g), id);
          this.sources.set(gvkKey(g), `CRD ${crd.metadata.name} (${file})`);
        }
      }
    }
  }

  static gvkOf(object: Record<string, any>): Gvk {
    const apiVersion = String(object.apiVersion ?? "");
    const slash = apiVersion.indexOf("/");
    return slash < 0
      ? { group: "", version: apiVersion, kind: String(object.kind) }
      : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1), kind: String(object.kind) };
  }

  knows(g: Gvk): boolean {
    return this.refs.has(gvkKey(g));
  }

  /** Every problem with one object, as "<json pointer>: <message>"; empty when valid. */
  validate(object: Record<string, any>): string[] {
    const g = ManifestValidator.gvkOf(object);
    const key = gvkKey(g);
    const ref = this.refs.get(key);
    if (ref === undefined) return [`: no published schema for ${object.apiVersion} ${object.kind}`];
    let fn = this.compiled.get(key);
    if (fn === undefined) {
      fn = this.ajv.compile({ $ref: ref });
      this.compiled.set(key, fn);
    }
    if (fn(object)) return [];
    return describe(fn.errors ?? []);
  }
}

/** ajv's errors, without the echo of every failed oneOf/anyOf branch when a plainer error explains it. */
function describe(errors: ErrorObject[]): string[] {
  const lines = errors.map((e) => {
    const extra =
      e.keyword === "additionalProperties"
        ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'`
        : e.keyword === "enum"
          ? ` ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`
          : "";
    return `${e.instancePath || "/"}: ${e.message}${extra}`;
  });
  return [...new Set(lines)];
}

/** Every YAML document of the given files (empty documents skipped). */
export function loadManifests(files: string[]): ManifestDoc[] {
  const docs: ManifestDoc[] = [];
  for (const file of files) {
    parseAllDocuments(readFileSync(file, "utf8")).forEach((doc, index) => {
      if (doc.errors.length > 0) throw new Error(`${file} document ${index}: ${doc.errors[0].message}`);
      const object = doc.toJS();
      if (object !== null && object !== undefined) docs.push({ file, index, object });
    });
  }
  return docs;
}
