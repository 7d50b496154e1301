// Server-Sent Events framing (the WHATWG event-stream format) and the ids the rollout stream uses. Pure.

/** One event: `event:` name, `id:` for Last-Event-ID, and `data:` lines (a newline in data becomes another data line). */
export function sseFrame(event: { event?: string; id?: string; data: string }): string {
  let frame = "";
  if (event.event !== undefined) frame += `event: ${oneLine(event.event)}\n`;
  if (event.id !== undefined) frame += `id: ${oneLine(event.id)}\n`;
  for (const line of event.data.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
  return `${frame}\n`;
}

/** A comment line: ignored by clients, keeps proxies and idle timeouts from closing a quiet stream. */
export function sseComment(text: string): string {
  return `: ${oneLine(text)}\n\n`;
}

/** How long a client waits before reconnecting after the stream drops. */
export function sseRetry(ms: number): string {
  return `retry: ${Math.max(0, Math.round(ms))}\n\n`;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]/g, " ");
}

/**
 * The id of one state of a rollout: its incarnation (creation time, so a re-created rollout of the same name
 * never repeats an id), its revision, and the time of the engine's latest evaluation. A client reconnecting
 * with Last-Event-ID equal to the current id has seen this state and is not sent it again. Opaque to clients.
 */
export function rolloutEventId(state: { createdAtMs: number; revision: number; evaluationAt: number | null }): string {
  return `${state.createdAtMs}.${state.revision}.${state.evaluationAt ?? 0}`;
}
