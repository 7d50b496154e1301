/**
 * A spec's structural problems (TypeBox's checks against spec-schema.ts) as the API lists them: one JSON
 * pointer and one reason a person can act on per problem, the schema's own wording (REASONS_KEYWORD) first.
 */
import type { TSchema } from "@sinclair/typebox";
import { Value, ValueErrorType, type ValueError } from "@sinclair/typebox/value";
import { REASONS_KEYWORD, type ErrorDetail } from "../errors.ts";

export function schemaErrors(schema: TSchema, value: unknown, prefix: string): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const required = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    // A missing property is reported twice (required, then its type): keep the first.
    if (required.has(error.path)) continue;
    if (error.type === ValueErrorType.ObjectRequiredProperty) required.add(error.path);
    details.push({ path: prefix + error.path, reason: reasonOf(error) });
  }
  return details;
}

const KEYWORDS: Partial<Record<ValueErrorType, string>> = {
  [ValueErrorType.StringPattern]: "pattern",
  [ValueErrorType.NumberMultipleOf]: "multipleOf",
};

function reasonOf(error: ValueError): string {
  const schema = error.schema as Record<string, unknown>;
  const keyword = KEYWORDS[error.type];
  const reasons = schema[REASONS_KEYWORD] as Record<string, string> | undefined;
  if (keyword && reasons?.[keyword]) return reasons[keyword];
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return "is required";
    case ValueErrorType.ObjectAdditionalProperties: {
      const known = Object.keys((schema.properties as object | undefined) ?? {});
      return known.length > 0 ? `is not a known field (known: ${known.join(", ")})` : "is not a known field";
    }
    case ValueErrorType.Union: {
      const options = (schema.anyOf as Array<{ const?: unknown }> | undefined) ?? [];
      const literals = options.map((o) => o.const).filter((c) => c !== undefined);
      if (literals.length === options.length && literals.length > 0) return `must be one of ${literals.map((l) => JSON.stringify(l)).join(", ")}`;
      return "has the wrong shape";
    }
    case ValueErrorType.Number:
      return "must be a number";
    case ValueErrorType.Integer:
      return "must be a whole number";
    case ValueErrorType.String:
      return "must be a string";
    case ValueErrorType.Boolean:
      return "must be true or false";
    case ValueErrorType.Array:
      return "must be a list";
    case ValueErrorType.Object:
      return "must be an object";
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(schema.const)}`;
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `must be at least ${schema.minimum}`;
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return `must be at most ${schema.maximum}`;
    case ValueErrorType.NumberExclusiveMinimum:
    case ValueErrorType.IntegerExclusiveMinimum:
      return `must be above ${schema.exclusiveMinimum}`;
    case ValueErrorType.NumberMultipleOf:
      return `must be a multiple of ${schema.multipleOf}`;
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${schema.minItems} item(s)`;
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${schema.maxItems} items`;
    case ValueErrorType.ArrayUniqueItems:
      return "must not repeat an item";
    case ValueErrorType.StringMinLength:
      return schema.minLength === 1 ? "must not be empty" : `must be at least ${schema.minLength} characters`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${schema.maxLength} characters`;
    case ValueErrorType.Tuple:
    case ValueErrorType.TupleLength:
      return "must be a list of exactly two numbers";
  }
  return error.message.replace(/^Expected/, "must be");
}
