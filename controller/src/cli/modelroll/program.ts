// The `modelroll` command line, on commander: argv and the environment in, a Plan (or help text, or one
// usage error) out. Pure: commander writes into strings here and never exits; env is read from the argument.
import { Command as Commander, CommanderError, Option } from "commander";
import { completionScript, type CompletionTree } from "./completion.ts";
import { TRAFFIC_DEFAULTS, TRAFFIC_LIMITS } from "./traffic.ts";
import { trafficPlan } from "./traffic-plan.ts";
import {
  actionRequest,
  DEFAULT_SERVER,
  EXIT,
  parseDuration,
  parsePercent,
  parseRevision,
  rolloutPath,
  type ActionName,
  type Command,
  type Globals,
  type Output,
  type PlanResult,
} from "./plan.ts";

interface PlanInputs {
  env: Record<string, string | undefined>;
  /** stdout is a terminal (colors only then). */
  isTTY: boolean;
  version: string;
}

const EXIT_CODES_HELP = `
Exit codes:
  ${EXIT.ok}  done (status: the rollout Succeeded)
  ${EXIT.failed}  the controller refused the request, lint found errors, or (status) the rollout was RolledBack, Failed or deleted
  ${EXIT.timeout}  status: the rollout had not ended when --timeout passed
  ${EXIT.usage}  bad arguments, an unreadable file, or the controller unreachable or refusing the token`;

class UsageError extends Error {}

const output = (choices: readonly string[] = ["table", "json", "yaml"]) =>
  new Option("-o, --output <format>", "output format").choices(choices).default("table");
const ifRevisionOption = () => new Option("--if-revision <n>", "refuse the change (412) unless the rollout is still at this revision");
const reasonOption = () => new Option("--reason <text>", "why, for the decision record");

/** The commander program; `done` receives the parsed command from whichever action runs. */
function buildProgram(inputs: PlanInputs, sink: { out: string; err: string }, done: (command: Command, output: Output) => void): Commander {
  const program = new Commander("modelroll")
    .description("Drive modelroll rollouts from a terminal or a CI pipeline, through the controller's REST API.")
    .version(inputs.version, "-V, --version")
    .option("--server <url>", `controller base URL (env MODELROLL_SERVER, default ${DEFAULT_SERVER})`)
    .option("--token <token>", "API bearer token (env MODELROLL_TOKEN; prefer the env: argv is visible to other users)")
    .option("--no-color", "no colors (also when stdout is not a terminal, or NO_COLOR is set)")
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (text) => (sink.out += text),
      writeErr: (text) => (sink.err += text),
      outputError: (text, write) => write(text),
    })
    .exitOverride()
    .showSuggestionAfterError(true)
    .showHelpAfterError("(add --help for usage)")
    .addHelpText("after", EXIT_CODES_HELP);

  const name = (cmd: Commander) => cmd.argument("<name>", "rollout name");
  const opts = (cmd: Commander) => cmd.opts() as Record<string, string | boolean | undefined>;
  const revision = (cmd: Commander): number | null => {
    const parsed = parseRevision(opts(cmd).ifRevision as string | undefined);
    if (parsed === "invalid") throw new UsageError(`--if-revision: expected a revision number (the ETag without quotes), got '${opts(cmd).ifRevision}'`);
    return parsed;
  };
  const out = (cmd: Commander) => (opts(cmd).output as Output | undefined) ?? "table";
  const reason = (cmd: Commander) => (opts(cmd).reason as string | undefined) ?? null;

  program
    .command("list")
    .alias("ls")
    .description("all rollouts: name, phase, stage, set/observed weight, owner, age")
    .addOption(output(["table", "json", "yaml", "name"]))
    .action((_o, cmd: Commander) => done({ kind: "list" }, out(cmd)));

  name(program.command("get"))
    .description("one rollout: phase, stage, weights, owner, then its stages and the current stage's gates")
    .option("-w, --watch", "redraw on every change, from the controller's live stream")
    .addOption(output())
    .action((rollout: string, _o, cmd: Commander) => done({ kind: "get", name: rollout, watch: opts(cmd).watch === true }, out(cmd)));

  program
    .command("create")
    .description("create a rollout from a YAML or JSON spec")
    .requiredOption("-f, --filename <file>", "spec file, or - for stdin")
    .addOption(output())
    .action((_o, cmd: Commander) => done({ kind: "create", file: opts(cmd).filename as string }, out(cmd)));

  program
    .command("apply")
    .description("create the rollout, or update it if it exists and the controller supports updates")
    .requiredOption("-f, --filename <file>", "spec file, or - for stdin")
    .addOption(ifRevisionOption())
    .addOption(output())
    .action((_o, cmd: Commander) => done({ kind: "apply", file: opts(cmd).filename as string, ifRevision: revision(cmd) }, out(cmd)));

  name(program.command("delete"))
    .description("delete a rollout (its traffic goes to stable)")
    .addOption(ifRevisionOption())
    .addOption(output())
    .action((rollout: string, _o, cmd: Commander) => action("delete", rollout, cmd, {}));

  program
    .command("lint")
    .description("check a spec offline with the controller's own validation; every error with its JSON pointer")
    .requiredOption("-f, --filename <file>", "spec file, or - for stdin")
    .addOption(output())
    .addHelpText(
      "after",
      "\nChecks against the default release policy; a controller started with policy overrides may accept more.\nExit 0: valid; 1: errors; 3: the file cannot be read or parsed.",
    )
    .action((_o, cmd: Commander) => done({ kind: "lint", file: opts(cmd).filename as string }, out(cmd)));

  for (const [verb, what] of [
    ["weight", "set the canary's share of traffic (manual rollouts)"],
    ["shadow", "set the share mirrored to the shadow (manual rollouts)"],
  ] as const) {
    name(program.command(verb))
      .argument("<percent>", "0 to 100, at most two decimals")
      .description(what)
      .addOption(ifRevisionOption())
      .addOption(output())
      .action((rollout: string, percentText: string, _o, cmd: Commander) => {
        const percent = parsePercent(percentText);
        if (percent === null) throw new UsageError(`${verb}: expected a percent 0-100 with at most two decimals, got '${percentText}'`);
        action(verb, rollout, cmd, { percent });
      });
  }

  name(program.command("promote"))
    .description("move to the next stage now, whatever the gates say")
    .option("--full", "promote stage after stage to the end (the bake too); a high-impact rollout still waits for its review")
    .addOption(reasonOption())
    .addOption(ifRevisionOption())
    .addOption(output())
    .action((rollout: string, _o, cmd: Commander) => {
      if (opts(cmd).full === true) return done({ kind: "promote-full", name: rollout, reason: reason(cmd), ifRevision: revision(cmd) }, out(cmd));
      action("promote", rollout, cmd, { reason: reason(cmd) });
    });

  const simple: Array<[ActionName, string, string[]]> = [
    ["pause", "hold the current weights (a Failed gate still rolls back)", []],
    ["resume", "resume a paused rollout", []],
    ["abort", "roll back: all traffic to stable and mirroring off, at once", ["rollback"]],
    ["undo", "at 100% (bake or review): go back to the old stable, still warm", []],
    ["fail", "give up on the rollout: all traffic to stable", []],
    ["accept-upstreams", "a rollout held because its stable or canary upstream changed: take the new ones (a running release starts again)", []],
  ];
  for (const [verb, what, aliases] of simple) {
    name(program.command(verb))
      .aliases(aliases)
      .description(what)
      .addOption(reasonOption())
      .addOption(ifRevisionOption())
      .addOption(output())
      .action((rollout: string, _o, cmd: Commander) => action(verb, rollout, cmd, { reason: reason(cmd) }));
  }

  name(program.command("review"))
    .description("post the review a high-impact rollout waits for")
    .option("--approve", "approve: the rollout succeeds")
    .option("--reject", "reject: back to the old stable")
    .addOption(reasonOption())
    .addOption(ifRevisionOption())
    .addOption(output())
    .action((rollout: string, _o, cmd: Commander) => {
      const { approve, reject } = opts(cmd);
      if (approve === reject) throw new UsageError("review: give exactly one of --approve and --reject");
      action("review", rollout, cmd, { approved: approve === true, reason: reason(cmd) });
    });

  name(program.command("finalize"))
    .description("after Succeeded, once stable serves the new model: verify that, route all traffic to stable, archive the rollout")
    .option("--no-verify", "finalize at once, without checking what stable answers (the record says it was not verified)")
    .option("--wait", "follow the verification: exit 0 once Finalized, 1 if it went back to Succeeded")
    .option("--timeout <duration>", "with --wait: give up after this long", "10m")
    .addOption(reasonOption())
    .addOption(ifRevisionOption())
    .addOption(output())
    .addHelpText(
      "after",
      `\nWith models.versionField or versionHeader the rollout goes Finalizing until stable has answered the canary's version
finalize.verifyAnswers times in a row (then Finalized and archived), or finalize.deadlineSeconds pass (back to Succeeded).
Exit ${EXIT.ok}: finalized (or, without --wait, accepted); ${EXIT.failed}: refused, or (--wait) not verified; ${EXIT.timeout}: (--wait) still Finalizing at --timeout; ${EXIT.usage}: usage or connection error.`,
    )
    .action((rollout: string, _o, cmd: Commander) => {
      const o = opts(cmd);
      const timeoutMs = parseDuration(o.timeout as string);
      if (timeoutMs === null || timeoutMs <= 0) throw new UsageError(`--timeout: expected a duration like 10m, 90s or 1h30m, got '${o.timeout}'`);
      const request = actionRequest("finalize", rollout, { reason: reason(cmd), verify: o.verify !== false, ifRevision: revision(cmd) });
      done({ kind: "finalize", name: rollout, request, wait: o.wait === true, timeoutMs }, out(cmd));
    });

  program
    .command("traffic")
    .description("send steady requests through the data plane from many users; print what each variant answered")
    .option("--data-url <url>", `the data plane (Envoy's listener) (env MODELROLL_DATA_URL, default ${TRAFFIC_DEFAULTS.url})`)
    .option("--path <path>", "request path", TRAFFIC_DEFAULTS.path)
    .option("--rate <n>", `requests per second, 1 to ${TRAFFIC_LIMITS.maxRate}`, String(TRAFFIC_DEFAULTS.rate))
    .option("--users <n>", "distinct users (values of the user header)", String(TRAFFIC_DEFAULTS.users))
    .option("--duration <duration>", "how long: 30s, 5m, 1h (at most 24h)", "60s")
    .option("--until-stopped", "run until Ctrl-C instead of --duration (still at --rate)")
    .option("--body <json>", "request body (POST), or @FILE", TRAFFIC_DEFAULTS.body)
    .option("--get", "send GET requests without a body")
    .option("-H, --header <name:value...>", "more request headers, e.g. -H 'x-tenant-tier: pro'")
    .option("--user-header <name>", "the header carrying the user", TRAFFIC_DEFAULTS.userHeader)
    .option("--variant-header <name>", "the answer's header naming the variant", TRAFFIC_DEFAULTS.variantHeader)
    .addOption(output())
    .addHelpText(
      "after",
      `\nRequests start on schedule (open loop), at most ${TRAFFIC_DEFAULTS.maxInFlight} open at once; a request beyond that is counted as not sent.
Users come from a fixed pseudo-random sequence, so two runs send the same users in the same order.
Exit ${EXIT.ok}: ran to the end (or Ctrl-C) and got answers; ${EXIT.failed}: no request was answered; ${EXIT.usage}: usage error.`,
    )
    .action((_o, cmd: Commander) => {
      const planned = trafficPlan(opts(cmd), inputs.env);
      if ("error" in planned) throw new UsageError(planned.error);
      done({ kind: "traffic", ...planned }, out(cmd));
    });

  name(program.command("measure"))
    .description("post external measurements (review scores, KPIs) for one variant")
    .argument("<values...>", "numbers, in the order observed")
    .requiredOption("--metric <metric>", "the external metric a gate uses, e.g. human_review_score")
    .addOption(new Option("--variant <variant>", "whose values").choices(["stable", "canary", "shadow"]).makeOptionMandatory())
    .addOption(output())
    .action((rollout: string, valueTexts: string[], _o, cmd: Commander) => {
      const values = valueTexts.map((v) => {
        const n = Number(v);
        if (v.trim() === "" || !Number.isFinite(n)) throw new UsageError(`measure: '${v}' is not a number`);
        return n;
      });
      const body = { metric: opts(cmd).metric, variant: opts(cmd).variant, values };
      done({ kind: "measure", name: rollout, request: { method: "POST", path: rolloutPath(rollout, "/measurements"), body } }, out(cmd));
    });

  name(program.command("status"))
    .description("wait until the rollout ends, one line per phase change: a CI gate")
    .option("--timeout <duration>", "give up after this long: 30m, 90s, 1h30m", "30m")
    .addOption(output())
    .addHelpText(
      "after",
      `\nExit ${EXIT.ok}: Succeeded; ${EXIT.failed}: RolledBack, Failed or deleted; ${EXIT.timeout}: still running at --timeout; ${EXIT.usage}: usage or connection error.`,
    )
    .action((rollout: string, _o, cmd: Commander) => {
      const timeoutMs = parseDuration(opts(cmd).timeout as string);
      if (timeoutMs === null || timeoutMs <= 0) throw new UsageError(`--timeout: expected a duration like 30m, 90s or 1h30m, got '${opts(cmd).timeout}'`);
      done({ kind: "status", name: rollout, timeoutMs }, out(cmd));
    });

  name(program.command("history"))
    .description("every engine decision, oldest first")
    .addOption(output())
    .action((rollout: string, _o, cmd: Commander) => done({ kind: "history", name: rollout }, out(cmd)));

  name(program.command("report"))
    .description("the postmortem record: timeline, gate values per stage, segments, why it ended")
    .addOption(new Option("--format <format>", "markdown or json").choices(["markdown", "json"]).default("markdown"))
    .addOption(output())
    .action((rollout: string, _o, cmd: Commander) => {
      const o = out(cmd);
      done({ kind: "report", name: rollout, format: o !== "table" ? "json" : (opts(cmd).format as "markdown" | "json") }, o);
    });

  name(program.command("stats"))
    .description("per variant and segment: requests, responses, error rate, latency, as Envoy counted them")
    .addOption(output())
    .action((rollout: string, _o, cmd: Commander) => done({ kind: "stats", name: rollout }, out(cmd)));

  program
    .command("completion")
    .description("print a shell completion script: source <(modelroll completion bash), or zsh")
    .argument("[shell]", "bash or zsh", "bash")
    .action((shell: string) => {
      if (shell !== "bash" && shell !== "zsh") throw new UsageError(`completion: expected bash or zsh, got '${shell}'`);
      done({ kind: "completion", shell, script: completionScript(shell, completionTree(program)) }, "table");
    });

  function action(verb: ActionName, rollout: string, cmd: Commander, extra: { percent?: number; reason?: string | null; approved?: boolean }) {
    done({ kind: "action", action: verb, name: rollout, request: actionRequest(verb, rollout, { ...extra, ifRevision: revision(cmd) }) }, out(cmd));
  }
  return program;
}

/** The command tree as the completion scripts need it. */
function completionTree(program: Commander): CompletionTree {
  const flagsOf = (cmd: Commander) => cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined));
  const choicesOf = (cmd: Commander) =>
    Object.fromEntries(
      cmd.options
        .filter((o) => o.argChoices)
        .flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined).map((f) => [f, o.argChoices as string[]])),
    );
  return {
    program: program.name(),
    globalFlags: [...flagsOf(program), "--help"],
    commands: program.commands.map((cmd) => ({
      name: cmd.name(),
      aliases: cmd.aliases(),
      description: cmd.description(),
      flags: [...flagsOf(cmd), "--help"],
      choices: choicesOf(cmd),
      takesRollout: cmd.registeredArguments[0]?.name() === "name",
      fileFlags: cmd.options.some((o) => o.long === "--filename") ? ["-f", "--filename"] : [],
      positionalChoices: cmd.name() === "completion" ? ["bash", "zsh"] : [],
    })),
  };
}

export function planCommand(argv: readonly string[], inputs: PlanInputs): PlanResult {
  const sink = { out: "", err: "" };
  let parsed: { command: Command; output: Output } | null = null;
  const program = buildProgram(inputs, sink, (command, output) => (parsed = { command, output }));
  try {
    program.parse([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof UsageError) return { usage: error.message };
    if (error instanceof CommanderError) {
      // Help and version are asked for (exit 0); anything else is a usage error whose text commander wrote.
      if (error.exitCode === 0) return { text: sink.out };
      if (error.code === "commander.help") return { usage: `no command given\n${sink.err.trimEnd()}` };
      const text = (sink.err || error.message).trim();
      // One line: commander puts its suggestion and the help hint on lines of their own.
      return {
        usage: text
          .replace(/^error: /, "")
          .split("\n")
          .map((l) => l.trim())
          .filter(Boolean)
          .join(" "),
      };
    }
    throw error;
  }
  if (parsed === null) return { usage: "no command given (modelroll --help lists them)" };
  const { command, output } = parsed as { command: Command; output: Output };
  const global = program.opts() as { server?: string; token?: string; color: boolean };
  const server = (global.server ?? inputs.env.MODELROLL_SERVER ?? DEFAULT_SERVER).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/\s]+(\/\S*)?$/.test(server)) return { usage: `--server: expected a URL like ${DEFAULT_SERVER}, got '${server}'` };
  const token = global.token ?? inputs.env.MODELROLL_TOKEN ?? null;
  const noColorEnv = inputs.env.NO_COLOR !== undefined && inputs.env.NO_COLOR !== "";
  const globals: Globals = { server, token: token === "" ? null : token, color: global.color && inputs.isTTY && !noColorEnv, output };
  return { plan: { globals, command } };
}
