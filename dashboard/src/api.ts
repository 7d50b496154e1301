/**
 * The controller's API from the page: the bearer token (kept in this tab's sessionStorage only: never in a
 * URL, a cookie or localStorage), JSON reads, and writes with If-Match. Every request is same-origin.
 */
const TOKEN_KEY = "modelroll.token";
const ACTOR_KEY = "modelroll.actor";

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage off (private mode with quotas): the token lives until the page is closed.
  }
  memoryToken = token;
}

let memoryToken: string | null = storedToken();

export function currentToken(): string | null {
  return memoryToken;
}

export function storedActor(): string {
  try {
    return sessionStorage.getItem(ACTOR_KEY) ?? "dashboard";
  } catch {
    return "dashboard";
  }
}

export function storeActor(actor: string): void {
  try {
    sessionStorage.setItem(ACTOR_KEY, actor);
  } catch {
    // not kept
  }
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** Fired on window when the controller refuses the token (401): the app asks for one. */
export const AUTH_EVENT = "modelroll:auth";

export function authHeaders(): Record<string, string> {
  return memoryToken ? { authorization: `Bearer ${memoryToken}` } : {};
}

async function request(path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
  const response = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers ?? {}) }, credentials: "omit", cache: "no-store" });
  if (response.status === 401) window.dispatchEvent(new CustomEvent(AUTH_EVENT, { detail: await errorText(response.clone()) }));
  return response;
}

async function errorText(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error?: string };
    return body.error ?? `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

export async function getJson<T = unknown>(path: string): Promise<T> {
  const response = await request(path, { headers: { accept: "application/json" } });
  if (!response.ok) throw new ApiError(response.status, await errorText(response), null);
  return (await response.json()) as T;
}

export async function getText(path: string, accept: string): Promise<string> {
  const response = await request(path, { headers: { accept } });
  if (!response.ok) throw new ApiError(response.status, await errorText(response), null);
  return response.text();
}

/** A write; resolves with the rollout view it answers, or throws ApiError (409, 412, 403 ...). */
export async function write(
  path: string,
  options: { method?: string; body?: unknown; raw?: string; contentType?: string; ifMatch?: number | null; actor?: string },
): Promise<unknown> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.raw !== undefined) headers["content-type"] = options.contentType ?? "application/json";
  if (options.ifMatch !== undefined && options.ifMatch !== null) headers["if-match"] = `"${options.ifMatch}"`;
  if (options.actor) headers["x-actor"] = options.actor;
  const sent = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await request(path, { method: options.method ?? "POST", headers, body: sent });
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!response.ok) throw new ApiError(response.status, (body as { error?: string } | null)?.error ?? `HTTP ${response.status}`, body);
  return body;
}

export interface Session {
  tokensRequired: boolean;
  access: "write" | "read" | null;
}

/** What the given token may do; throws ApiError 401 for a token the controller does not know. */
export async function checkSession(token: string | null): Promise<Session> {
  const response = await fetch("/v1/session", { headers: token ? { authorization: `Bearer ${token}` } : {}, credentials: "omit", cache: "no-store" });
  if (!response.ok) throw new ApiError(response.status, await errorText(response), null);
  return (await response.json()) as Session;
}
