// Context bookkeeping and the proxy_on_* callbacks the filter uses, written for Envoy's lifecycle.
//
// Why not the SDK's exports.ts: it keeps ONE root context for every root id, and looks contexts up
// with Map.get, which traps when an id is unknown. Envoy creates a new root context on the same VM
// for each plugin configuration (and the VM's own root for on_vm_start), delivers proxy_on_done /
// proxy_on_delete for root ids too, and may deliver HTTP-call callbacks after a stream is gone.
// Here each root id has its own context, and an unknown id is a no-op with a fail-open answer.
import { log, LogLevel } from "./host";

export const enum HeadersStatus {
  Continue = 0,
  StopIteration = 1,
}
export const enum DataStatus {
  Continue = 0,
  StopIterationAndBuffer = 1,
  StopIterationNoBuffer = 3,
}

export class RootContextBase {
  constructor(public readonly id: u32) {}
  onVmStart(vmConfigSize: u32): bool {
    return true;
  }
  onConfigure(pluginConfigSize: u32): bool {
    return true;
  }
  onTick(): void {}
  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {}
  createStream(id: u32): StreamContextBase {
    return new StreamContextBase(id, this);
  }
  onDelete(): void {}
}

export class StreamContextBase {
  constructor(
    public readonly id: u32,
    public readonly root: RootContextBase,
  ) {}
  onRequestHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    return HeadersStatus.Continue;
  }
  onRequestBody(bodySize: u32, endOfStream: bool): DataStatus {
    return DataStatus.Continue;
  }
  onResponseHeaders(headerCount: u32, endOfStream: bool): HeadersStatus {
    return HeadersStatus.Continue;
  }
  onResponseBody(bodySize: u32, endOfStream: bool): DataStatus {
    return DataStatus.Continue;
  }
  /** An HTTP call made for this stream answered (routed here by its root); the stream is alive and effective. */
  onHttpCallResponse(token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {}
  onDelete(): void {}
}

let rootFactory: (id: u32) => RootContextBase = (id: u32): RootContextBase => new RootContextBase(id);
const roots = new Map<u32, RootContextBase>();
const streams = new Map<u32, StreamContextBase>();

export function setRootContextFactory(factory: (id: u32) => RootContextBase): void {
  rootFactory = factory;
}

/** The live stream with this id, or null once Envoy deleted it. */
export function findStream(id: u32): StreamContextBase | null {
  return streams.has(id) ? streams.get(id) : null;
}

export function proxy_abi_version_0_2_1(): void {}

function proxy_on_context_create_inner(id: u32, parentId: u32): void {
  if (parentId == 0) {
    if (!roots.has(id)) roots.set(id, rootFactory(id));
    return;
  }
  if (!roots.has(parentId)) {
    log(LogLevel.Error, "modelroll: stream " + id.toString() + " created under unknown root " + parentId.toString());
    return;
  }
  streams.set(id, roots.get(parentId).createStream(id));
}

function proxy_on_vm_start_inner(rootId: u32, vmConfigSize: u32): u32 {
  if (!roots.has(rootId)) roots.set(rootId, rootFactory(rootId));
  return roots.get(rootId).onVmStart(vmConfigSize) ? 1 : 0;
}

function proxy_on_configure_inner(rootId: u32, configSize: u32): u32 {
  if (!roots.has(rootId)) roots.set(rootId, rootFactory(rootId));
  return roots.get(rootId).onConfigure(configSize) ? 1 : 0;
}

function proxy_on_tick_inner(rootId: u32): void {
  if (roots.has(rootId)) roots.get(rootId).onTick();
}

function proxy_on_http_call_response_inner(contextId: u32, token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
  // Envoy 1.40 answers every call on the root context, also one a stream made: the root routes it on.
  if (roots.has(contextId)) roots.get(contextId).onHttpCallResponse(token, headerCount, bodySize, trailerCount);
  else if (streams.has(contextId)) streams.get(contextId).onHttpCallResponse(token, headerCount, bodySize, trailerCount);
}

function proxy_on_request_headers_inner(id: u32, headerCount: u32, endOfStream: u32): i32 {
  if (!streams.has(id)) return HeadersStatus.Continue;
  return streams.get(id).onRequestHeaders(headerCount, endOfStream != 0);
}

function proxy_on_request_body_inner(id: u32, bodySize: u32, endOfStream: u32): i32 {
  if (!streams.has(id)) return DataStatus.Continue;
  return streams.get(id).onRequestBody(bodySize, endOfStream != 0);
}

function proxy_on_response_headers_inner(id: u32, headerCount: u32, endOfStream: u32): i32 {
  if (!streams.has(id)) return HeadersStatus.Continue;
  return streams.get(id).onResponseHeaders(headerCount, endOfStream != 0);
}

function proxy_on_response_body_inner(id: u32, bodySize: u32, endOfStream: u32): i32 {
  if (!streams.has(id)) return DataStatus.Continue;
  return streams.get(id).onResponseBody(bodySize, endOfStream != 0);
}

function proxy_on_delete_inner(id: u32): void {
  if (streams.has(id)) {
    streams.get(id).onDelete();
    streams.delete(id);
    return;
  }
  if (roots.has(id)) {
    roots.get(id).onDelete();
    roots.delete(id);
  }
}

// Memory reclamation with the minimal runtime (asconfig.json: no incremental GC, no write barriers, no GC work
// interleaved with allocation, which made parsing answers several times dearer). That runtime never collects
// on its own: each exported callback ends with leave, the one safe point. When the outermost callback
// returns no managed reference lives only on the stack (the shadow stack is not scanned), everything alive is
// reachable from a global (the context maps) or pinned (a host buffer between malloc and its take).
// Triggers, checked there: the callback asked for it (noteGarbage: a parsed answer leaves its whole tree
// behind), the allocator grew linear memory during this callback, or COLLECT_EVERY callbacks went by. The
// count bounds the heap whatever else happens: per callback the filter allocates a bounded amount (headers,
// a body chunk), so at most COLLECT_EVERY callbacks' garbage plus the live data, plus one callback's own
// allocations. Growth alone would not bound it: TLSF doubles the heap when full, and garbage would fill each
// doubled heap before the next collection. The incremental runtime collects by itself: nothing to do.
const COLLECT_EVERY: i32 = 256;
/** Garbage bytes (estimated by callers) after which the current callback ends with a collection. */
const COLLECT_AFTER_BYTES: usize = 1 << 20;
let collectedAtPages: i32 = 0;
let callbacksSinceCollect: i32 = 0;
let garbageBytes: usize = 0;

/** Tells the safe point that about `bytes` of garbage were just made (e.g. a parse tree no longer used). */
export function noteGarbage(bytes: usize): void {
  garbageBytes += bytes;
}

/**
 * Exported callbacks running now. The host may call back into the module from inside a host call (a callback
 * within a callback); only the outermost one's end is a safe point, since the outer callback still holds
 * references on its stack that the minimal runtime does not scan.
 */
let callbackDepth: i32 = 0;

function enter(): void {
  callbackDepth++;
}

function leave(): void {
  callbackDepth--;
  if (callbackDepth > 0) return;
  if (ASC_RUNTIME == 2) return; // Runtime.Incremental (std/assembly/shared/runtime.ts)
  const pages = memory.size();
  callbacksSinceCollect++;
  if (pages == collectedAtPages && callbacksSinceCollect < COLLECT_EVERY && garbageBytes < COLLECT_AFTER_BYTES) return;
  __collect();
  collectedAtPages = memory.size();
  callbacksSinceCollect = 0;
  garbageBytes = 0;
}

export function proxy_on_context_create(id: u32, parentId: u32): void {
  enter();
  proxy_on_context_create_inner(id, parentId);
  leave();
}

export function proxy_on_vm_start(rootId: u32, vmConfigSize: u32): u32 {
  enter();
  const result = proxy_on_vm_start_inner(rootId, vmConfigSize);
  leave();
  return result;
}

export function proxy_on_configure(rootId: u32, configSize: u32): u32 {
  enter();
  const result = proxy_on_configure_inner(rootId, configSize);
  leave();
  return result;
}

export function proxy_on_tick(rootId: u32): void {
  enter();
  proxy_on_tick_inner(rootId);
  leave();
}

export function proxy_on_http_call_response(contextId: u32, token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
  enter();
  proxy_on_http_call_response_inner(contextId, token, headerCount, bodySize, trailerCount);
  leave();
}

export function proxy_on_request_headers(id: u32, headerCount: u32, endOfStream: u32): i32 {
  enter();
  const result = proxy_on_request_headers_inner(id, headerCount, endOfStream);
  leave();
  return result;
}

export function proxy_on_request_body(id: u32, bodySize: u32, endOfStream: u32): i32 {
  enter();
  const result = proxy_on_request_body_inner(id, bodySize, endOfStream);
  leave();
  return result;
}

export function proxy_on_response_headers(id: u32, headerCount: u32, endOfStream: u32): i32 {
  enter();
  const result = proxy_on_response_headers_inner(id, headerCount, endOfStream);
  leave();
  return result;
}

export function proxy_on_response_body(id: u32, bodySize: u32, endOfStream: u32): i32 {
  enter();
  const result = proxy_on_response_body_inner(id, bodySize, endOfStream);
  leave();
  return result;
}

export function proxy_on_delete(id: u32): void {
  enter();
  proxy_on_delete_inner(id);
  leave();
}
