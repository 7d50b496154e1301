/**
 * The dashboard's files, built at install time (scripts/build-dashboard.mjs) into build/dashboard: the page
 * at / and /rollouts/{name} (one HTML file; the script picks the page from the path), its script and styles
 * under /assets/. Open to anyone, like /healthz: the files hold no data, and the page asks for a token
 * before it reads the API. Read from disk on first use and kept; a missing build is a 503 that says how to
 * build it.
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import { repoRoot } from "../paths.ts";

const DASHBOARD_DIR = join(repoRoot, "build", "dashboard");

const HTML_TYPE = "text/html; charset=utf-8";
const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".html": HTML_TYPE,
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".map": "application/json; charset=utf-8",
};

interface Asset {
  body: Buffer;
  type: string;
}

interface DashboardStaticOptions {
  /** Where the built files are; default build/dashboard. */
  dir?: string;
}

export const dashboardStatic: FastifyPluginAsync<DashboardStaticOptions> = async (app, options) => {
  const dir = options.dir ?? DASHBOARD_DIR;
  let assets: Map<string, Asset> | null = null;

  const load = async (): Promise<Map<string, Asset> | null> => {
    if (assets) return assets;
    try {
      const files = new Map<string, Asset>();
      files.set("index.html", { body: await readFile(join(dir, "index.html")), type: HTML_TYPE });
      for (const name of await readdir(join(dir, "assets"))) {
        const ext = name.slice(name.lastIndexOf("."));
        const type = TYPES[ext];
        if (type) files.set(`assets/${name}`, { body: await readFile(join(dir, "assets", name)), type });
      }
      assets = files;
      return files;
    } catch {
      return null;
    }
  };

  const send = async (reply: FastifyReply, key: string) => {
    const files = await load();
    if (!files) {
      return reply
        .code(503)
        .type("text/plain; charset=utf-8")
        .send(`dashboard: not built (${dir} is missing); run 'npm install' or 'npm run build:dashboard'\n`);
    }
    const asset = files.get(key);
    if (!asset) return reply.code(404).send({ error: `dashboard: no file ${key}` });
    // Asset names carry a content hash: cache them; the page itself is always checked again.
    const cache = key === "index.html" ? "no-cache" : "public, max-age=31536000, immutable";
    return reply.type(asset.type).header("cache-control", cache).send(asset.body);
  };

  const page = { config: { access: "open" as const }, schema: { hide: true } };
  app.get("/", page, async (_request, reply) => send(reply, "index.html"));
  app.get("/rollouts/:name", page, async (_request, reply) => send(reply, "index.html"));
  app.get("/assets/:file", page, async (request, reply) => send(reply, `assets/${(request.params as { file: string }).file}`));
};
