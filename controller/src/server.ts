import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { buildApp, type BuildAppOptions } from "./app.ts";

interface StartControllerOptions extends BuildAppOptions {
  /** Default 127.0.0.1. Any other address needs an API token: an open API must not be reachable from elsewhere. */
  host?: string;
  /** 0 picks a free port; read it back from `url`. */
  port?: number;
}

/**
 * Held polls are answered (304) as soon as close starts; what is left after this is a client that keeps
 * an unused connection open (undici opens a spare one after an abort), which would hold close() until
 * its keep-alive ends.
 */
const CLOSE_GRACE_MS = 500;

export interface RunningController {
  /** Base URL, e.g. http://127.0.0.1:43117 (no trailing slash). */
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function startController(options: StartControllerOptions = {}): Promise<RunningController> {
  const { host = "127.0.0.1", port = 0, ...appOptions } = options;
  if (appOptions.apiToken === undefined && !isLoopback(host)) {
    throw new Error(`controller: refusing to listen on ${host} without an API token (set one, or listen on 127.0.0.1)`);
  }
  const app = await buildApp(appOptions);
  try {
    await app.listen({ host, port });
  } catch (error) {
    await app.close();
    throw new Error(`controller: cannot listen on ${host}:${port}: ${(error as Error).message}`, { cause: error });
  }
  const address = app.server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    app,
    close: async () => {
      const force = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearTimeout(force);
      }
    },
  };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
