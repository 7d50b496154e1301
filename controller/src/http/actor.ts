import type { FastifyRequest } from "fastify";

const ACTOR_HEADER = "x-actor";
const DEFAULT_ACTOR = "api";

/** Who is acting, for the record: the x-actor header (first value, at most 200 characters), else "api". */
export function actorOf(request: FastifyRequest): string {
  const header = request.headers[ACTOR_HEADER];
  const actor = (Array.isArray(header) ? header[0] : header)?.trim();
  return actor ? actor.slice(0, 200) : DEFAULT_ACTOR;
}
