// `get [--watch]` and `status`: a rollout's view, then (watching or waiting) every change from the
// controller's live stream. A controller without the stream is polled every 2 s instead, and says so.
import { callOk, CliError } from "./client.ts";
import { document, duration, field, str } from "./format.ts";
import { buildPicture, isSuccessPhase, isTerminalPhase } from "./picture.ts";
import { EXIT, rolloutPath } from "./plan.ts";
import { statusKey, statusLine } from "./render-misc.ts";
import { renderRollout } from "./render-rollout.ts";
import { fetchReport, type Context } from "./context.ts";
import { followStream } from "./sse-client.ts";

const POLL_MS = 2000;
const CLEAR_SCREEN = "\x1b[H\x1b[2J";

type Seen = "stop" | undefined;

/**
 * Calls onView with each new state of the rollout until it returns "stop", the signal aborts, or the rollout
 * is deleted (onDeleted). Returns how it ended.
 */
async function follow(
  name: string,
  ctx: Context,
  signal: AbortSignal,
  onView: (view: unknown) => Promise<Seen> | Seen,
  onDeleted: () => void,
): Promise<"stopped" | "aborted"> {
  const http = { ...ctx.http, signal };
  const result = await followStream({
    http,
    path: rolloutPath(name, "/events"),
    sleep: ctx.io.sleep,
    onReconnect: (reason) => ctx.io.stderr(`modelroll: live stream dropped (${reason}); reconnecting\n`),
    onEvent: async (message) => {
      if (message.event === "deleted") {
        onDeleted();
        return "stop";
      }
      if (message.event !== "rollout") return;
      return onView(JSON.parse(message.data));
    },
  });
  if (result !== "unsupported") return result;
  ctx.io.stderr(`modelroll: this controller has no live stream; polling every ${POLL_MS / 1000} s\n`);
  while (!signal.aborted) {
    try {
      await ctx.io.sleep(POLL_MS, signal);
    } catch {
      break;
    }
    let view: unknown;
    try {
      view = (await callOk(http, { method: "GET", path: rolloutPath(name) })).json;
    } catch (error) {
      if (signal.aborted) break;
      if (error instanceof CliError && /not found/.test(error.message)) {
        onDeleted();
        return "stopped";
      }
      throw error;
    }
    if ((await onView(view)) === "stop") return "stopped";
  }
  return "aborted";
}

async function rolloutText(view: unknown, ctx: Context): Promise<string> {
  const report = field(view, "managed") === true ? await fetchReport(str(field(view, "name")) ?? "", ctx) : null;
  return renderRollout(buildPicture(view, report, ctx.io.now()), ctx.paint);
}

export async function runGet(name: string, watch: boolean, ctx: Context): Promise<number> {
  const { io, globals } = ctx;
  const first = (await callOk(ctx.http, { method: "GET", path: rolloutPath(name) })).json;
  if (!watch) {
    io.stdout(document(first, globals.output) ?? (await rolloutText(first, ctx)));
    return EXIT.ok;
  }
  let last = "";
  const show = async (view: unknown): Promise<Seen> => {
    // Structured output while watching: one document per change (JSON lines, or YAML documents).
    const text =
      globals.output === "json" ? `${JSON.stringify(view)}\n` : globals.output === "yaml" ? `---\n${document(view, "yaml")}` : await rolloutText(view, ctx);
    if (text === last) return;
    const separator = last === "" || globals.output !== "table" ? "" : io.isTTY ? CLEAR_SCREEN : "\n";
    last = text;
    io.stdout((io.isTTY && globals.output === "table" ? CLEAR_SCREEN : separator) + text);
  };
  await show(first);
  await follow(name, ctx, io.signal, show, () => io.stdout(`rollout ${name}: deleted\n`));
  return EXIT.ok;
}

/** Waits for the rollout to end: 0 Succeeded, 1 RolledBack/Failed/deleted, 2 timeout, 3 usage or connection. */
export async function runStatus(name: string, timeoutMs: number, ctx: Context): Promise<number> {
  const { io, globals } = ctx;
  const json = globals.output === "json";
  let first: unknown;
  try {
    first = (await callOk(ctx.http, { method: "GET", path: rolloutPath(name) })).json;
  } catch (error) {
    // Before the wait, anything wrong (no such rollout, no controller) is the caller's setup, not the rollout's fault.
    if (error instanceof CliError) throw new CliError(error.message, EXIT.usage);
    throw error;
  }
  if (field(first, "managed") !== true) {
    throw new CliError(`rollout ${name}: manual (not managed by the engine), so it never ends by itself; nothing to wait for`, EXIT.usage);
  }
  let key: string | null = null;
  let current: unknown = first;
  let deleted = false;
  const see = (view: unknown): Seen => {
    current = view;
    const k = statusKey(view);
    if (k !== key) {
      key = k;
      const at = io.now();
      io.stdout(json ? `${JSON.stringify(statusRecord(view, at))}\n` : statusLine(view, at, ctx.paint));
    }
    return isTerminalPhase(str(field(view, "phase"))) ? "stop" : undefined;
  };

  if (see(first) !== "stop") {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    try {
      await follow(name, ctx, AbortSignal.any([io.signal, deadline.signal]), see, () => (deleted = true));
    } finally {
      clearTimeout(timer);
    }
  }

  const phase = str(field(current, "phase"));
  const stage = str(field(current, "stage", "name"));
  const end = (result: string, code: number, text: string) => {
    io.stdout(json ? `${JSON.stringify({ rollout: name, result, exitCode: code })}\n` : `${text}\n`);
    return code;
  };
  if (deleted) return end("deleted", EXIT.failed, `rollout ${name}: deleted before it ended`);
  if (isTerminalPhase(phase)) {
    const report = await fetchReport(name, ctx);
    const why = str(field(report, "why"));
    const pending = buildPicture(current, report, io.now()).pending;
    const detail = [why ? `: ${why}` : "", pending ? ` (pending: ${pending})` : ""].join("");
    return end(phase, isSuccessPhase(phase) ? EXIT.ok : EXIT.failed, `rollout ${name}: ${phase}${detail}`);
  }
  if (io.signal.aborted) return end("interrupted", 130, `rollout ${name}: interrupted while ${phase}`);
  return end("timeout", EXIT.timeout, `rollout ${name}: still ${phase}${stage ? ` at stage ${stage}` : ""} after ${duration(timeoutMs)}: timed out`);
}

function statusRecord(view: unknown, at: number) {
  return {
    at: new Date(at).toISOString(),
    rollout: str(field(view, "name")),
    phase: str(field(view, "phase")),
    stage: str(field(view, "stage", "name")),
    canaryPercent: field(view, "canaryPercent") ?? null,
    revision: field(view, "revision") ?? null,
  };
}
