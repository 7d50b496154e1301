// What every command runs with: the IO the entry point gives, the plan's globals, HTTP settings, colors.
import { call, type Http } from "./client.ts";
import { paint, type Paint } from "./format.ts";
import { rolloutPath, type Globals, type Plan } from "./plan.ts";

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  readFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
  fetch: typeof fetch;
  now(): number;
  /** Resolves after ms, or rejects when the signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
  isTTY: boolean;
  env: Record<string, string | undefined>;
  version: string;
}

/** What the commands share: the plan's globals, the HTTP settings, colors and the IO. */
export interface Context {
  globals: Globals;
  http: Http;
  paint: Paint;
  io: CliIO;
}

export function contextOf(plan: Plan, io: CliIO): Context {
  return {
    globals: plan.globals,
    http: { server: plan.globals.server, token: plan.globals.token, fetch: io.fetch, signal: io.signal },
    paint: paint(plan.globals.color),
    io,
  };
}

/** The JSON report of a managed rollout, or null when it cannot be had (the picture then says less). */
export async function fetchReport(name: string, ctx: Context): Promise<unknown> {
  try {
    const answer = await call(ctx.http, { method: "GET", path: rolloutPath(name, "/report?format=json") });
    return answer.status === 200 ? (answer.json ?? null) : null;
  } catch {
    return null;
  }
}
