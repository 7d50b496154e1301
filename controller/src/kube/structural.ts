/**
 * A JSON Schema (as TypeBox writes it for /openapi.json) turned into the structural OpenAPI v3 schema a
 * CustomResourceDefinition needs: a type on every node, no $ref, no anyOf with types inside, properties and
 * additionalProperties never together, exclusiveMinimum as the boolean OpenAPI 3.0 has.
 *
 * What cannot be said structurally is left open (x-kubernetes-preserve-unknown-fields) and judged by the
 * controller, which writes its field errors into the object's Invalid condition: the schema here makes
 * `kubectl apply` refuse what is plainly wrong (a typo'd field, a string for a number) before the controller
 * sees it, never accept less than the REST API would. Defaults are not copied: the stored spec stays as the
 * user wrote it (the controller fills them in, as the REST API does), so GitOps tools see no drift.
 */

type Json = Record<string, unknown>;

/** Keywords copied as they are (the rest are dropped: $id, examples, x-reasons, default, multipleOf, uniqueItems). */
const KEPT = ["description", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "minProperties", "maxProperties", "enum"];

/** An open node: any value; the controller validates it. */
const open = (description?: unknown): Json => ({
  ...(typeof description === "string" ? { description } : {}),
  "x-kubernetes-preserve-unknown-fields": true,
});

export function toStructural(schema: unknown): Json {
  if (schema === null || typeof schema !== "object") return open();
  const s = schema as Json;
  const branches = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (branches) return union(branches, s.description);
  if (s.const !== undefined) return literal([s.const], s.description);
  const type = s.type;
  if (Array.isArray(type) || type === undefined) return open(s.description);
  const out: Json = { type };
  for (const key of KEPT) if (s[key] !== undefined) out[key] = s[key];
  if (typeof s.exclusiveMinimum === "number") Object.assign(out, { minimum: s.exclusiveMinimum, exclusiveMinimum: true });
  if (typeof s.exclusiveMaximum === "number") Object.assign(out, { maximum: s.exclusiveMaximum, exclusiveMaximum: true });
  if (type === "array") {
    // A tuple (items as a list) of one item type: an array of that type of the tuple's length.
    const items = Array.isArray(s.items) ? mergeAll(s.items as Json[]) : toStructural(s.items);
    out.items = items;
    if (Array.isArray(s.items)) Object.assign(out, { minItems: s.items.length, maxItems: s.items.length });
  }
  if (type === "object") objectNode(s, out);
  return out;
}

function objectNode(s: Json, out: Json): void {
  const properties = (s.properties ?? {}) as Record<string, unknown>;
  const extra = s.additionalProperties;
  const names = Object.keys(properties);
  if (typeof extra === "object" && extra !== null) {
    // A map with some names known: every value takes one schema, the merge of the known ones and the rest.
    out.additionalProperties = mergeAll([...names.map((n) => properties[n] as Json), extra as Json]);
    return;
  }
  if (names.length === 0) {
    // An object of any fields (additionalProperties true or unsaid).
    if (extra !== false) out["x-kubernetes-preserve-unknown-fields"] = true;
    return;
  }
  out.properties = Object.fromEntries(names.map((n) => [n, toStructural(properties[n])]));
  const required = (s.required as string[] | undefined)?.filter((n) => names.includes(n));
  if (required && required.length > 0) out.required = required;
}

/** Literals of one type: that type with an enum; one object shape: its merge; anything else: open. */
function union(branches: Json[], description: unknown): Json {
  if (branches.every((b) => b.const !== undefined))
    return literal(
      branches.map((b) => b.const),
      description,
    );
  const converted = branches.map(toStructural);
  const types = new Set(converted.map((c) => c.type));
  if (types.size === 1 && !types.has(undefined)) {
    const merged = mergeAll(branches);
    return typeof description === "string" ? { ...merged, description } : merged;
  }
  return open(description);
}

function literal(values: unknown[], description: unknown): Json {
  const types = new Set(values.map((v) => (typeof v === "number" ? (Number.isInteger(v) ? "integer" : "number") : typeof v)));
  if (types.size !== 1) return open(description);
  return { type: [...types][0], enum: values, ...(typeof description === "string" ? { description } : {}) };
}

/**
 * One structural schema accepting every one of `schemas` (for a union or a map's values): objects merge
 * their properties (a name two of them define differently keeps only the type they share); schemas of
 * different types are open.
 */
function mergeAll(schemas: Json[]): Json {
  const converted = schemas.map(toStructural);
  if (converted.length === 1) return converted[0] as Json;
  const types = new Set(converted.map((c) => c.type));
  if (types.size !== 1 || types.has(undefined)) return open();
  const type = [...types][0];
  if (type !== "object") {
    const first = JSON.stringify(converted[0]);
    if (converted.every((c) => JSON.stringify(c) === first)) return converted[0] as Json;
    if (converted.every((c) => c.enum)) return { type, enum: [...new Set(converted.flatMap((c) => c.enum as unknown[]))] };
    return { type };
  }
  if (converted.some((c) => c.additionalProperties !== undefined || c["x-kubernetes-preserve-unknown-fields"]))
    return { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  const properties: Record<string, Json> = {};
  for (const c of converted) {
    for (const [name, p] of Object.entries((c.properties ?? {}) as Record<string, Json>)) {
      const had = properties[name];
      if (had === undefined) properties[name] = p;
      else if (JSON.stringify(had) !== JSON.stringify(p)) properties[name] = had.type === p.type && had.type !== undefined ? { type: had.type } : open();
    }
  }
  // A property required by every branch stays required.
  const required = Object.keys(properties).filter((n) => converted.every((c) => ((c.required as string[] | undefined) ?? []).includes(n)));
  return { type: "object", properties, ...(required.length > 0 ? { required } : {}) };
}
