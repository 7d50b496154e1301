// `modelroll finalize NAME [--wait]`: ask for finalize, then (waiting) follow the verification until the
// rollout is Finalized (and archived: its GET then answers 404 naming the archive) or back to Succeeded.
import { call, callOk, CliError, ok } from "./client.ts";
import { arr, document, field, num, str } from "./format.ts";
import type { Context } from "./context.ts";
import { EXIT, rolloutPath, type Command } from "./plan.ts";
import { buildPicture } from "./picture.ts";
import { summaryLine } from "./render-rollout.ts";

const POLL_MS = 1000;

export async function runFinalize(command: Extract<Command, { kind: "finalize" }>, ctx: Context): Promise<number> {
  const { io, globals, paint } = ctx;
  const answer = await callOk(ctx.http, command.request);
  const first = answer.json;
  const phase = str(field(first, "phase"));
  if (!command.wait || phase !== "Finalizing") {
    io.stdout(document(first, globals.output) ?? summaryLine(buildPicture(first, null, io.now()), paint, "finalize"));
    if (command.wait && phase !== "Finalized") return EXIT.failed;
    return EXIT.ok;
  }
  if (globals.output === "table") io.stdout(summaryLine(buildPicture(first, null, io.now()), paint, "finalize"));
  const until = io.now() + command.timeoutMs;
  let last: unknown = first;
  while (io.now() < until) {
    try {
      await io.sleep(POLL_MS, io.signal);
    } catch {
      throw new CliError("interrupted (the finalize goes on in the controller)", EXIT.usage);
    }
    const now = await call(ctx.http, { method: "GET", path: rolloutPath(command.name) });
    if (now.status === 404) {
      // Finalized rollouts leave the live set for the archive: the newest archived entry by this name says how it ended.
      const archived = await call(ctx.http, { method: "GET", path: `/v1/rollouts?archived=true&name=${encodeURIComponent(command.name)}` });
      const entry = arr(field(archived.json, "rollouts")).at(-1);
      const phase = str(field(entry, "phase"));
      const where = num(field(entry, "archived", "id")) !== null ? `archived as ${num(field(entry, "archived", "id"))}` : "no longer live";
      if (phase !== "Finalized") {
        io.stderr(`modelroll: rollout ${command.name}: left the live set ${phase ? `as ${phase}` : "(deleted)"} while finalizing\n`);
        return EXIT.failed;
      }
      io.stdout(
        document({ name: command.name, phase, archived: where }, globals.output) ?? `rollout ${command.name}: ${paint.green("★ Finalized")} (${where})\n`,
      );
      return EXIT.ok;
    }
    last = ok(ctx.http, now).json;
    const p = str(field(last, "phase"));
    if (p === "Finalizing") continue;
    io.stdout(document(last, globals.output) ?? summaryLine(buildPicture(last, null, io.now()), paint));
    if (p === "Finalized") return EXIT.ok;
    const why = str(field(last, "pending")) ?? "the verification did not pass";
    io.stderr(`modelroll: rollout ${command.name}: not finalized: ${why}\n`);
    return EXIT.failed;
  }
  io.stderr(`modelroll: rollout ${command.name}: still Finalizing after ${Math.round(command.timeoutMs / 1000)} s\n`);
  return EXIT.timeout;
}
