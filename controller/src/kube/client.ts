/**
 * A small client for the Kubernetes API: the verbs the controller needs on the resources it owns (ModelRollouts,
 * their decisions, Leases, WasmPlugins), over node:http(s). Node 20's global fetch cannot be given a CA or a
 * client certificate without the undici package, and node:https can, so this uses node:https and adds nothing.
 *
 * What it does not do: discovery, protobuf, exec/auth-provider credential plugins (a kubeconfig that needs one
 * is refused with that said). Every error answer becomes a KubeError with the API's status, reason and causes.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { readKubeconfig, readInCluster, type KubeConnection } from "./config.ts";
import { KubeError, statusError } from "./errors.ts";
import { splitLines } from "./lines.ts";

export { KubeError } from "./errors.ts";
export type { KubeConnection } from "./config.ts";

/** Where a kind of resource lives: `/apis/{group}/{version}[/namespaces/{ns}]/{plural}` ("" group: `/api/v1`). */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  /** Absent: cluster-scoped (or across all namespaces for list/watch). */
  namespace?: string;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
  [key: string]: unknown;
}

/** Any object the API returns; the fields beside metadata are the resource's own. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export interface ObjectList<T extends KubeObject = KubeObject> {
  items: T[];
  /** The list's resourceVersion: where a watch started right after it begins. */
  resourceVersion: string;
  /** Set when `limit` cut the list short: pass it back as `continue` for the next page. */
  continue?: string;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export type PatchType = "merge" | "json" | "apply";

export interface PatchOptions {
  /** merge: RFC 7386 merge patch (default); json: RFC 6902; apply: server-side apply (needs fieldManager). */
  type?: PatchType;
  fieldManager?: string;
  /** Server-side apply: take over fields another manager owns. */
  force?: boolean;
}

export interface DeleteOptions {
  /** Refused with 409 when the object's resourceVersion has moved on. */
  resourceVersion?: string;
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";

export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: WatchEventType;
  object: T;
}

export interface WatchOptions extends Pick<ListOptions, "labelSelector" | "fieldSelector"> {
  /** Start after this version (from a list or the last event seen). Absent: the current state as ADDED events first. */
  resourceVersion?: string;
  /** Ends the watch: the iterator returns. */
  signal?: AbortSignal;
  /** Seconds before the server closes one watch request; the iterator then opens the next from where it was. */
  timeoutSeconds?: number;
}

export interface KubeClientOptions {
  /** Each request except watches; default 10 s. */
  timeoutMs?: number;
  userAgent?: string;
}

const JSON_TYPE = "application/json";
const PATCH_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};
/** Bytes of one answer read at most (a list of 1,000 ModelRollouts is a few MiB; a watch line is one object). */
const MAX_BODY = 64 * 1024 * 1024;

export class KubeClient {
  readonly server: URL;
  /** The kubeconfig context's namespace or the service account's; "default" when neither says. */
  readonly namespace: string;
  readonly #connection: KubeConnection;
  readonly #agent: HttpAgent;
  readonly #timeoutMs: number;
  readonly #userAgent: string;

  constructor(connection: KubeConnection, options: KubeClientOptions = {}) {
    this.#connection = connection;
    this.server = new URL(connection.server);
    this.namespace = connection.namespace ?? "default";
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#userAgent = options.userAgent ?? "modelroll-controller";
    const tls = this.server.protocol === "https:";
    this.#agent = tls
      ? new HttpsAgent({
          keepAlive: true,
          ca: connection.ca,
          cert: connection.cert,
          key: connection.key,
          rejectUnauthorized: !connection.insecureSkipTlsVerify,
        })
      : new HttpAgent({ keepAlive: true });
  }

  /** From a kubeconfig file: its current context (or `context`), token or client certificate, CA. */
  static fromKubeconfig(path: string, options: KubeClientOptions & { context?: string } = {}): KubeClient {
    return new KubeClient(readKubeconfig(path, options.context), options);
  }

  /** Inside a pod: the service account's token (re-read as it rotates), CA and namespace. */
  static inCluster(options: KubeClientOptions = {}): KubeClient {
    return new KubeClient(readInCluster(), options);
  }

  /** Closes the kept-alive connections (watches end on their own when their signal aborts). */
  close(): void {
    this.#agent.destroy();
  }

  async get<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string): Promise<T> {
    return (await this.request("GET", objectPath(ref, name))) as T;
  }

  async list<T extends KubeObject = KubeObject>(ref: ResourceRef, options: ListOptions = {}): Promise<ObjectList<T>> {
    const query = new URLSearchParams();
    if (options.labelSelector) query.set("labelSelector", options.labelSelector);
    if (options.fieldSelector) query.set("fieldSelector", options.fieldSelector);
    if (options.limit) query.set("limit", String(options.limit));
    if (options.continue) query.set("continue", options.continue);
    const body = (await this.request("GET", withQuery(collectionPath(ref), query))) as {
      items?: T[];
      metadata?: { resourceVersion?: string; continue?: string };
    };
    return {
      items: body.items ?? [],
      resourceVersion: body.metadata?.resourceVersion ?? "",
      ...(body.metadata?.continue ? { continue: body.metadata.continue } : {}),
    };
  }

  /** Every page of a list (pages of `pageSize`), with the first page's resourceVersion. */
  async listAll<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    options: Omit<ListOptions, "limit" | "continue"> & { pageSize?: number } = {},
  ): Promise<ObjectList<T>> {
    const items: T[] = [];
    let page = await this.list<T>(ref, { ...options, limit: options.pageSize ?? 500 });
    const resourceVersion = page.resourceVersion;
    items.push(...page.items);
    while (page.continue) {
      page = await this.list<T>(ref, { ...options, limit: options.pageSize ?? 500, continue: page.continue });
      items.push(...page.items);
    }
    return { items, resourceVersion };
  }

  async create<T extends KubeObject = KubeObject>(ref: ResourceRef, object: T, options: { fieldManager?: string } = {}): Promise<T> {
    const query = new URLSearchParams();
    if (options.fieldManager) query.set("fieldManager", options.fieldManager);
    return (await this.request("POST", withQuery(collectionPath(ref), query), object)) as T;
  }

  /** PUT: refused with 409 Conflict when `object.metadata.resourceVersion` is not the stored one. */
  async replace<T extends KubeObject = KubeObject>(ref: ResourceRef, object: T, options: { fieldManager?: string } = {}): Promise<T> {
    const query = new URLSearchParams();
    if (options.fieldManager) query.set("fieldManager", options.fieldManager);
    return (await this.request("PUT", withQuery(objectPath(ref, object.metadata.name), query), object)) as T;
  }

  /** The status subresource's PUT, conditional on the resourceVersion like replace. */
  async replaceStatus<T extends KubeObject = KubeObject>(ref: ResourceRef, object: T, options: { fieldManager?: string } = {}): Promise<T> {
    const query = new URLSearchParams();
    if (options.fieldManager) query.set("fieldManager", options.fieldManager);
    return (await this.request("PUT", withQuery(`${objectPath(ref, object.metadata.name)}/status`, query), object)) as T;
  }

  async patch<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string, body: unknown, options: PatchOptions = {}): Promise<T> {
    return this.#patch<T>(objectPath(ref, name), body, options);
  }

  async patchStatus<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string, body: unknown, options: PatchOptions = {}): Promise<T> {
    return this.#patch<T>(`${objectPath(ref, name)}/status`, body, options);
  }

  /** Answers the object as the API returned it (with deletionTimestamp when finalizers hold it) or its Status. */
  async delete(ref: ResourceRef, name: string, options: DeleteOptions = {}): Promise<unknown> {
    const body: Record<string, unknown> = { kind: "DeleteOptions", apiVersion: "v1" };
    if (options.resourceVersion) body.preconditions = { resourceVersion: options.resourceVersion };
    if (options.propagationPolicy) body.propagationPolicy = options.propagationPolicy;
    return this.request("DELETE", objectPath(ref, name), body);
  }

  /**
   * The changes to a kind of resource as they happen, from `resourceVersion` on. When the server ends one watch
   * request (its timeout), the next begins from the last version seen (bookmarks included), so the iterator
   * goes on until `signal` aborts. Throws KubeError 410 Gone when that version is too old (list again, then
   * watch from the list's version), and any other KubeError or network error as it comes (the caller retries).
   */
  async *watch<T extends KubeObject = KubeObject>(ref: ResourceRef, options: WatchOptions = {}): AsyncGenerator<WatchEvent<T>> {
    let resourceVersion = options.resourceVersion;
    while (!options.signal?.aborted) {
      const query = new URLSearchParams({ watch: "true", allowWatchBookmarks: "true" });
      if (resourceVersion) query.set("resourceVersion", resourceVersion);
      if (options.labelSelector) query.set("labelSelector", options.labelSelector);
      if (options.fieldSelector) query.set("fieldSelector", options.fieldSelector);
      query.set("timeoutSeconds", String(options.timeoutSeconds ?? 300));
      let response: IncomingMessage;
      try {
        response = await this.#send("GET", withQuery(collectionPath(ref), query), undefined, {}, options.signal, null);
      } catch (error) {
        if (options.signal?.aborted) return;
        throw error;
      }
      if ((response.statusCode ?? 0) >= 400) throw statusError(response.statusCode ?? 0, await readBody(response));
      try {
        for await (const line of splitLines(response, MAX_BODY)) {
          if (line.trim() === "") continue;
          const event = JSON.parse(line) as { type: string; object: KubeObject & { code?: number } };
          if (event.type === "ERROR") throw statusError(event.object.code ?? 500, JSON.stringify(event.object));
          const version = event.object.metadata?.resourceVersion;
          if (version) resourceVersion = version;
          yield event as WatchEvent<T>;
        }
      } catch (error) {
        if (options.signal?.aborted) return;
        throw error;
      } finally {
        response.destroy();
      }
    }
  }

  /** One call: the parsed JSON answer, or a KubeError for an error status. */
  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<unknown> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    const response = await this.#send(method, path, body, headers, signal, this.#timeoutMs);
    const text = await readBody(response);
    const status = response.statusCode ?? 0;
    if (status >= 400) throw statusError(status, text);
    return text === "" ? {} : JSON.parse(text);
  }

  async #patch<T extends KubeObject>(path: string, body: unknown, options: PatchOptions): Promise<T> {
    const type = options.type ?? "merge";
    const query = new URLSearchParams();
    if (options.fieldManager) query.set("fieldManager", options.fieldManager);
    if (options.force) query.set("force", "true");
    if (type === "apply" && !options.fieldManager) throw new KubeError(400, "BadRequest", "server-side apply needs a fieldManager");
    return (await this.request("PATCH", withQuery(path, query), body, { "content-type": PATCH_TYPES[type] })) as T;
  }

  #send(
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    timeoutMs: number | null,
  ): Promise<IncomingMessage> {
    const url = new URL(path, this.server);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const allHeaders: Record<string, string> = { accept: JSON_TYPE, "user-agent": this.#userAgent, ...headers };
    if (payload) {
      allHeaders["content-type"] ??= JSON_TYPE;
      allHeaders["content-length"] = String(payload.length);
    }
    const token = this.#connection.token?.();
    if (token) allHeaders.authorization = `Bearer ${token}`;
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers: allHeaders, agent: this.#agent, signal }, resolve);
      req.on("error", (error) => reject(networkError(method, url, error, signal, timeoutMs)));
      req.end(payload);
    });
  }
}

function networkError(method: string, url: URL, error: Error, signal: AbortSignal | undefined, timeoutMs: number | null): KubeError {
  const what = `${method} ${url.pathname}`;
  if (signal?.aborted && timeoutMs !== null) return new KubeError(0, "Timeout", `Kubernetes API ${url.host}: ${what} had no answer within ${timeoutMs} ms`);
  const code = (error as NodeJS.ErrnoException).code;
  return new KubeError(0, "Unreachable", `Kubernetes API ${url.host}: ${what} failed: ${code ?? error.message}`);
}

async function readBody(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) {
      response.destroy();
      throw new KubeError(0, "TooLarge", `Kubernetes API answer larger than ${MAX_BODY} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function collectionPath(ref: ResourceRef): string {
  const base = ref.group === "" ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : "";
  return `${base}${ns}/${ref.plural}`;
}

export function objectPath(ref: ResourceRef, name: string): string {
  return `${collectionPath(ref)}/${encodeURIComponent(name)}`;
}

function withQuery(path: string, query: URLSearchParams): string {
  const text = query.toString();
  return text === "" ? path : `${path}?${text}`;
}
