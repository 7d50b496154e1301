/**
 * Schema annotation replacing ajv's generic message for a keyword ("must match pattern ...") with one a
 * person can act on, e.g. `{ "x-reasons": { pattern: "must start with /" } }`. The error handler reads it
 * from the failing schema (ajv runs with `verbose`).
 */
export const REASONS_KEYWORD = "x-reasons";

/** One problem with one field of a request, addressed by JSON pointer. */
export interface ErrorDetail {
  path: string;
  reason: string;
}

/** An ajv error as Fastify passes it on, with `verbose` on (parentSchema present). */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: Record<string, unknown>;
}

/** An ajv error as the detail an answer lists: the field's pointer and a reason a person can act on. */
export function toDetail(error: SchemaError): ErrorDetail {
  const base = error.instancePath;
  switch (error.keyword) {
    case "required":
      return { path: `${base}/${escapePointer(String(error.params.missingProperty))}`, reason: "is required" };
    case "additionalProperties": {
      const known = Object.keys((error.parentSchema?.properties as object | undefined) ?? {});
      const reason = known.length > 0 ? `is not a known field (known: ${known.join(", ")})` : "is not a known field";
      return { path: `${base}/${escapePointer(String(error.params.additionalProperty))}`, reason };
    }
    default: {
      const reasons = error.parentSchema?.[REASONS_KEYWORD] as Record<string, string> | undefined;
      return { path: base, reason: reasons?.[error.keyword] ?? error.message ?? `fails ${error.keyword}` };
    }
  }
}

/** Errors one answer lists at most: a body with 96,000 bad keys gets 20 of them and the count of the rest. */
export const MAX_LISTED_ERRORS = 20;

/**
 * The first MAX_LISTED_ERRORS details, then one that says how many more there are; `total` when the list
 * given was already cut short by its producer (which stopped collecting).
 */
export function capDetails(details: readonly ErrorDetail[], total = details.length): ErrorDetail[] {
  if (total <= MAX_LISTED_ERRORS) return [...details];
  // Already capped (by the producer, before an error was made of it).
  if (details.length === MAX_LISTED_ERRORS + 1 && total === details.length && isMore(details[MAX_LISTED_ERRORS])) return [...details];
  const listed = details.slice(0, MAX_LISTED_ERRORS);
  return [...listed, { path: "", reason: `and ${total - listed.length} more errors, not listed` }];
}

const isMore = (d: ErrorDetail | undefined) => d !== undefined && d.path === "" && /^and \d+ more errors, not listed$/.test(d.reason);

/** Details as a 400's message sums them up: "/path reason; /path reason" (the count of the rest last). */
export function summarizeDetails(details: readonly ErrorDetail[]): string {
  return details.map((d) => (isMore(d) ? d.reason : `${d.path || "(root)"} ${d.reason}`)).join("; ");
}

/** ajv's errors as details, converting only the ones an answer lists (each may list a schema's known fields). */
export function schemaErrorDetails(errors: readonly SchemaError[], extra: readonly ErrorDetail[] = []): ErrorDetail[] {
  const converted = errors.slice(0, MAX_LISTED_ERRORS + 1).map(toDetail);
  return capDetails([...converted, ...extra.slice(0, MAX_LISTED_ERRORS + 1)], errors.length + extra.length);
}

function escapePointer(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

/**
 * Errors the controller means to show to API clients. The message must name the object
 * ("rollout fraud-model: ...") because it is printed as-is by CLIs and logs far from the request.
 */
export class ModelrollError extends Error {
  readonly statusCode: number;
  readonly details?: ErrorDetail[];

  constructor(statusCode: number, message: string, details?: ErrorDetail[]) {
    super(message);
    this.name = new.target.name;
    this.statusCode = statusCode;
    // However many problems a request has, its answer lists a bounded number.
    this.details = details && capDetails(details);
  }
}

export class InvalidRequestError extends ModelrollError {
  constructor(message: string, details?: ErrorDetail[]) {
    super(400, message, details);
  }
}

export class NotFoundError extends ModelrollError {
  constructor(message: string) {
    super(404, message);
  }
}

export class ConflictError extends ModelrollError {
  constructor(message: string, details?: ErrorDetail[]) {
    super(409, message, details);
  }
}

/** The client's If-Match names a revision the object no longer has: it must read again before writing. */
export class PreconditionFailedError extends ModelrollError {
  constructor(message: string) {
    super(412, message);
  }
}

/** No or a wrong bearer token (401), or a token that may not do this (403). */
export class AuthError extends ModelrollError {
  constructor(statusCode: 401 | 403, message: string) {
    super(statusCode, message);
  }
}

/** A dependency we read from (Envoy admin, Prometheus) could not answer. */
export class UnavailableError extends ModelrollError {
  constructor(message: string) {
    super(503, message);
  }
}
