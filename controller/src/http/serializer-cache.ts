/**
 * One response serializer per response schema object, shared by every route that answers with it. Fastify
 * compiles a serializer per route and status; a rollout view is answered by some twenty routes, and compiling
 * its schema (the whole spec, stages, gates, models) for each of them more than doubled the app's start-up.
 */
import { SerializerSelector } from "@fastify/fast-json-stringify-compiler";
import type { FastifyInstance } from "fastify";

type Serialize = (data: unknown) => string;

export function installSerializerCache(app: FastifyInstance): void {
  const build = SerializerSelector()({}, {}) as unknown as (route: { schema: object; method: string; url: string; httpStatus: string }) => Serialize;
  const compiled = new WeakMap<object, Serialize>();
  app.setSerializerCompiler((route) => {
    const schema = route.schema as object;
    let serialize = compiled.get(schema);
    if (!serialize) {
      serialize = build(route as { schema: object; method: string; url: string; httpStatus: string });
      compiled.set(schema, serialize);
    }
    return serialize;
  });
}
