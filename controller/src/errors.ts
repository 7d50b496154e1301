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
    this.details = details;
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
