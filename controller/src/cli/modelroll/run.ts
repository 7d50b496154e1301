// Carries out a Plan: the requests, then the text. Every effect goes through the CliIO the entry point gives
// (so tests can run the CLI in-process against a real controller); returns the exit code.
import { call, callOk, CliError, isMissingRoute, ok } from "./client.ts";
import { arr, document, field, serialize, str } from "./format.ts";
import { buildPicture, isActivePhase, type Picture } from "./picture.ts";
import { ifMatch, EXIT, rolloutPath, type Command } from "./plan.ts";
import { planCommand } from "./program.ts";
import { renderDeleted, renderHistory, renderLint, renderMeasured, renderStats, type LintResult } from "./render-misc.ts";
import { renderList, summaryLine } from "./render-rollout.ts";
import { parseSpecFile, specName } from "./spec-file.ts";
import { runGet, runStatus } from "./watch.ts";
import { runFinalize } from "./finalize.ts";
import { progressLine, renderTraffic, runTraffic } from "./traffic.ts";
import { contextOf, fetchReport, type CliIO, type Context } from "./context.ts";

export type { CliIO };

export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const planned = planCommand(argv, { env: io.env, isTTY: io.isTTY, version: io.version });
  if ("text" in planned) {
    io.stdout(planned.text);
    return EXIT.ok;
  }
  if ("usage" in planned) {
    io.stderr(`modelroll: ${planned.usage}\n`);
    return EXIT.usage;
  }
  const ctx = contextOf(planned.plan, io);
  try {
    return await execute(planned.plan.command, ctx);
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr(`modelroll: ${error.message}\n`);
      return error.exitCode;
    }
    // A bug, not a user error: still one line, with where to look.
    io.stderr(`modelroll: internal error: ${(error as Error).message} (please report it)\n`);
    return EXIT.usage;
  }
}

async function execute(command: Command, ctx: Context): Promise<number> {
  const { io, globals } = ctx;
  const print = (data: unknown, table: () => string) => io.stdout(document(data, globals.output) ?? table());
  switch (command.kind) {
    case "completion":
      io.stdout(command.script);
      return EXIT.ok;
    case "lint":
      return lint(command.file, ctx);
    case "list":
      return list(ctx);
    case "get":
      return runGet(command.name, command.watch, ctx);
    case "status":
      return runStatus(command.name, command.timeoutMs, ctx);
    case "create": {
      const spec = await readSpec(command.file, ctx);
      const answer = await callOk(ctx.http, { method: "POST", path: "/v1/rollouts", body: spec });
      print(answer.json, () => summaryLine(picture(answer.json, ctx), ctx.paint, "created"));
      return EXIT.ok;
    }
    case "apply":
      return apply(command.file, command.ifRevision, ctx);
    case "action": {
      const answer = await callOk(ctx.http, command.request);
      if (command.action === "delete") print({ name: command.name, deleted: true }, () => renderDeleted(command.name));
      else print(answer.json, () => summaryLine(picture(answer.json, ctx), ctx.paint));
      return EXIT.ok;
    }
    case "promote-full":
      return promoteFull(command.name, command.reason, command.ifRevision, ctx);
    case "measure": {
      const answer = await callOk(ctx.http, command.request);
      print(answer.json, () => renderMeasured(answer.json));
      return EXIT.ok;
    }
    case "history": {
      const answer = await callOk(ctx.http, { method: "GET", path: rolloutPath(command.name, "/history") });
      print(answer.json, () => renderHistory(answer.json, ctx.paint));
      return EXIT.ok;
    }
    case "report": {
      const markdown = command.format === "markdown";
      const answer = await callOk(
        ctx.http,
        { method: "GET", path: rolloutPath(command.name, `/report?format=${command.format}`) },
        markdown ? "text/markdown" : "application/json",
      );
      if (markdown) io.stdout(answer.text.endsWith("\n") ? answer.text : `${answer.text}\n`);
      else io.stdout(serialize(answer.json, globals.output === "yaml" ? "yaml" : "json"));
      return EXIT.ok;
    }
    case "finalize":
      return runFinalize(command, ctx);
    case "traffic":
      return traffic(command, ctx);
    case "stats": {
      const answer = await callOk(ctx.http, { method: "GET", path: rolloutPath(command.name, "/stats") });
      print(answer.json, () => renderStats(answer.json, ctx.paint));
      return EXIT.ok;
    }
  }
}

/** `modelroll traffic`: progress lines while it runs (table output), what each variant answered at the end. */
async function traffic(command: Extract<Command, { kind: "traffic" }>, ctx: Context): Promise<number> {
  let options = command.options;
  if (command.bodyFile !== null) {
    try {
      options = { ...options, body: await ctx.io.readFile(command.bodyFile) };
    } catch (error) {
      throw new CliError(`--body @${command.bodyFile}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, EXIT.usage);
    }
  }
  const table = ctx.globals.output === "table";
  if (table) {
    const how = options.durationMs === null ? "until Ctrl-C" : `for ${Math.round(options.durationMs / 1000)} s`;
    ctx.io.stdout(`sending ${options.rate} requests/s to ${options.url}${options.path} from ${options.users} users (${options.userHeader}) ${how}\n`);
  }
  const summary = await runTraffic(options, {
    fetch: ctx.io.fetch,
    now: ctx.io.now,
    sleep: ctx.io.sleep,
    signal: ctx.io.signal,
    ...(table ? { onProgress: (s) => ctx.io.stdout(progressLine(s)) } : {}),
  });
  ctx.io.stdout(document(summary, ctx.globals.output) ?? renderTraffic(summary, options, ctx.paint));
  return summary.answered > 0 ? EXIT.ok : EXIT.failed;
}

function picture(view: unknown, ctx: Context): Picture {
  return buildPicture(view, null, ctx.io.now());
}

/** The spec in a file (or stdin for "-"); unreadable or unparsable is a usage error (exit 3). */
async function readSpec(file: string, ctx: Context): Promise<unknown> {
  const label = file === "-" ? "stdin" : file;
  let text: string;
  try {
    text = file === "-" ? await ctx.io.readStdin() : await ctx.io.readFile(file);
  } catch (error) {
    throw new CliError(`${label}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, EXIT.usage);
  }
  const parsed = parseSpecFile(label, text);
  if (!parsed.ok) throw new CliError(parsed.error, EXIT.usage);
  return parsed.spec;
}

async function lint(file: string, ctx: Context): Promise<number> {
  const spec = await readSpec(file, ctx);
  // Loaded here, not at start: the controller's validation (store, engine, ajv) is only needed by lint.
  const { validateRolloutSpec } = await import("../../rollouts/validate.ts");
  const { enginePart } = await import("../../rollouts/schemas.ts");
  const { parseRolloutEngine } = await import("../../rollouts/accept.ts");
  const { specWarnings } = await import("../../engine/index.ts");
  const checked = validateRolloutSpec(spec);
  const parsed = checked.ok ? parseRolloutEngine(spec as Record<string, unknown>, undefined) : null;
  const result: LintResult = {
    file: file === "-" ? "stdin" : file,
    ok: checked.ok,
    rollout: specName(spec),
    // Any engine key makes a rollout managed, as the controller decides it.
    managed: checked.ok && enginePart(spec as Record<string, unknown>) !== null,
    errors: checked.ok ? [] : checked.errors,
    warnings: parsed?.ok ? specWarnings(parsed.spec) : [],
  };
  ctx.io.stdout(
    document({ file: result.file, valid: result.ok, rollout: result.rollout, errors: result.errors, warnings: result.warnings }, ctx.globals.output) ??
      renderLint(result, ctx.paint),
  );
  return result.ok ? EXIT.ok : EXIT.failed;
}

async function list(ctx: Context): Promise<number> {
  const answer = await callOk(ctx.http, { method: "GET", path: "/v1/rollouts" });
  const views = arr(field(answer.json, "rollouts"));
  if (ctx.globals.output === "name") {
    ctx.io.stdout(views.map((v) => `${str(field(v, "name"))}\n`).join(""));
    return EXIT.ok;
  }
  const doc = document(answer.json, ctx.globals.output);
  if (doc !== null) {
    ctx.io.stdout(doc);
    return EXIT.ok;
  }
  // Controllers that do not put the owner in the view: the report has it (one read per managed rollout).
  const reports = await mapLimited(views, 8, async (view) => {
    if (field(view, "managed") !== true || str(field(view, "spec", "owner")) || str(field(view, "owner"))) return null;
    return fetchReport(str(field(view, "name")) ?? "", ctx);
  });
  const now = ctx.io.now();
  ctx.io.stdout(
    renderList(
      views.map((v, i) => buildPicture(v, reports[i], now)),
      ctx.paint,
      now,
    ),
  );
  return EXIT.ok;
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  // One iterator shared by the workers: each next() hands out the next item exactly once.
  const queue = items.entries();
  const worker = async () => {
    for (const [i, item] of queue) out[i] = await fn(item);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function apply(file: string, ifRevision: number | null, ctx: Context): Promise<number> {
  const spec = await readSpec(file, ctx);
  const name = specName(spec);
  const existing = name === null ? null : await call(ctx.http, { method: "GET", path: rolloutPath(name) });
  if (existing !== null && existing.status !== 404) ok(ctx.http, existing);
  const print = (verb: string, view: unknown) => ctx.io.stdout(document(view, ctx.globals.output) ?? summaryLine(picture(view, ctx), ctx.paint, verb));
  if (name === null || existing === null || existing.status === 404) {
    const created = await callOk(ctx.http, { method: "POST", path: "/v1/rollouts", body: spec });
    print("created", created.json);
    return EXIT.ok;
  }
  const updated = await call(ctx.http, { method: "PUT", path: rolloutPath(name), body: spec, headers: ifMatch(ifRevision) });
  if (isMissingRoute(updated)) {
    throw new CliError(
      `rollout ${name}: exists, and this controller does not support updates (PUT ${rolloutPath(name)} answered ${updated.status}); delete and create it, or change it with weight/promote/pause/abort`,
      EXIT.failed,
    );
  }
  print("updated", ok(ctx.http, updated).json);
  return EXIT.ok;
}

/** Promote, stage after stage, until the rollout is past its last stage (or waits for its review). */
async function promoteFull(name: string, reason: string | null, ifRevision: number | null, ctx: Context): Promise<number> {
  let headers = ifMatch(ifRevision);
  const views: unknown[] = [];
  for (let step = 0; step < 64; step++) {
    const answer = await callOk(ctx.http, { method: "POST", path: rolloutPath(name, "/promote"), body: reason ? { reason } : undefined, headers });
    // Only the first step is tied to what the operator saw; later ones follow the rollout wherever it is.
    headers = {};
    views.push(answer.json);
    if (ctx.globals.output === "table") ctx.io.stdout(summaryLine(picture(answer.json, ctx), ctx.paint));
    const phase = str(field(answer.json, "phase"));
    if (!isActivePhase(phase) || phase === "AwaitingReview" || phase === "Paused") break;
  }
  const listed = document(views, ctx.globals.output);
  if (listed !== null) ctx.io.stdout(listed);
  return EXIT.ok;
}
