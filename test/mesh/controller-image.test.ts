// The controller's image (deploy/istio/controller.Dockerfile) as it will run, without a container runtime: its
// steps carried out into directories (dockerfile.ts), then the final stage's ENTRYPOINT started from the final
// stage's files only, as the Deployment runs it. Two steps need the npm registry and are replaced: `npm ci` by a
// copy of the node_modules `npm install` made from the same package-lock.json (checked, package by package), and
// `npm rebuild better-sqlite3` by that copy's addon, already built for this machine's Node 20. Everything else
// runs as written: the TypeScript build, the dashboard's esbuild bundle, `npm prune --omit=dev`, every COPY.
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { cp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { freePorts, logTail, startServer, type ServerProcess } from "../kube/process.ts";
import { type DockerfileRun, runDockerfile } from "./dockerfile.ts";

const DOCKERFILE = join(repoRoot, "deploy", "istio", "controller.Dockerfile");
let out: string;
let image: DockerfileRun;
let app: string;

/** Every package the lock file installs on this platform is in the installed tree, at the locked version. */
function checkSameLock(lockFile: string, nodeModules: string): void {
  const lock = JSON.parse(readFileSync(lockFile, "utf8")).packages as Record<string, { version?: string; optional?: boolean }>;
  const installed = JSON.parse(readFileSync(join(nodeModules, ".package-lock.json"), "utf8")).packages as Record<string, { version?: string }>;
  const differ = Object.entries(lock)
    .filter(([path, meta]) => path !== "" && !meta.optional && installed[path]?.version !== meta.version)
    .map(([path, meta]) => `${path}: locked ${meta.version}, installed ${installed[path]?.version ?? "none"}`);
  if (differ.length > 0) throw new Error(`node_modules was not installed from this package-lock.json (run npm install):\n${differ.slice(0, 10).join("\n")}`);
}

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), "modelroll-image-"));
  image = await runDockerfile(DOCKERFILE, {
    context: repoRoot,
    out,
    env: { npm_config_offline: "true", npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" },
    substitutions: [
      {
        command: "npm ci --ignore-scripts",
        run: async (cwd) => {
          const installed = realpathSync(join(repoRoot, "node_modules"));
          checkSameLock(join(cwd, "package-lock.json"), installed);
          await cp(installed, join(cwd, "node_modules"), { recursive: true, verbatimSymlinks: true });
        },
      },
      {
        command: "npm rebuild better-sqlite3",
        run: (cwd) => {
          if (!existsSync(join(cwd, "node_modules", "better-sqlite3", "build", "Release", "better_sqlite3.node")))
            throw new Error("better-sqlite3's addon is not built");
        },
      },
    ],
  });
  app = join(image.root, image.workdir);
}, 600_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

const walk = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [join(dir, e.name), ...walk(join(dir, e.name))] : [join(dir, e.name)]));

describe("the controller image's final stage, built from deploy/istio/controller.Dockerfile", () => {
  it("holds the dependencies, the compiled controller and the built dashboard, and no sources or dev dependencies", () => {
    expect(image.workdir).toBe("/app");
    expect(image.user).toBe("10001:10001");
    expect(readdirSync(app).sort()).toEqual(["build", "controller", "node_modules", "package.json"]);
    expect(readdirSync(join(app, "controller"))).toEqual(["dist"]);
    expect(existsSync(join(app, "controller", "dist", "cli", "controller.js"))).toBe(true);
    const dashboard = readdirSync(join(app, "build", "dashboard"));
    expect(dashboard).toContain("index.html");
    expect(readdirSync(join(app, "build", "dashboard", "assets")).some((f) => /^app-.*\.js$/.test(f))).toBe(true);
    for (const dev of ["typescript", "vitest", "@biomejs/biome", "playwright-core", "assemblyscript"])
      expect(existsSync(join(app, "node_modules", dev)), dev).toBe(false);
    for (const dep of ["fastify", "better-sqlite3", "preact"]) expect(existsSync(join(app, "node_modules", dep)), dep).toBe(true);
  });

  it("is readable by the unprivileged user the pod runs as (runAsUser 10001, read-only root)", () => {
    const closed = walk(image.root).filter((p) => {
      const mode = statSync(p).mode;
      return statSync(p).isDirectory() ? (mode & 0o005) !== 0o005 : (mode & 0o004) === 0;
    });
    expect(closed.slice(0, 5)).toEqual([]);
  });

  it("runs its ENTRYPOINT from those files alone: / serves the dashboard, with its assets, and the API answers", async () => {
    expect(image.entrypoint.slice(0, 2)).toEqual(["node", "--enable-source-maps"]);
    const [port] = await freePorts(1);
    const state = mkdtempSync(join(tmpdir(), "modelroll-image-state-"));
    let controller: ServerProcess | null = null;
    try {
      controller = startServer(
        "controller",
        process.execPath,
        [...image.entrypoint.slice(1), "--listen", `127.0.0.1:${port}`, "--state", join(state, "state.db"), "--envoy-admin", "http://127.0.0.1:1"],
        // Only PATH and HOME, as in the container: nothing from this shell's environment, cwd the WORKDIR.
        { cwd: app, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: state } },
      );
      const url = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 60_000;
      let health = 0;
      while (health !== 200) {
        if (controller.exited() !== null) throw new Error(`the controller exited (${controller.exited()}):\n${logTail(controller)}`);
        if (Date.now() > deadline) throw new Error(`the controller did not answer /healthz within 60 s:\n${logTail(controller)}`);
        health = await fetch(`${url}/healthz`).then(
          (r) => r.status,
          () => 0,
        );
        if (health !== 200) await new Promise((r) => setTimeout(r, 200));
      }
      const index = await fetch(`${url}/`, { headers: { accept: "text/html" } });
      expect(index.status).toBe(200);
      expect(index.headers.get("content-type")).toMatch(/^text\/html/);
      const html = await index.text();
      const script = /src="\.?\/?(assets\/app-[^"]+\.js)"/.exec(html)?.[1];
      expect(script, html.slice(0, 500)).toBeDefined();
      const js = await fetch(`${url}/${script}`);
      expect(js.status).toBe(200);
      expect(js.headers.get("content-type")).toMatch(/javascript/);
      expect((await js.text()).length).toBeGreaterThan(10_000);
      const list = await fetch(`${url}/v1/rollouts`);
      expect(list.status).toBe(200);
      // Nothing it needs is missing from the layout (a file read outside it would fail with ENOENT).
      expect(controller.log()).not.toMatch(/ENOENT/);
    } finally {
      await controller?.stop();
      rmSync(state, { recursive: true, force: true });
    }
  });
});
