// The one list of schema verdicts. The validator returns an index into it and the stats define one counter per
// entry (`...schema.<name>.outputs`), so a verdict the validator can give always has its counter.
// Names are Envoy stat parts (lowercase words); the stats contract (docs/reference/stats-contract.md) lists them,
// and a test checks that it, the defined counters and the validator agree.

export const SCHEMA_VALID: i32 = 0;
/** A required member is absent; the pointer names the member. */
export const REASON_MISSING_FIELD: i32 = 1;
export const REASON_WRONG_TYPE: i32 = 2;
/** minimum, maximum, exclusiveMinimum, exclusiveMaximum. */
export const REASON_OUT_OF_RANGE: i32 = 3;
/** enum, const, and the `false` schema. */
export const REASON_NOT_ALLOWED: i32 = 4;
/** minLength, maxLength, minItems, maxItems. */
export const REASON_BAD_LENGTH: i32 = 5;
/**
 * A member additionalProperties: false forbids. With an additionalProperties schema, a member that fails it
 * reports that schema's own reason (e.g. wrong_type) at the member's pointer, which says more.
 */
export const REASON_UNEXPECTED_FIELD: i32 = 6;
/** Body-level: not parseable JSON (including invalid UTF-8, a BOM, trailing bytes). */
export const REASON_NOT_JSON: i32 = 7;
/** Body-level: nests deeper than the parser's limit. */
export const REASON_TOO_DEEP: i32 = 8;

/** Indexed by the constants above. */
export const SCHEMA_RESULT_NAMES: Array<string> = [
  "valid",
  "missing_field",
  "wrong_type",
  "out_of_range",
  "not_allowed",
  "bad_length",
  "unexpected_field",
  "not_json",
  "too_deep",
];
