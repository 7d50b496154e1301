// A fake proxy-wasm host for the filter, in the manner of the proxy-wasm Go SDK's proxytest: it instantiates the
// very module Envoy loads (build/filter.wasm, no test build, no stubs inside the filter) and supplies the `proxy_*`
// imports itself, so a test drives the filter's callbacks in any order and sees every host call it makes.
//
// What it models, after Envoy 1.40 and proxy-wasm-cpp-host (and only as far as the filter uses it):
// - contexts: one root, streams under it; a callback runs with its context current and no effective context;
//   proxy_set_effective_context succeeds only for a context the host still knows (BadArgument otherwise);
// - header maps and bodies per stream; the response body, while the filter buffers it (StopIterationAndBuffer),
//   accumulates, and each body callback then sees the whole of it; what the client received is recorded;
// - HTTP calls belong to the context effective when they were made: ending a stream cancels its own calls;
//   every answer is delivered to the root context, as Envoy 1.40 does (see filter/sdk/dispatch.ts);
// - metrics by name, a manual clock, the log.
// `refuse` makes any host call fail (e.g. the effective-context switch), for the filter's fail-open paths.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../../controller/src/paths.ts";

const OK = 0;
const NOT_FOUND = 1;
const BAD_ARGUMENT = 2;

enum MapType {
  RequestHeaders = 0,
  ResponseHeaders = 2,
  CallResponseHeaders = 6,
}
enum BufferType {
  RequestBody = 0,
  ResponseBody = 1,
  CallResponseBody = 4,
  PluginConfiguration = 7,
}

export const HEADERS_CONTINUE = 0;
export const HEADERS_STOP = 1;
export const DATA_CONTINUE = 0;
export const DATA_STOP_AND_BUFFER = 1;

type Pairs = Array<[string, string]>;

export interface Metric {
  name: string;
  type: number;
  value: number;
  samples: number[];
}

export interface Call {
  token: number;
  cluster: string;
  headers: Pairs;
  body: string;
  timeoutMs: number;
  /** The context the call belongs to: the one effective (or current) when it was made. */
  owner: number;
  cancelled: boolean;
  answered: boolean;
}

export interface CallAnswer {
  headers: Record<string, string>;
  body?: string;
}

/** What the client received of a response. */
export interface ClientView {
  headers: Pairs | null;
  body: string;
  ended: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toPairs(headers: Record<string, string> | Pairs): Pairs {
  return Array.isArray(headers) ? headers.map(([k, v]) => [k, v]) : Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]);
}

export class FakeStream {
  requestHeaders: Pairs = [];
  responseHeaders: Pairs = [];
  requestBody: Uint8Array = new Uint8Array(0);
  /** The response body the filter sees: the current chunk, or all of it buffered so far while the filter buffers. */
  responseBody: Uint8Array = new Uint8Array(0);
  properties = new Map<string, string>([["response\0code_details", "via_upstream"]]);
  client: ClientView = { headers: null, body: "", ended: false };
  deleted = false;
  private responseHeadersHeld = false;
  private bufferingResponse = false;
  private responseEnded = false;

  constructor(
    private host: FakeHost,
    public readonly id: number,
  ) {}

  sendRequestHeaders(headers: Record<string, string> | Pairs, endOfStream = true): number {
    this.requestHeaders = toPairs(headers);
    return this.host.enter(this.id, () => this.host.exports.proxy_on_request_headers(this.id, this.requestHeaders.length, endOfStream ? 1 : 0));
  }

  sendRequestBody(chunk: string, endOfStream = true): number {
    this.requestBody = encoder.encode(chunk);
    return this.host.enter(this.id, () => this.host.exports.proxy_on_request_body(this.id, this.requestBody.length, endOfStream ? 1 : 0));
  }

  sendResponseHeaders(headers: Record<string, string> | Pairs, endOfStream = false): number {
    this.responseHeaders = toPairs(headers);
    const status = this.host.enter(this.id, () => this.host.exports.proxy_on_response_headers(this.id, this.responseHeaders.length, endOfStream ? 1 : 0));
    this.responseEnded = endOfStream;
    if (status === HEADERS_STOP) this.responseHeadersHeld = true;
    else this.flushResponse();
    return status;
  }

  sendResponseBody(chunk: string, endOfStream = true): number {
    const bytes = encoder.encode(chunk);
    this.responseBody = this.bufferingResponse ? concat(this.responseBody, bytes) : bytes;
    this.responseEnded = endOfStream;
    const status = this.host.enter(this.id, () => this.host.exports.proxy_on_response_body(this.id, this.responseBody.length, endOfStream ? 1 : 0));
    if (status === DATA_STOP_AND_BUFFER) this.bufferingResponse = true;
    else this.flushResponse();
    return status;
  }

  /** The client goes away (or the exchange is over): Envoy deletes the context and cancels its own calls. */
  end(): void {
    this.host.enter(this.id, () => this.host.exports.proxy_on_delete(this.id));
    this.deleted = true;
    this.host.forget(this);
    for (const call of this.host.calls) if (call.owner === this.id && !call.answered) call.cancelled = true;
  }

  header(name: string): string | null {
    return this.requestHeaders.find(([k]) => k === name)?.[1] ?? null;
  }

  clientHeader(name: string): string | null {
    return this.client.headers?.find(([k]) => k === name)?.[1] ?? null;
  }

  /** What proxy_continue_stream(response) and a Continue both do: headers and the buffered body go on. */
  flushResponse(): void {
    if (this.client.headers === null) this.client.headers = this.responseHeaders.map(([k, v]) => [k, v]);
    this.responseHeadersHeld = false;
    this.bufferingResponse = false;
    this.client.body += decoder.decode(this.responseBody);
    this.responseBody = new Uint8Array(0);
    if (this.responseEnded) this.client.ended = true;
  }

  get held(): boolean {
    return this.responseHeadersHeld || this.bufferingResponse;
  }
}

export class FakeHost {
  exports: any;
  readonly rootId = 1;
  nowNs = 1_000_000_000n;
  tickPeriodMs = 0;
  logs: Array<{ level: number; message: string }> = [];
  metrics: Metric[] = [];
  calls: Call[] = [];
  clusters = new Set(["stable", "canary", "shadow", "controller"]);
  /** Return true to make a host call fail: `(name, args) => name === "proxy_set_effective_context" && args[0] === id`. */
  refuse: (name: string, args: number[]) => boolean = () => false;
  /** Host calls the filter made, by import name, in order (kept while `recordHostCalls`; benches turn it off). */
  hostCalls: Array<{ name: string; context: number; args: number[] }> = [];
  recordHostCalls = true;

  private streams = new Map<number, FakeStream>();
  private nextStreamId = 2;
  private nextToken = 1;
  private current = 0;
  private effective = 0;
  private pluginConfig: Uint8Array = new Uint8Array(0);
  private callResponse: { headers: Pairs; body: Uint8Array } | null = null;

  static async start(
    pluginConfig: unknown,
    wasmPath = process.env.MODELROLL_FILTER_WASM ?? join(repoRoot, "build", "filter.wasm"),
  ): Promise<{ host: FakeHost; configured: boolean }> {
    const host = new FakeHost();
    const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), { env: host.imports() });
    host.exports = instance.exports;
    const configured = host.configure(pluginConfig);
    return { host, configured };
  }

  /** Creates the root context and configures it; false when the filter refuses the configuration. */
  configure(pluginConfig: unknown): boolean {
    this.pluginConfig = encoder.encode(typeof pluginConfig === "string" ? pluginConfig : JSON.stringify(pluginConfig));
    this.enter(this.rootId, () => this.exports.proxy_on_context_create(this.rootId, 0));
    return this.enter(this.rootId, () => this.exports.proxy_on_configure(this.rootId, this.pluginConfig.length)) === 1;
  }

  newStream(): FakeStream {
    const stream = new FakeStream(this, this.nextStreamId++);
    this.streams.set(stream.id, stream);
    this.enter(stream.id, () => this.exports.proxy_on_context_create(stream.id, this.rootId));
    return stream;
  }

  /** A deleted stream stays known as deleted (set_effective_context refuses it) without keeping its data. */
  forget(stream: FakeStream): void {
    stream.requestHeaders = [];
    stream.responseHeaders = [];
    stream.requestBody = new Uint8Array(0);
    stream.responseBody = new Uint8Array(0);
  }

  tick(advanceMs = 0): void {
    this.nowNs += BigInt(advanceMs) * 1_000_000n;
    this.enter(this.rootId, () => this.exports.proxy_on_tick(this.rootId));
  }

  advance(ms: number): void {
    this.nowNs += BigInt(Math.round(ms * 1e6));
  }

  /** Answers a call (null: no answer at all, as Envoy reports a reset or timeout), on the root context. */
  answer(call: Call, response: CallAnswer | null): void {
    if (call.answered || call.cancelled) throw new Error(`call ${call.token} to ${call.cluster} is ${call.answered ? "answered" : "cancelled"} already`);
    call.answered = true;
    const headers = response === null ? [] : toPairs(response.headers);
    const body = encoder.encode(response?.body ?? "");
    this.callResponse = { headers, body };
    try {
      this.enter(this.rootId, () => this.exports.proxy_on_http_call_response(this.rootId, call.token, headers.length, body.length, 0));
    } finally {
      this.callResponse = null;
    }
  }

  callsTo(cluster: string): Call[] {
    return this.calls.filter((c) => c.cluster === cluster);
  }

  /** A counter's value by its name without `wasmcustom.` (0 when defined but never counted; undefined when not defined). */
  counter(name: string): number | undefined {
    return this.metrics.find((m) => m.name === name)?.value;
  }

  samples(name: string): number[] {
    return this.metrics.find((m) => m.name === name)?.samples ?? [];
  }

  /** Runs a callback with `context` current and no effective context, as the host does. */
  enter<T>(context: number, callback: () => T): T {
    const saved = [this.current, this.effective];
    this.current = context;
    this.effective = 0;
    try {
      return callback();
    } finally {
      [this.current, this.effective] = saved;
    }
  }

  private acting(): number {
    return this.effective !== 0 ? this.effective : this.current;
  }

  private actingStream(): FakeStream | null {
    const s = this.streams.get(this.acting());
    return s && !s.deleted ? s : null;
  }

  private memory(): DataView {
    return new DataView((this.exports.memory as WebAssembly.Memory).buffer);
  }

  private bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array((this.exports.memory as WebAssembly.Memory).buffer, ptr, len).slice();
  }

  private text(ptr: number, len: number): string {
    return decoder.decode(this.bytes(ptr, len));
  }

  /** Hands bytes to the module through its malloc, and the pointer and size through its out-parameters. */
  private give(data: Uint8Array, outPtr: number, outSize: number): number {
    const ptr = this.exports.malloc(data.length);
    new Uint8Array((this.exports.memory as WebAssembly.Memory).buffer, ptr, data.length).set(data);
    const view = this.memory();
    view.setUint32(outPtr, ptr, true);
    view.setUint32(outSize, data.length, true);
    return OK;
  }

  private headerMap(type: number): Pairs | null {
    if (type === MapType.CallResponseHeaders) return this.callResponse?.headers ?? null;
    const stream = this.actingStream();
    if (stream === null) return null;
    if (type === MapType.RequestHeaders) return stream.requestHeaders;
    if (type === MapType.ResponseHeaders) return stream.responseHeaders;
    return null;
  }

  private buffer(type: number): Uint8Array | null {
    if (type === BufferType.CallResponseBody) return this.callResponse?.body ?? null;
    if (type === BufferType.PluginConfiguration) return this.pluginConfig;
    const stream = this.actingStream();
    if (stream === null) return null;
    if (type === BufferType.RequestBody) return stream.requestBody;
    if (type === BufferType.ResponseBody) return stream.responseBody;
    return null;
  }

  private imports(): Record<string, (...args: any[]) => number> {
    const host = this;
    const calls: Record<string, (...args: any[]) => number> = {
      proxy_log(level: number, ptr: number, len: number) {
        host.logs.push({ level, message: host.text(ptr, len) });
        return OK;
      },
      proxy_get_current_time_nanoseconds(out: number) {
        host.memory().setBigUint64(out, host.nowNs, true);
        return OK;
      },
      proxy_set_tick_period_milliseconds(ms: number) {
        host.tickPeriodMs = ms;
        return OK;
      },
      proxy_define_metric(type: number, ptr: number, len: number, out: number) {
        const name = host.text(ptr, len);
        let id = host.metrics.findIndex((m) => m.name === name);
        if (id < 0) id = host.metrics.push({ name, type, value: 0, samples: [] }) - 1;
        host.memory().setUint32(out, id, true);
        return OK;
      },
      proxy_increment_metric(id: number, by: bigint) {
        const m = host.metrics[id];
        if (!m || by <= 0n) return BAD_ARGUMENT;
        m.value += Number(by);
        return OK;
      },
      proxy_record_metric(id: number, value: bigint) {
        const m = host.metrics[id];
        if (!m) return BAD_ARGUMENT;
        if (m.type === 2) m.samples.push(Number(value));
        else m.value = Number(value);
        return OK;
      },
      proxy_get_header_map_value(type: number, kPtr: number, kLen: number, outPtr: number, outSize: number) {
        const map = host.headerMap(type);
        const key = host.text(kPtr, kLen);
        const found = map?.find(([k]) => k === key);
        if (!found) return NOT_FOUND;
        return host.give(encoder.encode(found[1]), outPtr, outSize);
      },
      proxy_get_header_map_pairs(type: number, outPtr: number, outSize: number) {
        const map = host.headerMap(type);
        if (map === null) return NOT_FOUND;
        return host.give(serializePairs(map), outPtr, outSize);
      },
      proxy_replace_header_map_value(type: number, kPtr: number, kLen: number, vPtr: number, vLen: number) {
        const map = host.headerMap(type);
        if (map === null) return NOT_FOUND;
        const key = host.text(kPtr, kLen);
        const value = host.text(vPtr, vLen);
        const at = map.findIndex(([k]) => k === key);
        for (let j = map.length - 1; j >= 0; j--) if (map[j][0] === key) map.splice(j, 1);
        if (at >= 0) map.splice(at, 0, [key, value]);
        else map.push([key, value]);
        return OK;
      },
      proxy_remove_header_map_value(type: number, kPtr: number, kLen: number) {
        const map = host.headerMap(type);
        if (map === null) return NOT_FOUND;
        const key = host.text(kPtr, kLen);
        for (let j = map.length - 1; j >= 0; j--) if (map[j][0] === key) map.splice(j, 1);
        return OK;
      },
      proxy_get_buffer_bytes(type: number, start: number, length: number, outPtr: number, outSize: number) {
        const buffer = host.buffer(type);
        if (buffer === null) return NOT_FOUND;
        return host.give(buffer.slice(start, start + length), outPtr, outSize);
      },
      proxy_set_buffer_bytes(type: number, start: number, length: number, ptr: number, size: number) {
        const stream = host.actingStream();
        if (stream === null || type !== BufferType.ResponseBody) return NOT_FOUND;
        const old = stream.responseBody;
        stream.responseBody = concat(concat(old.slice(0, start), host.bytes(ptr, size)), old.slice(start + length));
        return OK;
      },
      proxy_get_property(ptr: number, len: number, outPtr: number, outSize: number) {
        const value = host.actingStream()?.properties.get(host.text(ptr, len));
        if (value === undefined) return NOT_FOUND;
        return host.give(encoder.encode(value), outPtr, outSize);
      },
      proxy_http_call(
        uPtr: number,
        uLen: number,
        hPtr: number,
        hLen: number,
        bPtr: number,
        bLen: number,
        _tPtr: number,
        _tLen: number,
        timeoutMs: number,
        outToken: number,
      ) {
        const cluster = host.text(uPtr, uLen);
        const headers = parsePairs(host.bytes(hPtr, hLen));
        for (const required of [":method", ":path", ":authority"]) if (!headers.some(([k]) => k === required)) return BAD_ARGUMENT;
        if (!host.clusters.has(cluster) || timeoutMs === 0) return BAD_ARGUMENT;
        const token = host.nextToken++;
        host.calls.push({ token, cluster, headers, body: host.text(bPtr, bLen), timeoutMs, owner: host.acting(), cancelled: false, answered: false });
        host.memory().setUint32(outToken, token, true);
        return OK;
      },
      proxy_set_effective_context(id: number) {
        const known = id === host.rootId || (host.streams.has(id) && !host.streams.get(id)!.deleted);
        if (!known) return BAD_ARGUMENT;
        host.effective = id;
        return OK;
      },
      proxy_continue_stream(type: number) {
        const stream = host.actingStream();
        if (stream !== null && type === 1) stream.flushResponse();
        return OK;
      },
    };
    // Every import goes through the refusal hook and the record of host calls.
    const wrapped: Record<string, (...args: any[]) => number> = {};
    for (const [name, fn] of Object.entries(calls)) {
      wrapped[name] = (...args: any[]) => {
        const numbers = args.map((a) => Number(a));
        if (host.recordHostCalls) host.hostCalls.push({ name, context: host.acting(), args: numbers });
        if (host.refuse(name, numbers)) return name === "proxy_set_effective_context" ? BAD_ARGUMENT : NOT_FOUND;
        return fn(...args);
      };
    }
    return wrapped;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The proxy-wasm header-pairs layout: count, (name length, value length) per pair, then NUL-terminated bytes. */
function serializePairs(pairs: Pairs): Uint8Array {
  const encoded = pairs.map(([k, v]) => [encoder.encode(k), encoder.encode(v)] as const);
  const size = 4 + 8 * pairs.length + encoded.reduce((s, [k, v]) => s + k.length + v.length + 2, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, pairs.length, true);
  let offset = 4 + 8 * pairs.length;
  encoded.forEach(([k, v], i) => {
    view.setUint32(4 + 8 * i, k.length, true);
    view.setUint32(8 + 8 * i, v.length, true);
    out.set(k, offset);
    offset += k.length + 1;
    out.set(v, offset);
    offset += v.length + 1;
  });
  return out;
}

function parsePairs(bytes: Uint8Array): Pairs {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const pairs: Pairs = [];
  let offset = 4 + 8 * count;
  for (let i = 0; i < count; i++) {
    const kLen = view.getUint32(4 + 8 * i, true);
    const vLen = view.getUint32(8 + 8 * i, true);
    const k = decoder.decode(bytes.subarray(offset, offset + kLen));
    offset += kLen + 1;
    const v = decoder.decode(bytes.subarray(offset, offset + vLen));
    offset += vLen + 1;
    pairs.push([k, v]);
  }
  return pairs;
}
