// Which object a request is about, for error messages ("rollout fraud-model: ..."): the routes' `subject`
// (http/error-handler.ts reads it).
import type { FastifyRequest } from "fastify";

/** For a request about an existing rollout: the name is in the path. */
export function rolloutFromPath(request: FastifyRequest): string {
  return `rollout ${(request.params as { name?: string }).name}`;
}

/** For a create: the name is in the body, possibly missing or invalid (kept short in messages). */
export function rolloutFromBody(request: FastifyRequest): string {
  const name = (request.body as { name?: unknown } | undefined)?.name;
  if (typeof name !== "string" || name === "") return "rollout spec";
  return `rollout ${name.length > 63 ? `${name.slice(0, 63)}...` : name}`;
}
