/**
 * GET /v1/session: what the caller's bearer token may do, so the dashboard can ask for a token, tell a wrong
 * one, and show a read-only token no action buttons. Open (it must answer before the page has a token); it
 * tells nothing but whether tokens are in force and what the presented one is.
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AuthError } from "../errors.ts";
import { bearerOf, tokenAccess, type AuthOptions } from "../http/auth.ts";
import { ErrorBody } from "../http/schemas.ts";

const Session = Type.Object({
  tokensRequired: Type.Boolean({ description: "Whether the API needs a bearer token (MODELROLL_API_TOKEN is set)" }),
  access: Type.Union([Type.Literal("write"), Type.Literal("read"), Type.Null()], {
    description: "write: the API token, or the API is open; read: the read-only (filter) token; null: no token given",
  }),
});

export const sessionRoutes: FastifyPluginAsyncTypebox<AuthOptions> = async (app, auth) => {
  app.get(
    "/v1/session",
    {
      config: { access: "open" },
      schema: {
        tags: ["system"],
        summary: "What the presented bearer token may do (for the dashboard's sign-in)",
        response: { 200: Session, 401: ErrorBody },
      },
    },
    async (request) => {
      const access = tokenAccess(auth, bearerOf(request));
      if (access === "unknown") throw new AuthError(401, "session: unknown bearer token (not this controller's API token or read-only token)");
      return { tokensRequired: auth.apiToken !== undefined, access: access === "none" ? null : access };
    },
  );
};
