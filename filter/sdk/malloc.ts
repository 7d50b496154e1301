// The host allocator (proxy-wasm's exported malloc), written against the runtime-neutral __pin/__unpin so the
// module can use any AssemblyScript runtime (the SDK's malloc imports rt/itcms, the incremental runtime only).

/** Allow the host to allocate memory: a pinned ArrayBuffer, so no collection frees it before we take it. */
export function malloc(size: i32): usize {
  const buffer = new ArrayBuffer(size);
  return __pin(changetype<usize>(buffer));
}

/** Unpins a buffer malloc handed out (the reference that took it keeps it alive). */
export function free(ptr: usize): void {
  __unpin(ptr);
}
