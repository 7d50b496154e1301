/**
 * Bearer tokens. Two, so a leaked sidecar config cannot move traffic: the API token may do everything, the
 * filter token (in every Envoy's plugin config) may only read. Without any token configured the API is open,
 * which startController only allows on a loopback address.
 *
 * Each route says what it needs in its config (`access`); without it, GET and HEAD need "read" and every
 * other method "write", so a new write route is protected unless someone opens it on purpose.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { AuthError } from "../errors.ts";

export type Access =
  /** Anyone: health checks, Prometheus scrapes of /metrics, the OpenAPI document. */
  | "open"
  /** The filter token or the API token. */
  | "read"
  /** Only the API token. */
  | "write";

declare module "fastify" {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    /** What the request's token may do: "write" (the API token, or any request while the API is open) or "read" (the filter token). */
    tokenAccess: "read" | "write";
  }
}

export interface AuthOptions {
  /** May read and write. */
  apiToken?: string;
  /** May read (the filters' config long-poll, and any GET). */
  filterToken?: string;
}

/** Tokens are compared as SHA-256 digests: constant time, whatever the lengths. */
function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

export function checkTokens(options: AuthOptions): void {
  for (const [name, token] of [
    ["API token", options.apiToken],
    ["filter token", options.filterToken],
  ] as const) {
    if (token === undefined) continue;
    if (!/^[\x21-\x7e]{16,256}$/.test(token)) throw new Error(`controller: ${name}: must be 16-256 printable ASCII characters without spaces`);
  }
  if (options.filterToken !== undefined && options.apiToken === undefined) {
    throw new Error("controller: a filter token without an API token would leave every write open; give both");
  }
  if (options.filterToken !== undefined && options.filterToken === options.apiToken) {
    throw new Error("controller: the filter token must differ from the API token (filters must not be able to write)");
  }
}

export function installAuth(app: FastifyInstance, options: AuthOptions): void {
  checkTokens(options);
  app.decorateRequest("tokenAccess", "write");
  if (options.apiToken === undefined) return;
  const api = digest(options.apiToken);
  const filter = options.filterToken === undefined ? null : digest(options.filterToken);

  app.addHook("onRequest", async (request) => {
    const access = accessOf(request);
    if (access === "open") return;
    const presented = bearerOf(request);
    if (presented === null) {
      throw new AuthError(401, `${request.method} ${request.url.split("?")[0]}: a bearer token is required (Authorization: Bearer <token>)`);
    }
    const given = digest(presented);
    if (timingSafeEqual(given, api)) return;
    if (filter !== null && timingSafeEqual(given, filter)) {
      request.tokenAccess = "read";
      if (access === "read") return;
      throw new AuthError(403, `${request.method} ${request.url.split("?")[0]}: the filter token may only read; writes need the API token`);
    }
    throw new AuthError(401, `${request.method} ${request.url.split("?")[0]}: unknown bearer token`);
  });

  // RFC 6750: a 401 says which scheme to use.
  app.addHook("onSend", async (_request, reply, payload) => {
    if (reply.statusCode === 401) void reply.header("www-authenticate", 'Bearer realm="modelroll"');
    return payload;
  });
}

function accessOf(request: FastifyRequest): Access {
  const declared = request.routeOptions.config?.access;
  if (declared) return declared;
  return request.method === "GET" || request.method === "HEAD" ? "read" : "write";
}

function bearerOf(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header !== "string") return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

/**
 * What a presented bearer token may do, for the dashboard's sign-in (GET /v1/session): "write" (the API token,
 * or any request while the API is open), "read" (the filter token), "none" (no token given), "unknown".
 */
export function tokenAccess(options: AuthOptions, presented: string | null): "write" | "read" | "none" | "unknown" {
  if (options.apiToken === undefined) return "write";
  if (presented === null) return "none";
  const given = digest(presented);
  if (timingSafeEqual(given, digest(options.apiToken))) return "write";
  if (options.filterToken !== undefined && timingSafeEqual(given, digest(options.filterToken))) return "read";
  return "unknown";
}

export { bearerOf };
