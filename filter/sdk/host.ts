// Host calls for Envoy, built on the raw ABI declarations of @gcoredev/proxy-wasm-sdk-as.
//
// Why not the SDK's own wrappers: they were written for another host. Its `log` writes to WASI stdout,
// and its wrappers throw on any non-Ok status, which traps the whole VM (every stream on that worker).
// Every helper here returns a value that says "failed" instead, and each caller decides fail-open.
import * as abi from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";
import { free } from "./malloc";

export const enum WasmResult {
  Ok = 0,
  NotFound = 1,
  BadArgument = 2,
  Empty = 7,
  CasMismatch = 8,
  InternalFailure = 10,
}

export const enum LogLevel {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
  Critical = 5,
}

export const enum HeaderMap {
  RequestHeaders = 0,
  RequestTrailers = 1,
  ResponseHeaders = 2,
  ResponseTrailers = 3,
  HttpCallResponseHeaders = 6,
}

export const enum Buffer {
  HttpRequestBody = 0,
  HttpResponseBody = 1,
  HttpCallResponseBody = 4,
  VmConfiguration = 6,
  PluginConfiguration = 7,
}

export const enum MetricType {
  Counter = 0,
  Gauge = 1,
  Histogram = 2,
}

/** Metric id used when defining a metric failed: recording to it is skipped. */
export const NO_METRIC: u32 = u32.MAX_VALUE;

// Out-parameters for host calls. Single-threaded VM: module globals are safe to reuse between calls.
class OutPointer {
  value: usize = 0;
}
class OutSize {
  value: usize = 0;
}
class OutU32 {
  value: u32 = 0;
}
class OutU64 {
  value: u64 = 0;
}
const outPtr = new OutPointer();
const outSize = new OutSize();
const outU32 = new OutU32();
const outU64 = new OutU64();

function ptrOf<T>(obj: T): usize {
  return changetype<usize>(obj);
}

/** Takes ownership of a buffer the host allocated through our exported malloc. */
function takeHostBuffer(): ArrayBuffer {
  const ptr = outPtr.value;
  const size = outSize.value;
  outPtr.value = 0;
  outSize.value = 0;
  if (ptr == 0 || size == 0) {
    if (ptr != 0) free(ptr);
    return new ArrayBuffer(0);
  }
  const buffer = changetype<ArrayBuffer>(ptr);
  // malloc pinned it so the GC would not collect it before we got here; unpin, the reference keeps it alive.
  free(ptr);
  return buffer;
}

export function log(level: LogLevel, message: string): void {
  const bytes = String.UTF8.encode(message);
  abi.proxy_log(<usize>level, changetype<usize>(bytes), <usize>bytes.byteLength);
}

export function nowNanos(): u64 {
  if (abi.proxy_get_current_time_nanoseconds(ptrOf(outU64)) != WasmResult.Ok) return 0;
  return outU64.value;
}

export function setTickPeriodMs(ms: u32): bool {
  return abi.proxy_set_tick_period_milliseconds(ms) == WasmResult.Ok;
}

/** The whole buffer of the given type, or null when the host has none or refuses. */
export function getBuffer(kind: Buffer, start: u32, length: u32): ArrayBuffer | null {
  if (length == 0) return new ArrayBuffer(0);
  const rc = abi.proxy_get_buffer_bytes(<i32>kind, start, length, ptrOf(outPtr), ptrOf(outSize));
  if (rc != WasmResult.Ok) return null;
  return takeHostBuffer();
}

/** A header value, or null when absent or when the host call failed. */
export function getHeader(map: HeaderMap, name: string): string | null {
  const key = String.UTF8.encode(name);
  const rc = abi.proxy_get_header_map_value(<i32>map, changetype<usize>(key), key.byteLength, ptrOf(outPtr), ptrOf(outSize));
  if (rc != WasmResult.Ok) {
    outPtr.value = 0;
    return null;
  }
  return String.UTF8.decode(takeHostBuffer());
}

export function replaceHeader(map: HeaderMap, name: string, value: string): bool {
  const key = String.UTF8.encode(name);
  const val = String.UTF8.encode(value);
  return abi.proxy_replace_header_map_value(<i32>map, changetype<usize>(key), key.byteLength, changetype<usize>(val), val.byteLength) == WasmResult.Ok;
}

export function removeHeader(map: HeaderMap, name: string): bool {
  const key = String.UTF8.encode(name);
  return abi.proxy_remove_header_map_value(<i32>map, changetype<usize>(key), key.byteLength) == WasmResult.Ok;
}

/**
 * An Envoy attribute such as ["response", "code_details"]. Envoy separates path parts with NUL.
 * Returns null when the attribute is missing or the call failed.
 */
export function getProperty(path: Array<string>): ArrayBuffer | null {
  const joined = path.join("\0");
  const key = String.UTF8.encode(joined);
  const rc = abi.proxy_get_property(changetype<usize>(key), key.byteLength, ptrOf(outPtr), ptrOf(outSize));
  if (rc != WasmResult.Ok) {
    outPtr.value = 0;
    return null;
  }
  return takeHostBuffer();
}

export function defineMetric(kind: MetricType, name: string): u32 {
  const key = String.UTF8.encode(name);
  if (abi.proxy_define_metric(<i32>kind, changetype<usize>(key), key.byteLength, ptrOf(outU32)) != WasmResult.Ok) {
    log(LogLevel.Warn, "modelroll: could not define metric " + name + "; it will not be recorded");
    return NO_METRIC;
  }
  return outU32.value;
}

/** Counters only take positive increments in Envoy; zero is skipped rather than sent. */
export function incrementMetric(id: u32, by: i64 = 1): void {
  if (id == NO_METRIC || by <= 0) return;
  abi.proxy_increment_metric(id, by);
}

/**
 * Adds `delta` (either sign) to a gauge. Envoy keeps one gauge per name for all the VMs of a plugin (one per
 * worker), so an add/sub from each VM sums across workers where a set would be the last writer's value.
 */
export function addToGauge(id: u32, delta: i64): void {
  if (id == NO_METRIC || delta == 0) return;
  abi.proxy_increment_metric(id, delta);
}

/** Histogram observation or gauge value. */
export function recordMetric(id: u32, value: u64): void {
  if (id == NO_METRIC) return;
  abi.proxy_record_metric(id, value);
}

// --- HTTP calls -------------------------------------------------------------------------------

function serializePairs(names: Array<string>, values: Array<string>): ArrayBuffer {
  // Layout from the proxy-wasm ABI: count, then (name_len, value_len) pairs, then NUL-terminated bytes.
  const n = names.length;
  const encodedNames = new Array<ArrayBuffer>(n);
  const encodedValues = new Array<ArrayBuffer>(n);
  let size = 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    encodedNames[i] = String.UTF8.encode(names[i]);
    encodedValues[i] = String.UTF8.encode(values[i]);
    size += encodedNames[i].byteLength + 1 + encodedValues[i].byteLength + 1;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, <u32>n);
  let offset: usize = 4 + 8 * <usize>n;
  for (let i = 0; i < n; i++) {
    const k = encodedNames[i];
    const v = encodedValues[i];
    store<u32>(base + 4 + 8 * <usize>i, <u32>k.byteLength);
    store<u32>(base + 8 + 8 * <usize>i, <u32>v.byteLength);
    memory.copy(base + offset, changetype<usize>(k), k.byteLength);
    offset += k.byteLength;
    store<u8>(base + offset, 0);
    offset += 1;
    memory.copy(base + offset, changetype<usize>(v), v.byteLength);
    offset += v.byteLength;
    store<u8>(base + offset, 0);
    offset += 1;
  }
  return out;
}

/**
 * Dispatches an HTTP call to an Envoy cluster. Returns the call token, or 0 when Envoy refused
 * (unknown cluster, missing pseudo-headers): the caller then treats the call as failed at once.
 * A timeout of 0 means "none" in Envoy, so callers must always pass a positive one.
 */
export function httpCall(cluster: string, headerNames: Array<string>, headerValues: Array<string>, body: ArrayBuffer | null, timeoutMs: u32): u32 {
  const upstream = String.UTF8.encode(cluster);
  const headers = serializePairs(headerNames, headerValues);
  const trailers = serializePairs([], []);
  const bodyPtr: usize = body === null ? 0 : changetype<usize>(body);
  const bodyLen: usize = body === null ? 0 : <usize>body.byteLength;
  const rc = abi.proxy_http_call(
    changetype<usize>(upstream),
    upstream.byteLength,
    changetype<usize>(headers),
    headers.byteLength,
    bodyPtr,
    bodyLen,
    changetype<usize>(trailers),
    trailers.byteLength,
    timeoutMs,
    ptrOf(outU32),
  );
  if (rc != WasmResult.Ok) return 0;
  return outU32.value;
}

/** All pairs of a header map, or null when the host refuses. */
export class HeaderPairs {
  names: Array<string> = [];
  values: Array<string> = [];
}

export function getHeaderPairs(map: HeaderMap): HeaderPairs | null {
  const rc = abi.proxy_get_header_map_pairs(<i32>map, ptrOf(outPtr), ptrOf(outSize));
  if (rc != WasmResult.Ok) {
    outPtr.value = 0;
    return null;
  }
  const buffer = takeHostBuffer();
  const pairs = new HeaderPairs();
  const total = buffer.byteLength;
  if (total < 4) return pairs;
  const base = changetype<usize>(buffer);
  const count = <i32>load<u32>(base);
  // Layout: count, (name_len, value_len) * count, then NUL-terminated bytes. Bounds-check everything:
  // a malformed map must give up, never read past the buffer.
  if (count < 0 || 4 + 8 * <i64>count > <i64>total) return pairs;
  let offset: i32 = 4 + 8 * count;
  for (let i = 0; i < count; i++) {
    const nameLen = <i32>load<u32>(base + 4 + 8 * <usize>i);
    const valueLen = <i32>load<u32>(base + 8 + 8 * <usize>i);
    if (nameLen < 0 || valueLen < 0 || <i64>offset + <i64>nameLen + <i64>valueLen + 2 > <i64>total) return pairs;
    pairs.names.push(String.UTF8.decodeUnsafe(base + <usize>offset, <usize>nameLen));
    offset += nameLen + 1;
    pairs.values.push(String.UTF8.decodeUnsafe(base + <usize>offset, <usize>valueLen));
    offset += valueLen + 1;
  }
  return pairs;
}

/**
 * Makes `id` the context the next host calls act for. An HTTP call dispatched while the root context is
 * effective belongs to the root: Envoy then does not cancel it when the client stream ends.
 */
export function setEffectiveContext(id: u32): bool {
  return abi.proxy_set_effective_context(id) == WasmResult.Ok;
}

/** Resumes a response the filter held (StopIteration); false when the host refused. */
export function continueResponse(): bool {
  return abi.proxy_continue_stream(1) == WasmResult.Ok;
}

/** Replaces `length` bytes from `start` of a buffer (e.g. the whole buffered response body) with `data`. */
export function setBuffer(kind: Buffer, start: u32, length: u32, data: ArrayBuffer): bool {
  return abi.proxy_set_buffer_bytes(<i32>kind, start, length, changetype<usize>(data), <usize>data.byteLength) == WasmResult.Ok;
}
