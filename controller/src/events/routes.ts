/**
 * A rollout's live stream: `GET /v1/rollouts/{name}/events` as Server-Sent Events, for `modelroll get --watch`,
 * `modelroll status` and anything else that wants to follow a rollout without polling the API.
 *
 * Each `rollout` event carries the rollout's view exactly as `GET /v1/rollouts/{name}` returns it. One is sent
 * at once (unless Last-Event-ID says the client has this state already), then whenever the view changes or the
 * engine has made a new evaluation. A `deleted` event ends the stream. Comment lines keep a quiet stream open.
 *
 * Change detection: the store replaces a rollout's object on every commit, so a reference comparison tells
 * "something was written"; its listeners hear only what the filters must hear (weights, create, delete), not
 * a phase change without a weight change or a new evaluation, so the streams also look at the store on a short
 * in-process timer (a map lookup per open stream, no I/O).
 */
import type { ServerResponse } from "node:http";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { SECURITY_HEADERS } from "../http/browser-guard.ts";
import { RolloutView, toView } from "../http/rollout-view.ts";
import { ErrorBody, RolloutNameParams } from "../http/schemas.ts";
import { rolloutFromPath } from "../http/subject.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { StreamSlots } from "./slots.ts";
import { rolloutEventId, sseComment, sseFrame, sseRetry } from "./sse.ts";

interface EventRoutesOptions {
  store: RolloutStore;
  /** A comment line on every open stream this often; default 15000 ms. */
  heartbeatMs?: number;
  /** How often open streams look at the store for changes its listeners do not announce; default 250 ms. */
  sampleMs?: number;
  /** The open-stream budget shared with GET /v1/events (slots.ts); default: 256 of its own. */
  slots?: StreamSlots;
  /** Reconnect delay suggested to clients; default 2000 ms. */
  retryMs?: number;
}

interface Stream {
  name: string;
  raw: ServerResponse;
  /** The view as GET /v1/rollouts/{name} serializes it (its response schema drops internal fields). */
  serialize: (view: RolloutView) => string;
  /** The rollout object last looked at (the store replaces it on every write). */
  seen: Rollout | null;
  sentView: string | null;
  sentEvaluation: unknown;
  /** Gives the stream's slot back. */
  release: () => void;
}

const EventHeaders = Type.Object({
  "last-event-id": Type.Optional(Type.String({ maxLength: 200, description: "The id of the last event received; sent by SSE clients when they reconnect." })),
});

const STREAM_DESCRIPTION = [
  "text/event-stream. `event: rollout` with `data:` the rollout's view (as GET /v1/rollouts/{name}), sent on connect",
  "and whenever the view changes or the engine makes a new evaluation; `id:` names that state (opaque; a reconnect with",
  'Last-Event-ID equal to the current id is not sent it again). `event: deleted` (data: {"name"}) ends the stream.',
  "Comment lines (`: heartbeat`) every 15 s; `retry:` suggests the reconnect delay.",
].join(" ");

export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, options) => {
  const { store } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const sampleMs = options.sampleMs ?? 250;
  const slots = options.slots ?? new StreamSlots();
  const retryMs = options.retryMs ?? 2000;
  const streams = new Set<Stream>();
  let sampler: NodeJS.Timeout | null = null;
  let heartbeat: NodeJS.Timeout | null = null;

  const close = (stream: Stream) => {
    stream.release();
    streams.delete(stream);
    if (!stream.raw.writableEnded) stream.raw.end();
    if (streams.size === 0) stopTimers();
  };

  const check = (stream: Stream) => {
    const rollout = store.find(stream.name);
    if (rollout === undefined) {
      stream.raw.write(sseFrame({ event: "deleted", data: JSON.stringify({ name: stream.name }) }));
      return close(stream);
    }
    if (rollout === stream.seen) return;
    // A client that does not read: skip, and look again at the next sample (only the latest state matters).
    if (stream.raw.writableNeedDrain) return;
    stream.seen = rollout;
    const view = stream.serialize(toView(rollout, app.upstreamLookup));
    const evaluation = rollout.engine?.lastEvaluation ?? null;
    if (view === stream.sentView && evaluation === stream.sentEvaluation) return;
    stream.raw.write(sseFrame({ event: "rollout", id: idOf(rollout), data: view }));
    stream.sentView = view;
    stream.sentEvaluation = evaluation;
  };

  function startTimers() {
    if (sampler !== null) return;
    sampler = setInterval(() => {
      for (const stream of [...streams]) safeCheck(stream);
    }, sampleMs);
    heartbeat = setInterval(() => {
      for (const stream of streams) if (!stream.raw.writableNeedDrain) stream.raw.write(sseComment("heartbeat"));
    }, heartbeatMs);
    sampler.unref();
    heartbeat.unref();
  }

  function stopTimers() {
    if (sampler !== null) clearInterval(sampler);
    if (heartbeat !== null) clearInterval(heartbeat);
    sampler = heartbeat = null;
  }

  // Deletes and weight changes reach the streams at once, not at the next sample.
  // Runs in the store's commit and on a timer: a stream that fails is dropped, never thrown into either.
  const safeCheck = (stream: Stream) => {
    try {
      check(stream);
    } catch {
      close(stream);
    }
  };
  const unsubscribe = store.subscribe((event) => {
    for (const stream of [...streams]) if (stream.name === event.rollout) safeCheck(stream);
  });

  // Open streams would hold server.close() for ever; end them first.
  app.addHook("preClose", async () => {
    for (const stream of [...streams]) close(stream);
    stopTimers();
    unsubscribe();
  });

  app.get(
    "/v1/rollouts/:name/events",
    {
      config: { subject: rolloutFromPath },
      schema: {
        tags: ["rollouts"],
        summary: "Follow one rollout live (Server-Sent Events)",
        description: STREAM_DESCRIPTION,
        params: RolloutNameParams,
        headers: EventHeaders,
        produces: ["text/event-stream"],
        response: { 200: Type.String({ description: STREAM_DESCRIPTION }), 404: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const rollout = store.get(request.params.name);
      const release = slots.take(request.tokenAccess ?? "write", `rollout ${rollout.spec.name}`);
      reply.hijack();
      const raw = reply.raw;
      // A hijacked reply skips the onSend hook that adds these to every other answer.
      raw.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-store",
        connection: "keep-alive",
        // Reverse proxies (nginx) would otherwise buffer the stream.
        "x-accel-buffering": "no",
      });
      raw.write(sseRetry(retryMs));
      const serialize = reply.compileSerializationSchema(RolloutView) as (view: RolloutView) => string;
      const stream: Stream = { name: rollout.spec.name, raw, serialize, seen: null, sentView: null, sentEvaluation: undefined, release };
      if (request.headers["last-event-id"] === idOf(rollout)) {
        // The client has this state: only what comes next.
        stream.seen = rollout;
        stream.sentView = serialize(toView(rollout, app.upstreamLookup));
        stream.sentEvaluation = rollout.engine?.lastEvaluation ?? null;
      }
      streams.add(stream);
      raw.on("close", () => close(stream));
      raw.on("error", () => close(stream));
      startTimers();
      safeCheck(stream);
    },
  );
};

function idOf(rollout: Rollout): string {
  return rolloutEventId({
    createdAtMs: rollout.createdAt.getTime(),
    revision: rollout.revision,
    evaluationAt: rollout.engine?.lastEvaluation?.at ?? null,
  });
}
