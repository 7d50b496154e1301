/**
 * What a browser app needs from every response, and what keeps other sites from using a browser against
 * this API.
 *
 * Headers: a strict Content-Security-Policy (scripts, styles and connections from this origin only, no
 * inline script or style, no framing), nosniff, no referrer, no framing (also for old browsers).
 *
 * Writes (any method but GET, HEAD, OPTIONS) that a browser sends on behalf of another site are refused
 * with a 403 before anything else runs: on the open loopback API (no tokens) a page on any site could
 * otherwise POST to http://127.0.0.1:8080/v1/rollouts/x/rollback, and a plain form post needs no CORS
 * preflight. A browser says where a request comes from: Sec-Fetch-Site (every current browser) and Origin
 * (on every write, also older ones). curl, the modelroll CLI and the filters send neither and are not
 * affected. And on the open API, a browser request whose Host is not a loopback name is refused too: a site
 * whose DNS name was pointed at 127.0.0.1 (DNS rebinding) would otherwise be "same-origin" with it.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { AuthError } from "../errors.ts";

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** On every answer: the onSend hook below adds them, and the event streams, which write their own head, spread them. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

function isLoopbackName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The host part of a Host header ("127.0.0.1:8080" -> "127.0.0.1", "[::1]:8080" -> "[::1]"). */
function hostnameOf(host: string): string {
  return host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.slice(0, host.includes(":") ? host.indexOf(":") : undefined);
}

function refusal(request: FastifyRequest, why: string): AuthError {
  return new AuthError(403, `${request.method} ${request.url.split("?")[0]}: refused: ${why}`);
}

export function installBrowserGuard(app: FastifyInstance, options: { openApi: boolean }): void {
  app.addHook("onRequest", async (request) => {
    const site = request.headers["sec-fetch-site"];
    const origin = request.headers.origin;
    const fromBrowser = site !== undefined || origin !== undefined;
    if (!fromBrowser) return;
    const host = request.headers.host ?? "";
    if (options.openApi && !isLoopbackName(hostnameOf(host))) {
      throw refusal(
        request,
        `a browser request for host '${host}': without an API token this controller answers browsers only at a loopback address (127.0.0.1, localhost)`,
      );
    }
    if (SAFE_METHODS.has(request.method)) return;
    if (site !== undefined && site !== "same-origin" && site !== "none") {
      throw refusal(
        request,
        `a write from another site (Sec-Fetch-Site: ${site}); use the dashboard at this controller's own address, curl or the modelroll CLI`,
      );
    }
    if (typeof origin === "string") {
      let originHost: string | null = null;
      try {
        originHost = origin === "null" ? null : new URL(origin).host;
      } catch {
        originHost = null;
      }
      if (originHost === null || originHost.toLowerCase() !== host.toLowerCase()) {
        throw refusal(
          request,
          `a write from another origin (Origin: ${origin}); use the dashboard at this controller's own address, curl or the modelroll CLI`,
        );
      }
    }
  });

  app.addHook("onSend", async (_request, reply, payload) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) if (!reply.hasHeader(name)) void reply.header(name, value);
    return payload;
  });
}
