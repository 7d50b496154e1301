// What one `modelroll` invocation will do, as data: the parsed command and the HTTP requests it makes.
// Pure: program.ts builds a Plan from argv and the environment; run.ts carries it out.

const OUTPUTS = ["table", "json", "yaml"] as const;
export type Output = (typeof OUTPUTS)[number] | "name";

export const DEFAULT_SERVER = "http://127.0.0.1:8080";

/** Exit codes, the same for every command (documented in `modelroll --help` and the README). */
export const EXIT = {
  ok: 0,
  /** The server refused the request, lint found errors, or the rollout ended RolledBack/Failed (status). */
  failed: 1,
  /** status: the rollout had not ended when --timeout passed. */
  timeout: 2,
  /** Bad arguments, an unreadable file, the controller unreachable or refusing the token. */
  usage: 3,
} as const;

export interface Globals {
  /** Base URL without a trailing slash. */
  server: string;
  token: string | null;
  color: boolean;
  output: Output;
}

export interface ApiRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** What `modelroll traffic` sends (traffic.ts sends it). */
export interface TrafficOptions {
  /** The data plane's base URL (Envoy's listener), e.g. http://127.0.0.1:10000. */
  url: string;
  path: string;
  /** Requests per second. */
  rate: number;
  /** Distinct values of the user header. */
  users: number;
  /** How long; null: until the signal aborts. */
  durationMs: number | null;
  method: "POST" | "GET";
  body: string;
  userHeader: string;
  variantHeader: string;
  headers: Record<string, string>;
  maxInFlight: number;
  /** Per request. */
  timeoutMs: number;
}

/** Commands that are one request whose answer is the rollout's view (or nothing, for delete). */
export type ActionName =
  | "weight"
  | "shadow"
  | "promote"
  | "pause"
  | "resume"
  | "abort"
  | "undo"
  | "fail"
  | "review"
  | "delete"
  | "accept-upstreams"
  | "finalize";

export type Command =
  | { kind: "list" }
  | { kind: "get"; name: string; watch: boolean }
  | { kind: "create"; file: string }
  | { kind: "apply"; file: string; ifRevision: number | null }
  | { kind: "lint"; file: string }
  | { kind: "action"; action: ActionName; name: string; request: ApiRequest }
  | { kind: "promote-full"; name: string; reason: string | null; ifRevision: number | null }
  | { kind: "measure"; name: string; request: ApiRequest }
  | { kind: "status"; name: string; timeoutMs: number }
  | { kind: "history"; name: string }
  | { kind: "report"; name: string; format: "markdown" | "json" }
  | { kind: "stats"; name: string }
  | { kind: "completion"; shell: "bash" | "zsh"; script: string }
  /** POST finalize; with `wait`, then follow Finalizing until Finalized (archived) or back to Succeeded. */
  | { kind: "finalize"; name: string; request: ApiRequest; wait: boolean; timeoutMs: number }
  /** Requests through the data plane; the body from `bodyFile` when given (read by run.ts). */
  | { kind: "traffic"; options: TrafficOptions; bodyFile: string | null };

export interface Plan {
  globals: Globals;
  command: Command;
}

export type PlanResult =
  | { plan: Plan }
  /** --help, --version: text for stdout, exit 0. */
  | { text: string }
  /** A usage error: one message for stderr, exit 3. */
  | { usage: string };

/** A path segment as sent: rollout names are DNS labels, but whatever was typed must not change the path. */
export function rolloutPath(name: string, suffix = ""): string {
  return `/v1/rollouts/${encodeURIComponent(name)}${suffix}`;
}

export function ifMatch(revision: number | null): Record<string, string> {
  return revision === null ? {} : { "if-match": `"${revision}"` };
}

/** The request behind each one-request command; reasons go in the body where the API takes one. */
export function actionRequest(
  action: ActionName,
  name: string,
  options: { percent?: number; reason?: string | null; approved?: boolean; verify?: boolean; ifRevision: number | null },
): ApiRequest {
  const headers = ifMatch(options.ifRevision);
  const reasonBody = options.reason ? { reason: options.reason } : undefined;
  switch (action) {
    case "weight":
      return { method: "PUT", path: rolloutPath(name, "/weight"), body: { canaryPercent: options.percent }, headers };
    case "shadow":
      return { method: "PUT", path: rolloutPath(name, "/shadow"), body: { percent: options.percent }, headers };
    case "abort":
      return { method: "POST", path: rolloutPath(name, "/rollback"), body: reasonBody, headers };
    case "review":
      return { method: "POST", path: rolloutPath(name, "/review"), body: { approved: options.approved, ...(reasonBody ?? {}) }, headers };
    case "delete":
      return { method: "DELETE", path: rolloutPath(name), headers };
    case "finalize":
      return {
        method: "POST",
        path: rolloutPath(name, "/finalize"),
        body: { ...(reasonBody ?? {}), ...(options.verify === false ? { verify: false } : {}) },
        headers,
      };
    default:
      return { method: "POST", path: rolloutPath(name, `/${action}`), body: reasonBody, headers };
  }
}

/** "30m", "90s", "1h30m", "500ms", or plain seconds; null when it is none of those. */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const match = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(trimmed);
  if (!match || trimmed === "") return null;
  const [h = 0, m = 0, s = 0, ms = 0] = match.slice(1).map((v) => Number(v ?? 0));
  return ((h * 60 + m) * 60 + s) * 1000 + ms;
}

/** A percent as the API takes it: 0 to 100, at most two decimals. */
export function parsePercent(text: string): number | null {
  if (!/^\d+(\.\d{1,2})?$/.test(text.trim())) return null;
  const value = Number(text);
  return value >= 0 && value <= 100 ? value : null;
}

export function parseRevision(text: string | undefined): number | null | "invalid" {
  if (text === undefined) return null;
  return /^[1-9]\d{0,15}$/.test(text.trim()) ? Number(text) : "invalid";
}
