// A small demo model server answering the seed's output shape:
//   {"prediction": "<label>", "confidence": 0.0-1.0, "model_version": "<version>"}
// Behaviour (error rate, added latency, ...) can be set at start and changed at run time through
// PUT /__demo/behavior, so tests and demos can make a canary misbehave. GET /__demo/behavior shows it.
//
// A PUT body changes only the fields it names; the others keep their value:
//   {"errorRate": 0.05}                       5% of all requests answer 500
//   {"latencyMs": 20, "labelShift": 1}        every answer 20 ms late, with a shifted label
//
// Per-segment behaviour: `overrides` is a list of {when, ...fields}. A request matching an override's `when`
// (its header's value equals the given one, compared case-insensitively like the filter's segment values)
// gets that override's fields in place of the defaults; fields the override leaves out keep the default.
// The first matching override wins; a request matching none gets the defaults. A PUT with `overrides`
// replaces the whole list; `"overrides": []` removes them.
//   {"overrides": [{"when": {"header": "x-tenant-tier", "equals": "enterprise"}, "errorRate": 0.2}]}
//     -> enterprise requests: 20% errors; every other request: served as before
//
// A body that is not a JSON object, names an unknown field, or has a value out of range is refused with a
// 400 and nothing changes: {"error": "...", "details": [{"path": "/overrides/0/when/header", "reason": "..."}]}.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

interface FixedResponse {
  status?: number;
  headers?: Record<string, string>;
  bodyBase64: string;
  chunkBytes?: number;
}

/** What one request gets: the defaults, or the defaults with a matching override's fields. */
interface BehaviorFields {
  /** Fraction of requests answered with HTTP 500. */
  errorRate: number;
  /** Added latency per request, in milliseconds. */
  latencyMs: number;
  /** Shifts every predicted label by this many places: a model that disagrees with the others. */
  labelShift: number;
  /** Answers 200 with a body that is not JSON. */
  garbage: boolean;
  /** Answers exactly these bytes (base64), with these headers, optionally written in small chunks. */
  fixedResponse: FixedResponse | null;
}

/** A request matches when its header `header` (lowercase name) has the value `equals` (case-insensitive). */
interface BehaviorCondition {
  header: string;
  equals: string;
}

interface BehaviorOverride extends Partial<BehaviorFields> {
  when: BehaviorCondition;
}

export interface ModelBehavior extends BehaviorFields {
  /** Per-segment behaviour; the first override whose `when` matches a request applies to it. */
  overrides: BehaviorOverride[];
}

interface BehaviorProblem {
  /** JSON pointer of the offending field in the PUT body. */
  path: string;
  reason: string;
}

export interface ModelServer {
  url: string;
  port: number;
  version: string;
  behavior: ModelBehavior;
  /** Requests answered so far (excluding /__demo calls). */
  served(): number;
  /** Requests that carried the x-modelroll-shadow header (mirrored by the filter). */
  mirrored(): number;
  /** The last mirrored request as received, for tests that check what the filter copied. */
  lastMirrored(): { method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string } | null;
  close(): Promise<void>;
}

const LABELS = ["approve", "review", "decline"] as const;

function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function prediction(version: string, body: string, labelShift = 0): { prediction: string; confidence: number; model_version: string } {
  const h = hash32(body);
  return {
    // The double modulo keeps the index in range for any shift; the fallback is never taken.
    prediction: LABELS[(((h + labelShift) % LABELS.length) + LABELS.length) % LABELS.length] ?? LABELS[0],
    confidence: Math.round(((h >>> 8) % 1000) / 10) / 100,
    model_version: version,
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const FIELD_NAMES = ["errorRate", "latencyMs", "labelShift", "garbage", "fixedResponse"] as const;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
const MAX_LATENCY_MS = 60_000;
const MAX_OVERRIDES = 16;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function unknownKeys(value: Record<string, unknown>, known: readonly string[], at: string, problems: BehaviorProblem[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) problems.push({ path: `${at}/${key}`, reason: `is not a known field (known: ${known.join(", ")})` });
  }
}

/** Checks the behaviour fields present in `value` and returns them; problems are pushed with their pointer. */
function parseFields(value: Record<string, unknown>, at: string, problems: BehaviorProblem[]): Partial<BehaviorFields> {
  const out: Partial<BehaviorFields> = {};
  const v = value;
  if (v.errorRate !== undefined) {
    if (typeof v.errorRate !== "number" || !(v.errorRate >= 0 && v.errorRate <= 1))
      problems.push({ path: `${at}/errorRate`, reason: "must be a number from 0 to 1 (the fraction of requests answered 500)" });
    else out.errorRate = v.errorRate;
  }
  if (v.latencyMs !== undefined) {
    if (typeof v.latencyMs !== "number" || !(v.latencyMs >= 0 && v.latencyMs <= MAX_LATENCY_MS))
      problems.push({ path: `${at}/latencyMs`, reason: `must be a number of milliseconds from 0 to ${MAX_LATENCY_MS}` });
    else out.latencyMs = v.latencyMs;
  }
  if (v.labelShift !== undefined) {
    if (typeof v.labelShift !== "number" || !Number.isInteger(v.labelShift)) problems.push({ path: `${at}/labelShift`, reason: "must be a whole number" });
    else out.labelShift = v.labelShift;
  }
  if (v.garbage !== undefined) {
    if (typeof v.garbage !== "boolean") problems.push({ path: `${at}/garbage`, reason: "must be true or false" });
    else out.garbage = v.garbage;
  }
  if (v.fixedResponse !== undefined) {
    const fixed = parseFixedResponse(v.fixedResponse, `${at}/fixedResponse`, problems);
    if (fixed !== undefined) out.fixedResponse = fixed;
  }
  return out;
}

function parseFixedResponse(value: unknown, at: string, problems: BehaviorProblem[]): FixedResponse | null | undefined {
  if (value === null) return null;
  if (!isObject(value)) {
    problems.push({ path: at, reason: "must be null or an object {bodyBase64, status?, headers?, chunkBytes?}" });
    return undefined;
  }
  const before = problems.length;
  unknownKeys(value, ["status", "headers", "bodyBase64", "chunkBytes"], at, problems);
  if (typeof value.bodyBase64 !== "string")
    problems.push({ path: `${at}/bodyBase64`, reason: value.bodyBase64 === undefined ? "is required" : "must be a base64 string" });
  if (value.status !== undefined && !(typeof value.status === "number" && Number.isInteger(value.status) && value.status >= 100 && value.status <= 599)) {
    problems.push({ path: `${at}/status`, reason: "must be an HTTP status from 100 to 599" });
  }
  if (value.chunkBytes !== undefined && !(typeof value.chunkBytes === "number" && Number.isInteger(value.chunkBytes) && value.chunkBytes >= 0)) {
    problems.push({ path: `${at}/chunkBytes`, reason: "must be a whole number of bytes, 0 or more" });
  }
  if (value.headers !== undefined) {
    if (!isObject(value.headers)) problems.push({ path: `${at}/headers`, reason: "must be an object of header name to string value" });
    else {
      for (const [name, text] of Object.entries(value.headers)) {
        if (typeof text !== "string") problems.push({ path: `${at}/headers/${name}`, reason: "must be a string" });
      }
    }
  }
  return problems.length > before ? undefined : (value as unknown as FixedResponse);
}

function parseOverrides(value: unknown, problems: BehaviorProblem[]): BehaviorOverride[] | undefined {
  if (!Array.isArray(value)) {
    problems.push({ path: "/overrides", reason: "must be a list of {when: {header, equals}, ...fields} (an empty list removes them)" });
    return undefined;
  }
  if (value.length > MAX_OVERRIDES) problems.push({ path: "/overrides", reason: `must have at most ${MAX_OVERRIDES} items` });
  const before = problems.length;
  const out: BehaviorOverride[] = [];
  value.forEach((item, i) => {
    const at = `/overrides/${i}`;
    if (!isObject(item)) {
      problems.push({ path: at, reason: "must be an object {when: {header, equals}, ...fields}" });
      return;
    }
    unknownKeys(item, ["when", ...FIELD_NAMES], at, problems);
    const fields = parseFields(item, at, problems);
    if (FIELD_NAMES.every((k) => item[k] === undefined)) {
      problems.push({ path: at, reason: `changes nothing: give at least one of ${FIELD_NAMES.join(", ")}` });
    }
    const when = item.when;
    if (when === undefined) {
      problems.push({ path: `${at}/when`, reason: 'is required, e.g. {"header": "x-tenant-tier", "equals": "enterprise"}' });
      return;
    }
    if (!isObject(when)) {
      problems.push({ path: `${at}/when`, reason: 'must be an object {"header": "<lowercase name>", "equals": "<value>"}' });
      return;
    }
    unknownKeys(when, ["header", "equals"], `${at}/when`, problems);
    if (typeof when.header !== "string" || !HEADER_NAME.test(when.header)) {
      problems.push({
        path: `${at}/when/header`,
        reason: when.header === undefined ? "is required" : "must be a lowercase HTTP header name, e.g. x-tenant-tier",
      });
    }
    if (typeof when.equals !== "string") {
      problems.push({ path: `${at}/when/equals`, reason: when.equals === undefined ? "is required" : "must be a string (the header value to match)" });
    }
    out.push({ when: { header: when.header as string, equals: when.equals as string }, ...fields });
  });
  return problems.length > before ? undefined : out;
}

/**
 * A PUT /__demo/behavior body -> the change it asks for, or every problem with it (JSON pointer and
 * reason). Nothing is applied unless the whole body is valid.
 */
export function parseBehaviorUpdate(body: unknown): { ok: true; update: Partial<ModelBehavior> } | { ok: false; problems: BehaviorProblem[] } {
  const problems: BehaviorProblem[] = [];
  if (!isObject(body)) return { ok: false, problems: [{ path: "", reason: 'must be a JSON object, e.g. {"errorRate": 0.05}' }] };
  unknownKeys(body, [...FIELD_NAMES, "overrides"], "", problems);
  const update: Partial<ModelBehavior> = parseFields(body, "", problems);
  if (body.overrides !== undefined) {
    const overrides = parseOverrides(body.overrides, problems);
    if (overrides) update.overrides = overrides;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, update };
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** The behaviour one request gets: the first matching override's fields over the defaults. */
export function behaviorFor(behavior: ModelBehavior, headers: IncomingHttpHeaders): BehaviorFields {
  const base: BehaviorFields = {
    errorRate: behavior.errorRate,
    latencyMs: behavior.latencyMs,
    labelShift: behavior.labelShift,
    garbage: behavior.garbage,
    fixedResponse: behavior.fixedResponse,
  };
  for (const o of behavior.overrides) {
    const value = headerValue(headers, o.when.header);
    if (value === undefined || value.trim().toLowerCase() !== o.when.equals.trim().toLowerCase()) continue;
    const fields = Object.fromEntries(FIELD_NAMES.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
    return { ...base, ...fields };
  }
  return base;
}

const INVALID_JSON = Symbol("invalid JSON");

export async function startModelServer(opts: { version: string; host?: string; port?: number; behavior?: Partial<ModelBehavior> }): Promise<ModelServer> {
  const behavior: ModelBehavior = { errorRate: 0, latencyMs: 0, labelShift: 0, garbage: false, fixedResponse: null, overrides: [], ...opts.behavior };
  let served = 0;
  let mirrored = 0;
  let lastMirrored: ReturnType<ModelServer["lastMirrored"]> = null;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    if (req.url === "/__demo/behavior") {
      if (req.method === "PUT") {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          parsed = INVALID_JSON;
        }
        const result = parsed === INVALID_JSON ? { ok: false as const, problems: [{ path: "", reason: "is not valid JSON" }] } : parseBehaviorUpdate(parsed);
        if (!result.ok) {
          const error = `model server: invalid behavior: ${result.problems.map((p) => `${p.path || "(body)"} ${p.reason}`).join("; ")}`;
          res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error, details: result.problems }));
          return;
        }
        Object.assign(behavior, result.update);
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(behavior));
      return;
    }
    served++;
    if (req.headers["x-modelroll-shadow"] !== undefined) {
      mirrored++;
      lastMirrored = { method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers }, body };
    }
    const now = behaviorFor(behavior, req.headers);
    if (now.latencyMs > 0) await new Promise((r) => setTimeout(r, now.latencyMs));
    const headers = { "content-type": "application/json", "x-model-version": opts.version };
    if (now.errorRate > 0 && Math.random() < now.errorRate) {
      res.writeHead(500, headers).end(JSON.stringify({ error: "model failed", model_version: opts.version }));
      return;
    }
    const fixed = now.fixedResponse;
    if (fixed) {
      const bytes = Buffer.from(fixed.bodyBase64, "base64");
      res.writeHead(fixed.status ?? 200, { "x-model-version": opts.version, ...(fixed.headers ?? {}) });
      const step = fixed.chunkBytes && fixed.chunkBytes > 0 ? fixed.chunkBytes : bytes.length || 1;
      for (let i = 0; i < bytes.length; i += step) {
        res.write(bytes.subarray(i, i + step));
        // Let each piece leave as its own chunk rather than one coalesced write.
        if (fixed.chunkBytes) await new Promise((r) => setImmediate(r));
      }
      res.end();
      return;
    }
    if (now.garbage) {
      res.writeHead(200, headers).end("<html>not a model answer</html>");
      return;
    }
    res.writeHead(200, headers).end(JSON.stringify(prediction(opts.version, `${req.url} ${body}`, now.labelShift)));
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}`,
    port,
    version: opts.version,
    behavior,
    served: () => served,
    mirrored: () => mirrored,
    lastMirrored: () => lastMirrored,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
