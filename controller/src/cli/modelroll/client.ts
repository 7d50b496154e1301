// The controller's REST API, as the CLI uses it: one request (token, JSON body, a bound on the wait) and
// every way it can fail turned into one line and an exit code. describeFailure is pure; call() does the I/O.
import { field, str } from "./format.ts";
import { EXIT, type ApiRequest } from "./plan.ts";

/** A failure to report: one line for stderr, and the exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface Http {
  server: string;
  token: string | null;
  fetch: typeof fetch;
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
  /** Per request; default 30 s. */
  timeoutMs?: number;
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body, or undefined when the body is not JSON. */
  json: unknown;
}

/** The one line for an answer the CLI cannot use, and its exit code. Pure. */
export function describeFailure(status: number, body: unknown, text: string, context: { server: string; hadToken: boolean }): CliError {
  const message = str(field(body, "error")) ?? (text.trim().slice(0, 300) || `HTTP ${status}`);
  if (status === 401) {
    return new CliError(
      context.hadToken
        ? "unauthorized: set MODELROLL_TOKEN to the controller's API token (it refused the one given)"
        : "unauthorized: set MODELROLL_TOKEN (the controller requires a bearer token)",
      EXIT.usage,
    );
  }
  if (status === 403) return new CliError(`forbidden: ${message}`, EXIT.usage);
  if (status >= 500) return new CliError(`controller error (${status}): ${message}`, EXIT.failed);
  // 400s carry the field paths in the message ("... invalid request body: /stages/1 must be above ..."); 409 and
  // 412 the reason the change was refused: the server's words are the clearest line there is.
  return new CliError(message, EXIT.failed);
}

/** The network-level reason a request failed: ECONNREFUSED, ENOTFOUND, a timeout. */
export function connectionReason(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  const code = str(field(cause, "code")) ?? str(field(error, "code"));
  if (code) return code;
  const name = str(field(error, "name"));
  if (name === "TimeoutError") return "no answer in time";
  return str(field(cause, "message")) ?? (error as Error).message ?? String(error);
}

function signalFor(http: Http): AbortSignal {
  const timeout = AbortSignal.timeout(http.timeoutMs ?? 30_000);
  return http.signal ? AbortSignal.any([http.signal, timeout]) : timeout;
}

export function headersFor(http: Http, extra: Record<string, string> = {}): Record<string, string> {
  return { ...(http.token ? { authorization: `Bearer ${http.token}` } : {}), ...extra };
}

/** Sends one request; unreachable is a CliError (exit 3), any HTTP answer is returned. */
export async function call(http: Http, request: ApiRequest, accept = "application/json"): Promise<Answer> {
  const hasBody = request.body !== undefined;
  let response: Response;
  try {
    response = await http.fetch(`${http.server}${request.path}`, {
      method: request.method,
      headers: headersFor(http, { accept, ...(hasBody ? { "content-type": "application/json" } : {}), ...request.headers }),
      body: hasBody ? JSON.stringify(request.body) : undefined,
      signal: signalFor(http),
    });
  } catch (error) {
    if (http.signal?.aborted) throw new CliError("interrupted", EXIT.usage);
    throw new CliError(`cannot reach the controller at ${http.server}: ${connectionReason(error)}`, EXIT.usage);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw new CliError(`cannot reach the controller at ${http.server}: the answer broke off (${connectionReason(error)})`, EXIT.usage);
  }
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Sends one request and returns the answer; any non-2xx answer is a CliError with the server's reason. */
export async function callOk(http: Http, request: ApiRequest, accept?: string): Promise<Answer> {
  return ok(http, await call(http, request, accept));
}

/** The answer if it is a 2xx, else the CliError that says why not. */
export function ok(http: Http, answer: Answer): Answer {
  if (answer.status >= 200 && answer.status < 300) return answer;
  throw describeFailure(answer.status, answer.json, answer.text, { server: http.server, hadToken: http.token !== null });
}

/** A 404 from the router itself (no such route on this controller), not "rollout x: not found". */
export function isMissingRoute(answer: Answer): boolean {
  return answer.status === 405 || (answer.status === 404 && /^route /.test(str(field(answer.json, "error")) ?? ""));
}
