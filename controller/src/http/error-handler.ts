import type { FastifyError, FastifyInstance, FastifyRequest } from "fastify";
import { InvalidRequestError, ModelrollError, schemaErrorDetails, summarizeDetails, type ErrorDetail, type SchemaError } from "../errors.ts";
import { ACCEPTED_BODY_TYPES, UnsupportedBodyTypeError } from "./body-parsers.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Names the object a request is about ("rollout fraud-model"), for error messages. */
    subject?: (request: FastifyRequest) => string;
  }
}

const PART_NAMES: Record<string, string> = {
  body: "request body",
  querystring: "query string",
  params: "path parameters",
  headers: "headers",
};

/**
 * The one place errors become responses, so every failure has the same shape:
 * `{ error: "<object>: <what went wrong>", details?: [{ path, reason }] }`.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | ModelrollError, request, reply) => {
    const subject = subjectOf(request);
    if ("validation" in error && error.validation) {
      const failure = validationFailure(request, error);
      return reply.code(400).send({ error: failure.message, details: failure.details });
    }
    if (error instanceof ModelrollError) {
      const body = error.details ? { error: error.message, details: error.details } : { error: error.message };
      return reply.code(error.statusCode).send(body);
    }
    const status = error.statusCode ?? 500;
    // Fastify's own wording ("Unsupported Media Type", "Request body is too large") says neither what to send
    // nor how much is allowed.
    if (error instanceof UnsupportedBodyTypeError || ("code" in error && error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")) {
      const type = request.headers["content-type"];
      return reply.code(415).send({ error: `${subject}: unsupported content type ${type ? `'${type}'` : "(none given)"}, send ${ACCEPTED_BODY_TYPES}` });
    }
    if ("code" in error && error.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      const limit = request.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit ?? 1_048_576;
      return reply.code(413).send({ error: `${subject}: request body too large: the limit is ${formatBytes(limit)}` });
    }
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: `${subject}: ${error.message}` });
    }
    request.log.error({ err: error }, "request failed");
    return reply.code(status >= 500 && status < 600 ? status : 500).send({
      error: `${subject}: internal error (${error.message})`,
    });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `route ${request.method} ${request.url.split("?")[0]}: not found` });
  });
}

/**
 * A schema validation error as the 400 the handler sends, with `extra` details (checks the schema cannot
 * express) joined; for routes with attachValidation that add their own checks.
 */
export function validationFailure(request: FastifyRequest, error: FastifyError, extra: ErrorDetail[] = []): InvalidRequestError {
  const details = schemaErrorDetails((error.validation ?? []) as SchemaError[], extra);
  const part = PART_NAMES[error.validationContext ?? "body"] ?? "request";
  return new InvalidRequestError(`${subjectOf(request)}: invalid ${part}: ${summarizeDetails(details)}`, details);
}

function formatBytes(n: number): string {
  if (n >= 1_048_576 && n % 1_048_576 === 0) return `${n / 1_048_576} MiB (${n} bytes)`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB (${n} bytes)`;
  return `${n} bytes`;
}

function subjectOf(request: FastifyRequest): string {
  const describe = request.routeOptions.config?.subject;
  if (describe) {
    try {
      return describe(request);
    } catch {
      // A describer must never turn a 400 into a 500; fall through to the route.
    }
  }
  return `request ${request.method} ${request.routeOptions.url ?? request.url.split("?")[0]}`;
}
