/**
 * GET /v1/rollouts as text, cheap to read again: each rollout's view is serialized once per rollout object (the
 * store replaces the object on every change, so a cached view is never stale), and the whole list once per
 * store change. 200 clients reading a list of 200 rollouts used to keep the one event loop busy serializing
 * the same 163 KB over and over, and single GETs waited behind it. Pages (?limit, ?continue) as kubectl pages:
 * the token is where the previous page stopped (the last name), so a page is stable under concurrent writes.
 */
import type { FastifyReply } from "fastify";
import { InvalidRequestError } from "../errors.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { RolloutView, toView } from "./rollout-view.ts";

/** The most rollouts one page holds. */
export const MAX_PAGE = 1000;

type Serialize = (view: RolloutView) => string;

export function cachedList(store: RolloutStore): (reply: FastifyReply, limit: number | undefined, token: string | undefined) => string {
  const views = new WeakMap<Rollout, string>();
  let whole: { list: readonly Rollout[]; body: string } | null = null;
  let serialize: Serialize | null = null;
  const viewOf = (rollout: Rollout) => {
    let text = views.get(rollout);
    if (text === undefined) {
      text = (serialize as Serialize)(toView(rollout));
      views.set(rollout, text);
    }
    return text;
  };
  return (reply, limit, token) => {
    serialize ??= reply.compileSerializationSchema(RolloutView, "200") as unknown as Serialize;
    const list = store.list();
    if (limit === undefined && token === undefined) {
      if (whole?.list !== list) whole = { list, body: `{"rollouts":[${list.map(viewOf).join(",")}]}` };
      return whole.body;
    }
    const start = token === undefined ? 0 : firstAfter(list, nameOf(token));
    const end = Math.min(list.length, start + (limit ?? MAX_PAGE));
    const page = list.slice(start, end).map(viewOf).join(",");
    const last = list[end - 1];
    const next = end < list.length && last ? `,"continue":${JSON.stringify(tokenOf(last.spec.name))}` : "";
    return `{"rollouts":[${page}]${next}}`;
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
