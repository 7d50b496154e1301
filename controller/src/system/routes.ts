import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { ControllerTelemetry } from "../telemetry.ts";

interface SystemRoutesOptions {
  telemetry: ControllerTelemetry;
}

export const systemRoutes: FastifyPluginAsyncTypebox<SystemRoutesOptions> = async (app, { telemetry }) => {
  app.get(
    "/healthz",
    {
      config: { access: "open" },
      schema: {
        tags: ["system"],
        summary: "Liveness",
        response: { 200: Type.Object({ status: Type.Literal("ok") }) },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get("/metrics", { config: { access: "open" }, schema: { hide: true } }, async (_request, reply) => {
    const text = await telemetry.registry.metrics();
    return reply.header("content-type", telemetry.registry.contentType).send(text);
  });

  app.get("/openapi.json", { config: { access: "open" }, schema: { hide: true } }, async () => app.swagger());
};
