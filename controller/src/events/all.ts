/**
 * The dashboard's live stream: `GET /v1/events` follows every rollout (the list page), `?rollout=NAME` one
 * rollout with its plan, latest evaluation and view (the rollout page). Server-Sent Events, batched:
 *
 *   event: rollouts
 *   id: <boot>.<sequence>
 *   data: {"full": bool, "items": [RolloutSummary...], "removed": ["name"...], "views"?: {name: RolloutView}}
 *
 * The first event is full (every rollout, or the one); later ones carry only what changed since the stream's
 * last event, at most one every `batchMs`, so 200 rollouts changing at once are one event, not 200.
 * Reconnecting with Last-Event-ID resumes: only what changed since that id (a controller restarted since, or
 * an id too old, gets a full event again). Comment lines keep a quiet stream open.
 *
 * Change detection is shared by all streams: on each batch tick, every rollout object the store replaced
 * since (and every change of its observed share) gets a new sequence number; each stream sends the
 * summaries newer than its own last sequence.
 */
import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { Gauge, type Registry } from "prom-client";
import { SECURITY_HEADERS } from "../http/browser-guard.ts";
import { RolloutView, toView } from "../http/rollout-view.ts";
import { ErrorBody } from "../http/schemas.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { sseComment, sseFrame, sseRetry } from "./sse.ts";
import { StreamSlots } from "./slots.ts";
import { summaryOf } from "./summary.ts";

interface AllEventsOptions {
  store: RolloutStore;
  /** The canary's share in a rollout's latest telemetry snapshot (series/recorder.ts). */
  observed?: (name: string) => number | null;
  /** At most one event per stream this often; default 500 ms. */
  batchMs?: number;
  heartbeatMs?: number;
  /** The open-stream budget shared with the per-rollout streams (slots.ts); default: 256 of its own. */
  slots?: StreamSlots;
  retryMs?: number;
  /** Where the open-stream gauge goes (the controller's /metrics). */
  registry?: Registry;
}

interface Entry {
  rollout: Rollout;
  observed: number | null;
  seq: number;
}

interface Stream {
  raw: ServerResponse;
  /** One rollout's stream (detail), or null for all. */
  only: string | null;
  sentSeq: number;
  serializeView: (view: RolloutView) => string;
  /** Gives the stream's slot back. */
  release: () => void;
}

const STREAM_DESCRIPTION = [
  "text/event-stream. `event: rollouts` with data {full, items, removed, views?}: items are rollout summaries (phase, stage,",
  "set and observed weight, owner, gates, what needs attention; with ?rollout=NAME also the plan, the latest evaluation and",
  "the view under views). The first event is full, later ones carry what changed, batched. Reconnect with Last-Event-ID to",
  "get only what changed since. Comment lines every 15 s.",
].join(" ");

/** Removed names are remembered this long for reconnecting streams; an older Last-Event-ID gets a full event. */
const TOMBSTONES = 1000;

export const allEventRoutes: FastifyPluginAsyncTypebox<AllEventsOptions> = async (app, options) => {
  const { store } = options;
  const observed = options.observed ?? (() => null);
  const batchMs = options.batchMs ?? 500;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const slots = options.slots ?? new StreamSlots();
  const retryMs = options.retryMs ?? 2000;
  const boot = randomBytes(4).toString("hex");
  const entries = new Map<string, Entry>();
  const removed: Array<{ name: string; seq: number }> = [];
  let seq = 0;
  /** Sequences at or below this were given before the oldest tombstone was dropped. */
  let forgottenBelow = 0;
  const streams = new Set<Stream>();
  let batcher: NodeJS.Timeout | null = null;
  let heartbeat: NodeJS.Timeout | null = null;

  /** Brings the shared entries up to date with the store; returns nothing, bumps sequences. */
  const refresh = () => {
    const present = new Set<string>();
    for (const rollout of store.list()) {
      const name = rollout.spec.name;
      present.add(name);
      const share = observed(name);
      const entry = entries.get(name);
      if (entry && entry.rollout === rollout && entry.observed === share) continue;
      if (entry && entry.rollout.createdAt.getTime() !== rollout.createdAt.getTime()) removed.push({ name, seq: ++seq });
      entries.set(name, { rollout, observed: share, seq: ++seq });
    }
    for (const name of [...entries.keys()]) {
      if (present.has(name)) continue;
      entries.delete(name);
      removed.push({ name, seq: ++seq });
    }
    for (let forgotten = removed.length - TOMBSTONES; forgotten > 0; forgotten--) {
      const oldest = removed.shift();
      if (oldest) forgottenBelow = oldest.seq;
    }
  };

  const idOf = () => `${boot}.${seq}`;

  const send = (stream: Stream, full: boolean) => {
    if (stream.raw.writableNeedDrain) return;
    const since = full ? -1 : stream.sentSeq;
    const items: string[] = [];
    const views: string[] = [];
    for (const [name, entry] of entries) {
      if (stream.only !== null && name !== stream.only) continue;
      if (entry.seq <= since) continue;
      const detail = stream.only !== null;
      items.push(JSON.stringify(summaryOf(entry.rollout, entry.observed, detail, app.upstreamLookup)));
      if (detail) views.push(`${JSON.stringify(name)}:${stream.serializeView(toView(entry.rollout, app.upstreamLookup))}`);
    }
    const gone = full ? [] : removed.filter((r) => r.seq > since && (stream.only === null || r.name === stream.only)).map((r) => r.name);
    if (!full && items.length === 0 && gone.length === 0) {
      stream.sentSeq = seq;
      return;
    }
    const data = `{"full":${full},"items":[${items.join(",")}],"removed":${JSON.stringify(gone)}${stream.only !== null ? `,"views":{${views.join(",")}}` : ""}}`;
    stream.raw.write(sseFrame({ event: "rollouts", id: idOf(), data }));
    stream.sentSeq = seq;
  };

  const close = (stream: Stream) => {
    stream.release();
    streams.delete(stream);
    if (!stream.raw.writableEnded) stream.raw.end();
    if (streams.size === 0) stopTimers();
  };

  const safeSend = (stream: Stream, full: boolean) => {
    try {
      send(stream, full);
    } catch {
      close(stream);
    }
  };

  function startTimers() {
    if (batcher !== null) return;
    batcher = setInterval(() => {
      refresh();
      for (const stream of [...streams]) safeSend(stream, false);
    }, batchMs);
    heartbeat = setInterval(() => {
      for (const stream of streams) if (!stream.raw.writableNeedDrain) stream.raw.write(sseComment("heartbeat"));
    }, heartbeatMs);
    batcher.unref();
    heartbeat.unref();
  }

  function stopTimers() {
    if (batcher !== null) clearInterval(batcher);
    if (heartbeat !== null) clearInterval(heartbeat);
    batcher = heartbeat = null;
  }

  app.addHook("preClose", async () => {
    for (const stream of [...streams]) close(stream);
    stopTimers();
  });

  app.get(
    "/v1/events",
    {
      schema: {
        tags: ["rollouts"],
        summary: "Follow every rollout, or one with ?rollout=NAME, live (Server-Sent Events, batched)",
        description: STREAM_DESCRIPTION,
        querystring: Type.Object({ rollout: Type.Optional(Type.String({ maxLength: 253 })) }, { additionalProperties: false }),
        headers: Type.Object({ "last-event-id": Type.Optional(Type.String({ maxLength: 200 })) }),
        produces: ["text/event-stream"],
        response: { 200: Type.String({ description: STREAM_DESCRIPTION }), 404: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const only = request.query.rollout ?? null;
      if (only !== null) store.get(only);
      refresh();
      const release = slots.take(request.tokenAccess ?? "write", "event stream");
      reply.hijack();
      const raw = reply.raw;
      // A hijacked reply skips the onSend hook that adds these to every other answer.
      raw.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-store",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      raw.write(sseRetry(retryMs));
      const serializeView = reply.compileSerializationSchema(RolloutView) as (view: RolloutView) => string;
      const stream: Stream = { raw, only, sentSeq: -1, serializeView, release };
      streams.add(stream);
      raw.on("close", () => close(stream));
      raw.on("error", () => close(stream));
      startTimers();
      const resumeFrom = resumable(request.headers["last-event-id"], boot, seq, forgottenBelow);
      if (resumeFrom === null) safeSend(stream, true);
      else {
        stream.sentSeq = resumeFrom;
        safeSend(stream, false);
      }
    },
  );

  if (options.registry) {
    new Gauge({
      name: "modelroll_dashboard_streams",
      help: "Open GET /v1/events streams (dashboard pages; a hidden page closes its stream).",
      registers: [options.registry],
      collect() {
        this.set(streams.size);
      },
    });
  }
};

/** The sequence a Last-Event-ID resumes from, or null when a full event is needed. */
function resumable(lastEventId: string | undefined, boot: string, current: number, forgottenBelow: number): number | null {
  if (lastEventId === undefined) return null;
  const [idBoot, idSeq] = lastEventId.split(".");
  const n = Number(idSeq);
  if (idBoot !== boot || !Number.isInteger(n) || n > current || n < forgottenBelow) return null;
  return n;
}
