/**
 * GET /v1/rollouts as text, cheap to read again: each rollout's view is serialized once per rollout object (the
 * store replaces the object on every change) and reading of what the Envoys' clusters reach (the view's `variants`:
 * `upstreams.version` moves when that changes), so a cached view is never stale; the whole list once per store
 * change or such reading. 200 clients reading a list of 200 rollouts used to keep the one event loop busy serializing
 * the same 163 KB over and over, and single GETs waited behind it. Pages (?limit, ?continue) as kubectl pages:
 * the token is where the previous page stopped (the last name), so a page is stable under concurrent writes.
 * The whole list carries an ETag: a poller sending it back in If-None-Match gets a 304 until the list changes.
 */
import { randomBytes } from "node:crypto";
import type { FastifyReply } from "fastify";
import { InvalidRequestError } from "../errors.ts";
import type { UpstreamLookup } from "../metrics/envoy-upstreams.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { RolloutView, toView } from "./rollout-view.ts";

/** The most rollouts one page holds. */
export const MAX_PAGE = 1000;

type Serialize = (view: RolloutView) => string;

/** A page of the list as sent: the whole list as bytes with its ETag, a page as text. */
type ListAnswer = { body: Buffer; etag: string } | { body: string; etag: null };

/** What the Envoys say the clusters reach, and the count of its changes. */
interface UpstreamReadings {
  readonly lookup: UpstreamLookup;
  readonly version: number;
}

export function cachedList(
  store: RolloutStore,
  upstreams: UpstreamReadings,
): (reply: FastifyReply, limit: number | undefined, token: string | undefined) => ListAnswer {
  let views = new WeakMap<Rollout, string>();
  let viewsOfUpstreams = upstreams.version;
  // Bytes, not text: sending the same string again would encode it to UTF-8 again.
  let whole: { list: readonly Rollout[]; upstreams: number; body: Buffer; etag: string } | null = null;
  // The ETag names this process's list state: a restart (or another controller) never answers 304 to an old one.
  const boot = randomBytes(6).toString("base64url");
  let changes = 0;
  let serialize: Serialize | null = null;
  const viewOf = (rollout: Rollout) => {
    if (viewsOfUpstreams !== upstreams.version) {
      views = new WeakMap();
      viewsOfUpstreams = upstreams.version;
    }
    let text = views.get(rollout);
    if (text === undefined) {
      text = (serialize as Serialize)(toView(rollout, upstreams.lookup));
      views.set(rollout, text);
    }
    return text;
  };
  return (reply, limit, token) => {
    serialize ??= reply.compileSerializationSchema(RolloutView, "200") as unknown as Serialize;
    const list = store.list();
    if (limit === undefined && token === undefined) {
      if (whole?.list !== list || whole.upstreams !== upstreams.version)
        whole = {
          list,
          upstreams: upstreams.version,
          body: Buffer.from(`{"rollouts":[${list.map(viewOf).join(",")}]}`, "utf8"),
          etag: `"list-${boot}-${++changes}"`,
        };
      return { body: whole.body, etag: whole.etag };
    }
    const start = token === undefined ? 0 : firstAfter(list, nameOf(token));
    const end = Math.min(list.length, start + (limit ?? MAX_PAGE));
    const page = list.slice(start, end).map(viewOf).join(",");
    const last = list[end - 1];
    const next = end < list.length && last ? `,"continue":${JSON.stringify(tokenOf(last.spec.name))}` : "";
    return { body: `{"rollouts":[${page}]${next}}`, etag: null };
  };
}

function tokenOf(name: string): string {
  return Buffer.from(`after:${name}`, "utf8").toString("base64url");
}

function nameOf(token: string): string {
  const text = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, "base64url").toString("utf8") : "";
  if (!text.startsWith("after:"))
    throw new InvalidRequestError("rollout list: continue: not a token this list gave (send the continue value of the previous page)");
  return text.slice("after:".length);
}

/** The index of the first rollout named after `name` (the list is sorted by name in code-unit order). */
function firstAfter(list: readonly Rollout[], name: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] as Rollout).spec.name <= name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
