// Runs a Dockerfile's steps into directories, without a container runtime, so a test can start what the image
// would run from the files the image would hold. Each stage gets a directory standing for its root; WORKDIR,
// COPY (from the build context or `--from` an earlier stage) and RUN (with sh, in the stage's working directory,
// on this machine's tools) are carried out as written, in order. What cannot run here is named by the caller:
// a `substitutions` entry replaces one command of a RUN's `a && b && c` chain (e.g. the package download, which
// needs the registry) with something equivalent it states. Anything else the runner does not know (ENV, ARG,
// ADD, globs, a shell chain with `;` or `||` around a substituted command) is an error, never skipped silently.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { cp } from "node:fs/promises";
import { basename, isAbsolute, join, resolve } from "node:path";

export interface Substitution {
  /** The whole command (one part of a RUN's && chain, trimmed) this replaces. */
  command: string;
  /** What it does instead, in the stage's working directory (an absolute path on this machine). */
  run(cwd: string): Promise<void> | void;
}

export interface DockerfileRun {
  /** The final stage's root directory. */
  root: string;
  /** Its WORKDIR, as a path inside the image ("/app"). */
  workdir: string;
  /** ENTRYPOINT in exec form. */
  entrypoint: string[];
  user: string | null;
  /** One line per step carried out ("COPY ...", "RUN ...", "SUBSTITUTED ..."). */
  log: string[];
}

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) line = `${line.slice(0, -1).trimEnd()} ${lines[++i].trim()}`;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`line ${start}: cannot read '${line}'`);
    out.push({ keyword: m[1].toUpperCase(), args: m[2], line: start });
  }
  return out;
}

const inside = (root: string, path: string) => join(root, path.replace(/^\/+/, ""));

/** COPY's rules: a directory's contents go into the destination; a file goes to it, or into it when it ends with "/". */
async function copy(sources: string[], dest: string, destIsDir: boolean): Promise<void> {
  for (const src of sources) {
    if (!existsSync(src)) throw new Error(`COPY: ${src} does not exist`);
    if (statSync(src).isDirectory()) {
      mkdirSync(dest, { recursive: true });
      await cp(src, dest, { recursive: true, verbatimSymlinks: true });
    } else {
      const target = destIsDir ? join(dest, basename(src)) : dest;
      mkdirSync(resolve(target, ".."), { recursive: true });
      await cp(src, target);
    }
  }
}

/** sh -c `command` in `cwd`, asynchronously (a build step may take minutes; the caller's event loop keeps going). */
function sh(command: string, cwd: string, env: Record<string, string> | undefined): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn("sh", ["-c", command], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (c: Buffer) => {
      output = (output + c.toString()).slice(-20_000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (e) => done({ code: null, output: `${output}${e.message}` }));
    child.on("close", (code) => done({ code, output }));
  });
}

export async function runDockerfile(
  file: string,
  opts: { context: string; out: string; substitutions?: Substitution[]; env?: Record<string, string> },
): Promise<DockerfileRun> {
  const stages: Array<{ name: string | null; root: string; workdir: string }> = [];
  let entrypoint: string[] = [];
  let user: string | null = null;
  const log: string[] = [];
  const used = new Set<string>();
  const where = (ins: Instruction) => `${basename(file)} line ${ins.line}`;
  for (const ins of instructions(readFileSync(file, "utf8"))) {
    const stage = stages.at(-1);
    if (ins.keyword === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`${where(ins)}: cannot read FROM ${ins.args}`);
      const root = join(opts.out, `stage-${stages.length}`);
      mkdirSync(root, { recursive: true });
      stages.push({ name: m[2] ?? null, root, workdir: "/" });
      entrypoint = [];
      user = null;
      continue;
    }
    if (!stage) throw new Error(`${where(ins)}: ${ins.keyword} before FROM`);
    const cwd = inside(stage.root, stage.workdir);
    switch (ins.keyword) {
      case "WORKDIR":
        stage.workdir = isAbsolute(ins.args) ? ins.args : join(stage.workdir, ins.args);
        mkdirSync(inside(stage.root, stage.workdir), { recursive: true });
        break;
      case "COPY": {
        const words = ins.args.split(/\s+/);
        let from = opts.context;
        while (words[0]?.startsWith("--")) {
          const flag = words.shift() as string;
          const m = /^--from=(\S+)$/.exec(flag);
          const source = m && stages.find((s) => s.name === m[1]);
          if (!source) throw new Error(`${where(ins)}: the runner knows only --from=<earlier stage>, got ${flag}`);
          from = source.root;
        }
        if (words.length < 2 || words.some((w) => /[*?[]/.test(w))) throw new Error(`${where(ins)}: COPY needs sources and a destination, without globs`);
        const destWord = words.pop() as string;
        const dest = isAbsolute(destWord) ? inside(stage.root, destWord) : join(cwd, destWord);
        await copy(
          words.map((w) => (from === opts.context ? join(from, w) : inside(from, w))),
          dest,
          destWord.endsWith("/") || words.length > 1,
        );
        log.push(`COPY ${ins.args}`);
        break;
      }
      case "RUN": {
        const parts = ins.args.split("&&").map((p) => p.trim());
        const substituted = parts.map((p) => opts.substitutions?.find((s) => s.command === p));
        if (substituted.some((s) => s) && parts.some((p) => /;|\|\|/.test(p)))
          throw new Error(`${where(ins)}: a substituted command inside a chain with ; or ||`);
        for (const [i, part] of parts.entries()) {
          const sub = substituted[i];
          if (sub) {
            await sub.run(cwd);
            used.add(sub.command);
            log.push(`SUBSTITUTED ${part}`);
            continue;
          }
          const r = await sh(part, cwd, opts.env);
          if (r.code !== 0) throw new Error(`${where(ins)}: RUN ${part} failed (exit ${r.code}):\n${r.output.trim().slice(-3000)}`);
          log.push(`RUN ${part}`);
        }
        break;
      }
      case "USER":
        user = ins.args;
        break;
      case "ENTRYPOINT":
        entrypoint = JSON.parse(ins.args);
        if (!Array.isArray(entrypoint)) throw new Error(`${where(ins)}: ENTRYPOINT must be the exec form (a JSON array)`);
        break;
      default:
        throw new Error(`${where(ins)}: the runner does not carry out ${ins.keyword}`);
    }
  }
  const unused = (opts.substitutions ?? []).filter((s) => !used.has(s.command));
  if (unused.length > 0) throw new Error(`${basename(file)}: no RUN has the substituted command ${unused.map((s) => `'${s.command}'`).join(", ")}`);
  const last = stages.at(-1);
  if (!last) throw new Error(`${basename(file)}: no FROM`);
  return { root: last.root, workdir: last.workdir, entrypoint, user, log };
}
