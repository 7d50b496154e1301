/**
 * REST writes in Kubernetes mode answer only once the API server has what they changed: each write request
 * runs in a context (persistence.ts, requestWrites) collecting the API writes it caused, and its answer waits
 * for them. A write the API server refused answers 409 (412 with If-Match) or 503, and the store already holds
 * the server's version again.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ConflictError, PreconditionFailedError } from "../errors.ts";
import { ANNOTATIONS } from "./objects.ts";
import { type RequestWrites, requestWrites } from "./persistence.ts";
import type { KubeSync } from "./sync.ts";

const contexts = new WeakMap<FastifyRequest, RequestWrites>();
const READS = new Set(["GET", "HEAD", "OPTIONS"]);

export function installKubeWriteHooks(app: FastifyInstance, sync: KubeSync): void {
  app.addHook("onRequest", (request, _reply, done) => {
    if (READS.has(request.method)) return done();
    const context: RequestWrites = { writes: [], ifMatch: request.headers["if-match"] !== undefined };
    contexts.set(request, context);
    requestWrites.run(context, done);
  });

  // A rollout made by `kubectl apply` belongs to its manifest: a REST PUT would be undone by the next apply.
  app.addHook("preHandler", async (request) => {
    const path = request.url.split("?")[0] ?? "";
    const context = contexts.get(request);
    if (request.method === "POST" && path === "/v1/rollouts" && context && isObject(request.body)) context.body = request.body;
    if (request.method !== "PUT") return;
    const match = /^\/v1\/rollouts\/([^/?]+)$/.exec(path);
    if (!match) return;
    if (context && isObject(request.body)) context.body = request.body;
    const name = decodeURIComponent(match[1] as string);
    const object = sync.objects.get(name);
    if (object && object.metadata.annotations?.[ANNOTATIONS.origin] !== "rest") {
      throw new ConflictError(
        `rollout ${name}: its spec belongs to the ModelRollout ${sync.namespace}/${name} applied with kubectl: change it there (kubectl apply); commands (promote, pause, ...) still work here`,
      );
    }
  });

  app.addHook("onSend", async (request, _reply, payload) => {
    const context = contexts.get(request);
    if (!context || context.writes.length === 0) return payload;
    const results = await Promise.allSettled(context.writes);
    const refused = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (refused === undefined) return payload;
    const error = refused.reason as Error;
    if (error instanceof ConflictError && context.ifMatch) throw new PreconditionFailedError(error.message);
    throw error;
  });
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
